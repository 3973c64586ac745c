"""A real quire server for the tests: ``$QUIRE_BIN serve --demo`` on 127.0.0.1 with an
ephemeral port and a temporary data dir, tokens per role, the repository's corpora/ as import root
and a trusted JWT issuer; shut down when the session ends.

Without ``QUIRE_BIN`` (the Rust test ``python_client`` sets it to the binary cargo built) the
tests skip, except with ``CI=true``, where they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CORPORA = REPO / "corpora"
JWT_KEYS = REPO / "crates/quire-testkit/fixtures/jwt"
ISSUER = "https://idp.test"

# name -> (role, binding line)
TOKENS = {
    "reader": ("reader", 'run_as = { users = ["*"], groups = ["*"] }'),
    "builder": ("builder", 'run_as = { users = ["*"], groups = ["*"] }'),
    "releaser": ("releaser", 'run_as = { users = ["*"], groups = ["*"] }'),
    "admin": ("admin", 'run_as = { users = ["*"], groups = ["*"] }'),
    # One person's token: always reads as sam of all-staff.
    "sam": ("reader", 'principal = { user = "sam", groups = ["all-staff"] }'),
    # An application that passes its signed-in users' JWTs.
    "app": ("reader", 'run_as = { users = ["*"], groups = ["all-staff"] }\njwt = "optional"'),
}


@dataclass
class Server:
    url: str
    tokens: dict[str, str]
    #: The server's import root: the repository's corpora/ (handbook, handbook-eval).
    corpora: Path
    jwt_key: str

    def user_jwt(self, user: str, groups: list[str], **edits) -> str:
        """An end user's RS256 JWT from the issuer the server trusts."""
        from jwt_rs256 import sign

        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": "quire",
            "sub": user,
            "groups": groups,
            "exp": now + 3600,
            "iat": now,
        }
        claims.update(edits)
        return sign(claims, self.jwt_key)


def _binary() -> Path | None:
    value = os.environ.get("QUIRE_BIN")
    if value and Path(value).is_file():
        return Path(value)
    what = f"QUIRE_BIN={value!r} is not a file" if value else "QUIRE_BIN is not set"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {what} (the quire binary; the Rust test python_client sets it)")
    pytest.skip(f"{what}: set it to a built `quire` binary (cargo build -p quire-cli)")
    return None


def _new_token(binary: Path) -> tuple[str, str]:
    out = subprocess.run(
        [str(binary), "--json", "token", "new"], check=True, capture_output=True, text=True
    )
    value = json.loads(out.stdout)
    return value["token"], value["blake3"]


def _config(binary: Path, root: Path) -> tuple[str, dict[str, str]]:
    tokens: dict[str, str] = {}
    lines = ["version = 1"]
    for name, (role, binding) in TOKENS.items():
        token, digest = _new_token(binary)
        tokens[name] = token
        lines += [
            "[[tokens]]",
            f'name = "{name}"',
            f'role = "{role}"',
            f'blake3 = "{digest}"',
            binding,
        ]
    lines += [
        "[import]",
        f"roots = [{json.dumps(str(root))}]",
        "[jwt]",
        f'issuer = "{ISSUER}"',
        'audience = ["quire"]',
        f'keys = [{{ pem = {json.dumps(str(JWT_KEYS / "rs256.pub.pem"))}, alg = "RS256" }}]',
    ]
    return "\n".join(lines) + "\n", tokens


@contextlib.contextmanager
def _serve(binary: Path, work: Path, config: str) -> Iterator[str]:
    """``quire serve --demo`` with ``config`` on a loopback port; yields its URL, stops it."""
    (work / "server.toml").write_text(config)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("QUIRE_DATA", "QUIRE_SERVER", "QUIRE_TOKEN")
    }
    with open(work / "server.log", "wb") as log:
        process = subprocess.Popen(
            [str(binary), "--data", str(work / "data"), "serve", "--demo"]
            + ["--addr", "127.0.0.1:0", "--config", str(work / "server.toml")],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            text=True,
        )
        try:
            line = process.stdout.readline() if process.stdout else ""
            if not line.startswith("quire listening on "):
                process.kill()
                process.wait()
                tail = (work / "server.log").read_text(errors="replace")[-4000:]
                pytest.fail(f"quire serve did not start: first line {line!r}; its log:\n{tail}")
            yield line.removeprefix("quire listening on ").strip()
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout:
                process.stdout.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    binary = _binary()
    work = tmp_path_factory.mktemp("quire")
    config, tokens = _config(binary, CORPORA)
    with _serve(binary, work, config) as url:
        yield Server(url, tokens, CORPORA, (JWT_KEYS / "rs256.key.pem").read_text())


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory):
    """A second, open server on TLS: ``(url, CA PEM)``. Its certificate and key come from
    ``QUIRE_TEST_TLS_DIR`` (``cert.pem``, ``key.pem``; the Rust test makes them with rcgen)."""
    binary = _binary()
    value = os.environ.get("QUIRE_TEST_TLS_DIR")
    if not value or not (Path(value) / "cert.pem").is_file():
        what = "QUIRE_TEST_TLS_DIR names no directory with cert.pem and key.pem"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {what} (the Rust test python_client makes them)")
        pytest.skip(f"{what}: the TLS test runs from `cargo test -p quire-cli python_client`")
    tls = Path(value)
    config = (
        "version = 1\n[tls]\n"
        f"cert = {json.dumps(str(tls / 'cert.pem'))}\nkey = {json.dumps(str(tls / 'key.pem'))}\n"
    )
    with _serve(binary, tmp_path_factory.mktemp("quire-tls"), config) as url:
        yield url, (tls / "cert.pem").read_bytes()


@pytest.fixture(scope="session")
def clients(server: Server):
    """A sync client per token name."""
    from quire import Client

    made = {name: Client(server.url, token=token) for name, token in server.tokens.items()}
    yield made
    for c in made.values():
        c.close()
