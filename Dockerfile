# quire in a slim image: `docker build -t quire .` then
# `docker run --rm -p 50051:50051 -p 8080:8080 quire` serves the handbook demo (gRPC on 50051,
# HTTP/JSON on 8080). See README.md, "Docker".

# --- build --------------------------------------------------------------------------------
FROM rust:1.90-slim-bookworm AS build
WORKDIR /src
# The commit for `quire --version` (the build context has no .git): pass
# --build-arg QUIRE_GIT_COMMIT=$(git rev-parse --short=12 HEAD); "unknown" otherwise.
ARG QUIRE_GIT_COMMIT=unknown
ENV QUIRE_GIT_COMMIT=${QUIRE_GIT_COMMIT}
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p quire-cli \
    && cp target/release/quire /usr/local/bin/quire

# --- run ----------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN useradd --system --create-home --home-dir /var/lib/quire --uid 10001 quire
COPY --from=build /usr/local/bin/quire /usr/local/bin/quire
# The demo corpus and the build specs; models/ is mounted or fetched (scripts/fetch-model).
COPY --chown=quire:quire corpora/handbook /opt/quire/corpora/handbook
COPY --chown=quire:quire specs /opt/quire/specs
USER quire
WORKDIR /opt/quire
ENV QUIRE_DATA=/var/lib/quire/data \
    QUIRE_MODELS=/opt/quire/models
VOLUME ["/var/lib/quire"]
EXPOSE 50051 8080
ENTRYPOINT ["quire"]
# Inside a container the ports must be reachable from outside it, which a loopback address is
# not; an open server (no tokens) refuses any other address, so the demo is meant for
# `--network host` or a server.toml with tokens (see README.md, "Docker").
CMD ["serve", "--demo", "--addr", "127.0.0.1:50051", "--http-addr", "127.0.0.1:8080"]
