"""The docs of the task graph run: each of their snippets is a whole program that works.

The ``python`` code blocks of the graph section of docs/concepts.md and of the
graph recipes of docs/cookbook.md are picked out by their headings, and each
runs in an interpreter of its own, in an empty directory, as a reader would run
it after saving it to a file. A ``text`` block right after a ``python`` block is
what it prints, and the test holds it to that; a snippet that prints must show
its output so.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TIMEOUT = 60  # seconds per snippet; each takes under a second on two cores

# The sections to run, by page, each by its `## ` heading.
SECTIONS: dict[str, list[str]] = {
    "concepts.md": ["The graph: fan-out, zip, merge, partition"],
    "scale-out.md": ["Another engine: the `Backend` seam"],
    "cookbook.md": [
        "Compute two features per record and join them",
        "Save to two places in one run",
        "Split valid from invalid items",
        "Merge two feeds",
        "Shard by key, with state per key",
    ],
}

FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, its text, and the lines it spans in its page."""

    lang: str
    code: str
    first: int  # the line of the opening fence, counted from 1
    last: int  # the line of the closing fence


@dataclass(frozen=True)
class Snippet:
    """A python block of a section, and the output the page shows for it, if any."""

    page: str
    heading: str
    number: int  # the python block's place in its section, from 1
    block: Block
    output: str | None

    @property
    def id(self) -> str:
        return f"{self.page}#{slug(self.heading)}-{self.number}"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, no punctuation, a hyphen per space."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def section_lines(page: str, heading: str) -> list[tuple[int, str]]:
    """The numbered lines under ``## heading``, up to the next ``## `` heading outside code."""
    lines = (DOCS / page).read_text().splitlines()
    if f"## {heading}" not in lines:
        return []  # the test of the sections says so
    start = lines.index(f"## {heading}") + 1
    found, fenced = [], False
    for number, line in enumerate(lines[start:], start + 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            break
        found.append((number, line))
    return found


def blocks(lines: list[tuple[int, str]]) -> list[tuple[Block, bool]]:
    """Each code block, and whether only blank lines part it from the block before."""
    found: list[tuple[Block, bool]] = []
    lang, body, first, last_end = None, [], 0, None
    for number, line in lines:
        fence = FENCE.match(line)
        if lang is None:
            if fence:
                lang, body, first = fence.group(1), [], number
            elif line.strip():
                last_end = None  # prose between two blocks
            continue
        if fence and not fence.group(1):
            adjacent = last_end is not None
            found.append((Block(lang, "\n".join(body) + "\n", first, number), adjacent))
            lang, last_end = None, number
        else:
            body.append(line)
    assert lang is None, f"a code block opened at line {first} is never closed"
    return found


def snippets() -> list[Snippet]:
    found = []
    for page, headings in SECTIONS.items():
        for heading in headings:
            listed = blocks(section_lines(page, heading))
            pythons = 0
            for place, (block, _) in enumerate(listed):
                if block.lang != "python":
                    continue
                pythons += 1
                after = listed[place + 1] if place + 1 < len(listed) else None
                output = None
                if after is not None and after[0].lang == "text" and after[1]:
                    output = after[0].code
                found.append(Snippet(page, heading, pythons, block, output))
    return found


SNIPPETS = snippets()


@pytest.mark.parametrize(
    ("page", "heading"),
    [
        pytest.param(page, heading, id=f"{page}#{slug(heading)}")
        for page, hs in SECTIONS.items()
        for heading in hs
    ],
)
def test_each_graph_section_has_snippets_and_a_line_in_the_contents(page, heading):
    text = (DOCS / page).read_text()
    assert f"\n## {heading}\n" in text, f"{page} has no section {heading!r}"
    assert any(s.page == page and s.heading == heading for s in SNIPPETS), (
        f"{page}: section {heading!r} has no python block to run"
    )
    contents = text.split("\n## ", 1)[0]
    assert f"](#{slug(heading)})" in contents, f"{page}: {heading!r} is not in the contents"


@pytest.mark.timeout(TIMEOUT + 30)
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_snippet_runs_and_prints_what_the_page_shows(snippet, tmp_path):
    code = snippet.block.code
    where = f"{snippet.id} (lines {snippet.block.first}-{snippet.block.last})"
    if 'on="process"' in code or "Process" in code:
        assert 'if __name__ == "__main__":' in code, f"{where} starts processes unguarded"
    if "print(" in code:
        assert snippet.output is not None, f"{where} prints, but no text block shows what"
    script = tmp_path / "snippet.py"
    script.write_text(code)

    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )

    assert done.returncode == 0, f"{where} exited {done.returncode}:\n{done.stderr}"
    assert not done.stderr, f"{where} wrote to stderr:\n{done.stderr}"
    if snippet.output is not None:
        printed = [line.rstrip() for line in done.stdout.strip().splitlines()]
        shown = [line.rstrip() for line in snippet.output.strip().splitlines()]
        assert printed == shown, (
            f"{where} printed:\n{done.stdout}\nbut the page shows:\n{snippet.output}"
        )
