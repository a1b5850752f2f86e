"""The documentation: README.md is a short front door, every relative link in it and in docs/ resolves, and no message
sketchseg shows a user cites a document users do not have (the specification or the project's shared/ folder)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
README_MAX_LINES = 250

# [text](target) and [text]: target; images included. Targets with a scheme (https:, mailto:) are not files.
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
# what a user-facing string must not cite: the specification's sections and the project's shared/ folder
UNAVAILABLE = re.compile(r"SPEC\s*§|shared/")


def relative_links(path: Path) -> list[str]:
    """The relative link targets of a Markdown file, without their #fragment; links inside code are kept out."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = [a or b for a, b in LINK.findall(text)]
    return [t.split("#", 1)[0] for t in targets if t and not SCHEME.match(t) and not t.startswith("#")]


def test_readme_is_a_short_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"
    text = "\n".join(lines)
    assert "make pipeline" in text and "make test" in text
    assert re.search(r"^## Results$", text, re.MULTILINE)


def test_readme_links_every_docs_page():
    linked = {(README.parent / t).resolve() for t in relative_links(README)}
    missing = [p.name for p in DOCS if p.resolve() not in linked]
    assert DOCS and not missing, f"docs pages README.md does not link: {missing}"


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path: Path):
    broken = [t for t in relative_links(path) if not (path.parent / t).exists()]
    assert not broken, f"{path.relative_to(REPO)}: links to missing files {broken}"


def test_relative_links_parser(tmp_path: Path):
    sample = tmp_path / "links_sample.md"
    sample.write_text(
        "[a](docs/a.md) [b](b.md#part) [web](https://example.org/x.md) [top](#here) `[c](c.md)`\n"
        "```\n[d](d.md)\n```\n[e]: docs/e.md\n",
        encoding="utf-8",
    )
    assert relative_links(sample) == ["docs/a.md", "b.md", "docs/e.md"]


def user_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the string constants of a Python file that are not docstrings (f-string parts included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_messages_cite_no_unavailable_document():
    found = [
        f"{path.relative_to(REPO)}:{line}: {text[:100]!r}"
        for root in ("sketchseg", "flows")
        for path in sorted((REPO / root).rglob("*.py"))
        for line, text in user_strings(path)
        if UNAVAILABLE.search(text)
    ]
    assert not found, "strings citing documents users do not have (cite docs/ instead):\n" + "\n".join(found)


def test_user_strings_skip_docstrings(tmp_path: Path):
    source = tmp_path / "m.py"
    source.write_text(
        '"""Module (SPEC §1)."""\n\ndef f():\n    """Doc (SPEC §2)."""\n    return f"x {1} SPEC §3"\n',
        encoding="utf-8",
    )
    assert [text for _, text in user_strings(source) if UNAVAILABLE.search(text)] == [" SPEC §3"]
