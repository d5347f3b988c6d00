"""mkdocs hooks (listed in mkdocs.yml): repository files as pages, a current headline.

The Markdown pages in docs/ link to files elsewhere in the repository, such as
``../examples/pool_map.py``, which works where the repository is read as files
(GitHub, an editor). The site has no such files, so while it is built:

- each script of examples/ becomes a page, ``examples/<name>.md``, showing its
  source, and ``examples/index.md`` lists them all;
- any other repository file that a page links to becomes a page of its source,
  ``repository/<path>.md``;
- the links are rewritten to point at those pages.

A link to a file that does not exist is left alone, and ``mkdocs build --strict``
reports it.

The home page copies a few rows of the Targets table of benchmarks.md, which
``make bench`` rewrites. The copy in docs/index.md may lag behind a run; the site's
copy does not: each row is replaced by the row of benchmarks.md with the same measure,
and a measure that benchmarks.md no longer has is a warning, so an error under --strict.
"""

from __future__ import annotations

import ast
import logging
import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

_EXAMPLES = "examples"
_REPOSITORY = "repository"
# A Markdown link's target: `](target)` or `](target#anchor)`.
_LINK = re.compile(r"\]\(([^)\s#]+)(#[^)\s]*)?\)")
_HEADLINE = re.compile(
    r"(<!-- benchmark-headline\b.*?-->\n)(.*?)(<!-- /benchmark-headline -->)", re.DOTALL
)
_LANGUAGES = {".py": "python", ".toml": "toml", ".md": "markdown", ".sh": "bash", ".yml": "yaml"}
_LOG = logging.getLogger(f"mkdocs.plugins.{__name__}")


def _root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).parent


def _docs(config: MkDocsConfig) -> str:
    """Where docs/ is in the repository, as a relative path."""
    return Path(config.docs_dir).relative_to(_root(config)).as_posix()


def _scripts(config: MkDocsConfig) -> list[Path]:
    return sorted((_root(config) / _EXAMPLES).glob("*.py"))


def _summary(script: Path) -> str:
    docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    return docstring.split("\n\n", 1)[0].replace("\n", " ")


def _in_repository(config: MkDocsConfig, page_uri: str, target: str) -> str | None:
    """Find the repository file a link of a page means, outside docs/; its path, or None."""
    if "://" in target or target.startswith(("/", "mailto:")):
        return None
    docs = _docs(config)
    path = posixpath.normpath(posixpath.join(docs, posixpath.dirname(page_uri), target))
    if path == docs or path.startswith((f"{docs}/", "../")) or path == "..":
        return None
    return path


def _page_for(config: MkDocsConfig, path: str) -> str | None:
    """Find the generated page that shows a repository path; its URI, or None."""
    if path == _EXAMPLES:
        return f"{_EXAMPLES}/index.md"
    folder, _, name = path.partition("/")
    if folder == _EXAMPLES and name in {script.name for script in _scripts(config)}:
        return f"{_EXAMPLES}/{name.removesuffix('.py')}.md"
    if (_root(config) / path).is_file():
        return f"{_REPOSITORY}/{path}.md"
    return None


def _source_page(title: str, intro: str, source: str, language: str) -> str:
    fence = "````" if "```" in source else "```"
    return f"# {title}\n\n{intro}\n\n{fence}{language}\n{source.rstrip()}\n{fence}\n"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the pages of the examples, and of the other repository files the docs link to."""
    rows = []
    for script in _scripts(config):
        summary = _summary(script)
        intro = f"{summary}\n\nRun it from the repository root: `python {_EXAMPLES}/{script.name}`."
        page = _source_page(script.name, intro, script.read_text(encoding="utf-8"), "python")
        files.append(File.generated(config, f"{_EXAMPLES}/{script.stem}.md", content=page))
        rows.append(f"| [{script.name}]({script.stem}.md) | {summary} |")
    index = (
        "# Examples\n\n"
        "Runnable scripts, each a few seconds long and checked by the test suite. "
        f"Run them from the repository root, such as `python {_EXAMPLES}/pool_map.py`.\n\n"
        "| Script | What it shows |\n|---|---|\n" + "\n".join(rows) + "\n"
    )
    files.append(File.generated(config, f"{_EXAMPLES}/index.md", content=index))

    linked: set[str] = set()
    for file in files.documentation_pages():
        if file.generated_by is not None:
            continue
        for match in _LINK.finditer(file.content_string):
            path = _in_repository(config, file.src_uri, match.group(1))
            uri = path and _page_for(config, path)
            if path and uri and uri.startswith(f"{_REPOSITORY}/"):
                linked.add(path)
    for path in sorted(linked):
        file_path = _root(config) / path
        intro = f"`{path}`, in the repository."
        language = _LANGUAGES.get(file_path.suffix, "text")
        page = _source_page(path, intro, file_path.read_text(encoding="utf-8"), language)
        files.append(File.generated(config, f"{_REPOSITORY}/{path}.md", content=page))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, **kwargs: Any) -> str:  # noqa: ARG001
    """Point links to repository files at their pages; refresh the benchmark headline."""
    if page.file.src_uri == "index.md":
        markdown = _HEADLINE.sub(lambda m: _headline(m, config), markdown)
    here = posixpath.dirname(page.file.src_uri)

    def rewrite(match: re.Match[str]) -> str:
        path = _in_repository(config, page.file.src_uri, match.group(1))
        uri = path and _page_for(config, path)
        if not uri:
            return match.group(0)
        return f"]({posixpath.relpath(uri, here or '.')}{match.group(2) or ''})"

    return _LINK.sub(rewrite, markdown)


def _targets(config: MkDocsConfig) -> dict[str, str]:
    """Read the rows of the Targets table of benchmarks.md, by their measure."""
    text = (Path(config.docs_dir) / "benchmarks.md").read_text(encoding="utf-8")
    section = text.partition("\n## Targets\n")[2].partition("\n## ")[0]
    return {_measure(row): row for row in section.splitlines() if row.startswith("| ")}


def _measure(row: str) -> str:
    return row.split("|")[1].strip()


def _headline(match: re.Match[str], config: MkDocsConfig) -> str:
    targets = _targets(config)
    rows = []
    for row in match.group(2).splitlines():
        measure = _measure(row) if row.startswith("| ") else ""
        if measure in {"", "measure"} or row.startswith("|---"):
            rows.append(row)
        elif measure in targets:
            rows.append(targets[measure])
        else:
            _LOG.warning(
                "index.md: the benchmark headline's measure %r is not in the Targets table "
                "of benchmarks.md; copy a row that is",
                measure,
            )
            rows.append(row)
    return match.group(1) + "\n".join(rows) + "\n" + match.group(3)
