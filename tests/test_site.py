"""The documentation site builds with --strict, covers the API, and renders in a browser.

The site is built once per session, the way ``make docs`` builds it, into a
temporary directory. Small sites of their own, built from the same mkdocs.yml,
show that a broken link, a broken anchor and a broken docstring reference each
fail the build, so that ``make test`` fails on them. Headless Chromium (Debian's
package; .ci/run installs it) opens the home page and an API page from a local
server and must find their headings in the DOM it renders.
"""

from __future__ import annotations

import functools
import html
import http.server
import os
import re
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

import pipework
from pipework import http as pipework_http

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CHROMIUM = Path("/usr/bin/chromium")
BUILD_TIMEOUT = 120  # seconds; a build takes about 5 on two cores
BROWSER_TIMEOUT = 60  # seconds per page; Chromium renders one in about 2

pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUILD_TIMEOUT + 60)]


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """Build the site of ``config`` into ``site`` with --strict, as ``make docs`` does."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", config, "-d", site],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = tmp_path_factory.mktemp("site")
    result = mkdocs_build(ROOT / "mkdocs.yml", built)
    assert result.returncode == 0, result.stderr
    return built


# The real site -------------------------------------------------------------


def test_the_site_builds_with_strict(site):
    for page in ("index.html", "cookbook.html", "reference/pipelines.html", "reference/http.html"):
        assert (site / page).is_file(), page


def text_of(page: str) -> str:
    """The text of an HTML page, tags left out."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def inventory(site: Path) -> set[str]:
    """Read the names in the site's objects.inv (Sphinx's format, which mkdocstrings writes)."""
    data = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four lines of header, then zlib
        header_end = data.index(b"\n", header_end) + 1
    lines = zlib.decompress(data[header_end:]).decode().splitlines()
    return {line.split(" ", 1)[0] for line in lines}


def test_the_reference_documents_every_public_name(site):
    documented = inventory(site)
    public = [f"pipework.{name}" for name in pipework.__all__]
    public += [f"pipework.http.{name}" for name in pipework_http.__all__]
    missing = [name for name in public if name not in documented]
    assert not missing, f"add a `::: name` to a page of docs/reference/ for each of {missing}"


def test_the_example_scripts_are_pages_and_the_links_reach_them(site):
    for script in sorted((ROOT / "examples").glob("*.py")):
        page = text_of((site / "examples" / f"{script.stem}.html").read_text())
        last_line = script.read_text().rstrip().splitlines()[-1]
        assert last_line in page, script.name
    home = (site / "index.html").read_text()
    assert 'href="examples/pool_map.html"' in home
    assert "../examples/" not in home


def targets_table() -> dict[str, list[str]]:
    """Read the Targets table of docs/benchmarks.md: its cells, by measure."""
    text = (DOCS / "benchmarks.md").read_text()
    section = text.partition("\n## Targets\n")[2].partition("\n## ")[0]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| measure")
    ]
    return {row[0]: row for row in rows}


def test_the_home_page_shows_the_current_benchmark_headline(site):
    source = (DOCS / "index.md").read_text()
    block = source.partition("<!-- benchmark-headline")[2].partition("<!-- /benchmark-headline")[0]
    measures = [line.split("|")[1].strip() for line in block.splitlines() if line.startswith("| ")]
    measures = [m for m in measures if m != "measure"]
    assert len(measures) >= 4
    targets = targets_table()
    built = text_of((site / "index.html").read_text())
    for measure in measures:
        assert measure in targets, f"{measure!r} is not a measure of benchmarks.md's Targets"
        this_run = targets[measure][2].replace("**", "")
        assert this_run in built, measure
    assert "benchmarks.html#targets" in (site / "index.html").read_text()


