"""The wire notes the code cites are in the repository: every "docs/WIRE.md §n" (or older "CONTRACT §n")
in the code names a section docs/WIRE.md has, and every file a note points at exists."""

import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
WIRE = BASE_DIR / "docs" / "WIRE.md"
CITATION = re.compile(r"(?:docs/WIRE\.md|CONTRACT) §(\d+)")
SOURCES = ("runs_ui", "sandbox", "dashboard", "tests", "templates", "static/runs_ui")


def cited() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for top in SOURCES:
        for path in (BASE_DIR / top).rglob("*"):
            if path.suffix in (".py", ".md", ".html", ".js") and path.is_file():
                for number in CITATION.findall(path.read_text(errors="replace")):
                    found.setdefault(number, []).append(str(path.relative_to(BASE_DIR)))
    return found


def test_every_cited_section_of_the_wire_notes_exists():
    sections = set(re.findall(r"^## (\d+)\.", WIRE.read_text(), re.M))
    citations = cited()

    assert citations, "the code cites the wire notes somewhere"
    missing = {n: files for n, files in citations.items() if n not in sections}
    assert missing == {}


def test_nothing_cites_a_contract_file_outside_the_repository():
    outside = "CONTRACT" + ".md"  # spelled apart, so this file does not name it
    mentions = [
        str(path.relative_to(BASE_DIR))
        for top in SOURCES
        for path in (BASE_DIR / top).rglob("*")
        if path.suffix in (".py", ".md") and path.is_file() and outside in path.read_text(errors="replace")
    ]
    assert mentions == []


def test_the_spec_copy_the_notes_point_at_is_here():
    assert "tests/sandbox/spec/openai-openapi.yaml" in WIRE.read_text()
    assert (BASE_DIR / "tests/sandbox/spec/openai-openapi.yaml").is_file()
