"""The package itself: the checked-in stubs are what proto/ generates today, and the wheel
carries them with the type information."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
REPO = HERE.parents[2]
STUBS = PACKAGE / "src/quire/v1"
GRPC_TOOLS = "1.85.1"  # the version that generated src/quire/v1; see scripts/regen-python-stubs


def test_checked_in_stubs_match_proto(tmp_path):
    from importlib.metadata import version

    assert version("grpcio-tools") == GRPC_TOOLS, "regenerate with the pinned grpcio-tools"
    protos = sorted(
        str(p.relative_to(REPO / "proto")) for p in (REPO / "proto/quire/v1").glob("*.proto")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(REPO / "proto"),
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *protos,
        ],
        check=True,
        cwd=REPO / "proto",
    )
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "quire/v1").iterdir()}
    checked_in = {
        p.name: p.read_bytes() for p in STUBS.iterdir() if p.name != "__init__.py" and p.is_file()
    }
    stale = sorted(n for n in fresh.keys() | checked_in.keys() if fresh.get(n) != checked_in.get(n))
    assert not stale, (
        f"clients/python/src/quire/v1 is stale ({', '.join(stale)}): run scripts/regen-python-stubs"
    )


def test_the_wheel_carries_stubs_types_and_adapters(tmp_path):
    # Built from a copy: setuptools leaves build/ and *.egg-info beside the sources.
    source = tmp_path / "src"
    shutil.copytree(
        PACKAGE,
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("quire_client-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in [
        "quire/__init__.py",
        "quire/py.typed",
        "quire/langchain.py",
        "quire/llama_index.py",
        "quire/v1/retrieval_pb2.py",
        "quire/v1/retrieval_pb2.pyi",
        "quire/v1/index_pb2_grpc.py",
    ]:
        assert name in names, f"{name} missing from {wheel.name}"
    metadata = (
        zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    )
    assert "Provides-Extra: langchain" in metadata and "Provides-Extra: llama-index" in metadata
