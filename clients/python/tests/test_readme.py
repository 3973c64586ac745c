"""The README's Python snippets ("From Python", "With LangChain / LlamaIndex", and
clients/python/README.md) run against the test server, as written, with the server's URL for
http://127.0.0.1:50051 and an admin token as QUIRE_TOKEN."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SECTIONS = {
    REPO / "README.md": ["From Python", "With LangChain / LlamaIndex"],
    REPO / "clients/python/README.md": ["Usage"],
}


def sections(text: str) -> dict[str, list[str]]:
    """Each heading's python blocks (fences understood, so a ``# comment`` in a block is not a
    heading)."""
    found: dict[str, list[str]] = {}
    heading, fence, block = None, None, []
    for line in text.splitlines(keepends=True):
        if fence is None and line.startswith("#"):
            heading = line.lstrip("#").strip()
            found.setdefault(heading, [])
        elif fence is None and line.startswith("```"):
            fence, block = line[3:].strip(), []
        elif fence is not None and line.startswith("```"):
            if fence == "python" and heading is not None:
                found[heading].append("".join(block))
            fence = None
        elif fence is not None:
            block.append(line)
    return found


def snippets() -> list[tuple[str, str]]:
    found = []
    for path, titles in SECTIONS.items():
        blocks = sections(path.read_text())
        for title in titles:
            assert blocks.get(title), f"{path.name} has no python block under {title!r}"
            found += [(f"{path.name}: {title} #{i + 1}", b) for i, b in enumerate(blocks[title])]
    return found


SNIPPETS = snippets()


@pytest.mark.parametrize("name,code", SNIPPETS, ids=[name for name, _ in SNIPPETS])
def test_readme_snippet_runs(name, code, server, monkeypatch, capsys):
    monkeypatch.setenv("QUIRE_TOKEN", server.tokens["admin"])
    code = code.replace("http://127.0.0.1:50051", server.url)
    exec(compile(code, name, "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert out.strip(), f"{name} printed nothing"