def test_the_home_page_picture_is_a_drawing_of_stages_and_channels(site):
    index = (site / "index.html").read_text()
    assert 'src="assets/pipeline.svg"' in index
    svg = ET.parse(site / "assets" / "pipeline.svg").getroot()  # noqa: S314 - our own file
    texts = {node.text for node in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert {"source", "fetch", "parse", "predict", "sink", "channel"} <= texts
    # Drawn by hand, self-contained: nothing fetched from elsewhere.
    assert "http" not in (site / "assets" / "pipeline.svg").read_text().replace(
        "http://www.w3.org/2000/svg", ""
    )


# Which cookbook section answers each use in the list of where users come from.
USES = {
    "multiprocessing.Process, start(), join()": "Run a few functions side by side",
    "Pool.apply_async, then .get()": "Submit tasks, gather results later",
    "Pool(n).map(f, range(1, 1000))": "A parallel list comprehension",
    "ProcessPoolExecutor swapped for ThreadPoolExecutor": "Switch between processes and threads",
    "joblib.Parallel, prefer='threads'": "One-line parallel loops",
    "Queue, Manager, Lock, Pipe": "Queues, managers and locks",
    "threads for I/O, processes for CPU, asyncio for URLs": (
        "Async, threads and processes together"
    ),
    "chunks scored in a pool": "Data parallelism over chunks",
    "cross_val_score in Parallel(n_jobs=-1)": "Many model fits, or a grid search",
    "thousands of images or PDFs": "File transformations",
    "a real-time service answering quickly": "Streaming inference",
    "asyncio.gather of run_in_executor and to_thread": (
        "Compute two features per record and join them"
    ),
    "Ray": "When one machine is not enough",
}


def test_the_cookbook_keeps_a_recipe_for_every_use(site):
    headings = re.findall(r"^## (.+)$", (DOCS / "cookbook.md").read_text(), flags=re.MULTILINE)
    missing = {use: h for use, h in USES.items() if h not in headings}
    assert not missing
    recipe = (DOCS / "cookbook.md").read_text().partition("## When one machine is not enough")[2]
    assert "on=pipework.ray()" in recipe.partition("\n## ")[0]
    assert "on=pipework.dask(client)" in recipe.partition("\n## ")[0]


# Small sites from the same configuration: what must fail the build ---------


def derived_config(tmp_path: Path, pages: dict[str, str], src: Path | None = None) -> Path:
    """Write a site of ``pages`` whose mkdocs.yml is the real one, with its paths made absolute."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    docs = tmp_path / "docs"
    for name, text in pages.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text)
    config["docs_dir"] = str(docs)
    config["nav"] = list(pages)
    config.pop("extra_css", None)
    config["hooks"] = [str(ROOT / hook) for hook in config["hooks"]]
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            python = plugin["mkdocstrings"]["handlers"]["python"]
            python["paths"] = [str(src or ROOT / "src")]
            options = python["options"]
            options["extensions"] = [str(ROOT / ext) for ext in options["extensions"]]
    path = tmp_path / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_broken_link_or_anchor_fails_the_build(tmp_path):
    pages = {
        "index.md": "# Home\n\nSee [the other page](other.md#a-section).\n",
        "other.md": "# Other\n\n## A section\n\n[Gone](gone.md), [nowhere](#no-such-heading).\n",
    }
    result = mkdocs_build(derived_config(tmp_path, pages), tmp_path / "site")
    assert result.returncode != 0
    assert "'gone.md'" in result.stderr
    assert "no-such-heading" in result.stderr
    assert "a-section" not in result.stderr


TINY = '''"""A package to document."""

import asyncio


class Thing:
    """A thing: `Thing.run` runs it, like `asyncio.run`; `_helper` is internal.{extra}"""

    def run(self) -> None:
        """Run it, with `_helper`."""
        _helper()


def _helper() -> None:
    """Help."""
'''


@dataclass
class TinySite:
    result: subprocess.CompletedProcess[str]
    html: str


def build_tiny(tmp_path: Path, extra: str) -> TinySite:
    (tmp_path / "src" / "tiny").mkdir(parents=True)
    (tmp_path / "src" / "tiny" / "__init__.py").write_text(TINY.format(extra=extra))
    config = derived_config(tmp_path, {"index.md": "# Tiny\n\n::: tiny\n"}, src=tmp_path / "src")
    result = mkdocs_build(config, tmp_path / "site")
    page = tmp_path / "site" / "index.html"
    return TinySite(result, page.read_text() if page.exists() else "")


def test_docstring_references_link_to_what_the_reference_documents(tmp_path):
    tiny = build_tiny(tmp_path, "")
    assert tiny.result.returncode == 0, tiny.result.stderr
    assert re.search(r'<a [^>]*href="#tiny.Thing.run"[^>]*><code>Thing.run</code></a>', tiny.html)
    assert "<code>asyncio.run</code>" in tiny.html  # Python's: code, for want of its inventory
    assert "<code>_helper</code>" in tiny.html  # pipework's own, internal: code, not an error


def test_a_docstring_reference_to_nothing_fails_the_build(tmp_path):
    tiny = build_tiny(tmp_path, " See `Thnig.run`.")
    assert tiny.result.returncode != 0
    assert "Could not find cross-reference target 'Thnig.run'" in tiny.result.stderr


# In a browser ----------------------------------------------------------------


class Headings(HTMLParser):
    """The h1-h6 of a page: their ids and their text, permalinks left out."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str | None, str]] = []
        self._open: list[tuple[str, str | None, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            self._open.append((tag, dict(attrs).get("id"), []))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            tag, ident, text = self._open.pop()
            self.found.append((tag, ident, " ".join("".join(text).replace("¶", "").split())))

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)


def headings(dom: str) -> list[tuple[str, str | None, str]]:
    parser = Headings()
    parser.feed(dom)
    return parser.found


@pytest.fixture
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def render(url: str, profile: Path) -> str:
    """Open ``url`` in headless Chromium and return the DOM it rendered."""
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no /usr/bin/chromium: apt-get install chromium (.ci/run installs it)",
)


@needs_chromium
def test_chromium_renders_the_home_page_and_an_api_page(served, tmp_path):
    home = headings(render(f"{served}/", tmp_path / "profile"))
    assert ("h1", None, "pipework") in [(tag, None, text) for tag, _, text in home]
    assert "Benchmarks: the headline" in [text for tag, _, text in home if tag == "h2"]

    reference = headings(render(f"{served}/reference/pipelines.html", tmp_path / "profile"))
    by_id = {ident: (tag, text) for tag, ident, text in reference if ident}
    # A heading holds the name, after its kind ("class") and before any label ("async").
    assert "Pipeline" in by_id["pipework.Pipeline"][1].split()
    assert "map" in by_id["pipework.Pipeline.map"][1].split()
    assert "map" in by_id["pipework.map"][1].split()


def test_chromium_is_checked_in_ci():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "command -v chromium" in ci
    first_run = re.search(r"^make test$", ci, flags=re.MULTILINE)
    assert first_run is not None
    assert "apt-get -qq install -y chromium" in ci[: first_run.start()]
