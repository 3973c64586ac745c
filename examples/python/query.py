#!/usr/bin/env python3
"""Query a quire server from Python with stubs generated from proto/.

    pip install grpcio grpcio-tools
    python -m grpc_tools.protoc -I proto --python_out=examples/python \
        --grpc_python_out=examples/python proto/quire/v1/*.proto
    python examples/python/query.py "how long is parental leave" --group all-staff

QUIRE_SERVER (default 127.0.0.1:50051) and QUIRE_TOKEN are read from the environment.
"""
import argparse
import os
import sys

import grpc

sys.path.insert(0, os.path.dirname(__file__))
from quire.v1 import common_pb2, retrieval_pb2, retrieval_pb2_grpc  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("query")
    parser.add_argument("--target", default="handbook")
    parser.add_argument("--user", default="")
    parser.add_argument("--group", action="append", default=[])
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()

    channel = grpc.insecure_channel(os.environ.get("QUIRE_SERVER", "127.0.0.1:50051"))
    stub = retrieval_pb2_grpc.RetrievalServiceStub(channel)
    metadata = []
    if token := os.environ.get("QUIRE_TOKEN"):
        metadata.append(("authorization", f"Bearer {token}"))
    request = retrieval_pb2.RetrieveRequest(
        target=args.target,
        query=args.query,
        principal=common_pb2.Principal(user=args.user, groups=args.group),
        k=args.k,
        mode=retrieval_pb2.MODE_HYBRID,
        explain=True,
    )
    try:
        response = stub.Retrieve(request, metadata=metadata, timeout=10)
    except grpc.RpcError as e:
        sys.exit(f"error: {e.code().name}: {e.details()}")
    if response.nothing_readable:
        print("warning: this principal may read no chunk of the index", file=sys.stderr)
    for rank, hit in enumerate(response.hits, 1):
        print(f"{rank:2}. {hit.score:.4f} {hit.chunk_id}  {hit.title}")
    lineage = response.lineage
    print(f"index {lineage.index_id} (alias {lineage.alias or '-'}), digest {lineage.content_digest}")
    print(f"total {response.timings.total_us} us")


if __name__ == "__main__":
    main()
