"""The builder's types, checked by mypy on the files in ``typing_tests/``.

``pass_pipeline.py`` must type-check under ``--strict``. ``fail_pipeline.py``
must fail with exactly the errors its ``# E: [code] text`` marks state, one
per marked line and none elsewhere, so a fail file that stops failing, or
starts failing for another reason, is caught.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parent.parent
TYPING_TESTS = ROOT / "typing_tests"
MARK = re.compile(r"#\s*E:\s*\[(?P<code>[\w-]+)\]\s*(?P<text>.*?)\s*$")
ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*?)\s+\[(?P<code>[\w-]+)\]$")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One mypy cache for this module, so the second run reuses the first's work."""
    return tmp_path_factory.mktemp("mypy-cache")


def mypy(path, cache_dir):
    """Run mypy --strict with the repository's configuration on one file."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(cache_dir),
            "--show-error-codes",
            "--no-pretty",
            "--no-color-output",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )


def errors_by_line(output, name):
    """Map each line number of ``name`` that has errors to its ``(code, message)`` pairs."""
    found: dict[int, list[tuple[str, str]]] = {}
    for line in output.splitlines():
        match = ERROR.match(line)
        if match and Path(match["path"]).name == name:
            found.setdefault(int(match["line"]), []).append((match["code"], match["message"]))
    return found


def marks(path):
    """Map each marked line number to the ``(code, text)`` its ``# E:`` comment expects.

    Only real comments count, so a docstring that explains the marks is not one.
    """
    expected = {}
    with path.open() as source:
        for token in tokenize.generate_tokens(source.readline):
            match = MARK.match(token.string) if token.type == tokenize.COMMENT else None
            if match:
                expected[token.start[0]] = (match["code"], match["text"])
    return expected


def test_pass_file_type_checks(cache_dir):
    result = mypy(TYPING_TESTS / "pass_pipeline.py", cache_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


def test_fail_file_fails_on_every_marked_line_and_no_other(cache_dir):
    path = TYPING_TESTS / "fail_pipeline.py"
    expected = marks(path)
    assert len(expected) >= 5, "the fail file lost its marks"

    result = mypy(path, cache_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    found = errors_by_line(result.stdout, path.name)

    missing = {
        number: (code, text)
        for number, (code, text) in expected.items()
        if not any(c == code and text in message for c, message in found.get(number, []))
    }
    assert not missing, f"marked lines without the stated error: {missing}\n{result.stdout}"
    unmarked = {number: errs for number, errs in found.items() if number not in expected}
    assert not unmarked, f"errors on unmarked lines: {unmarked}"


def test_mark_parser_reads_code_and_text(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""# E: [misc] in a docstring"""\n'
        'y: str = 1  # E: [assignment] expression has type "int"\n'
    )
    assert marks(sample) == {2: ("assignment", 'expression has type "int"')}
    output = (
        'sample.py:2: error: Incompatible types in assignment (expression has type "int", '
        'variable has type "str")  [assignment]\nFound 1 error in 1 file (checked 1 source file)'
    )
    assert errors_by_line(output, "sample.py") == {
        2: [
            (
                "assignment",
                (
                    'Incompatible types in assignment (expression has type "int", '
                    'variable has type "str")'
                ),
            )
        ]
    }
