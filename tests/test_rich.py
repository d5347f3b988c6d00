"""The terminal display's table: one row per stage, the headline above, the bottleneck below.

The display itself is tested on a real pseudo-terminal in test_progress.py;
here the table is rendered by rich into text, to read what it says.
"""

from __future__ import annotations

import io

import pytest

from pipework import Snapshot
from test_words import stage

rich = pytest.importorskip("rich", reason="the progress extra is not installed")
from pipework._observe._rich import table  # noqa: E402


def rendered(snapshot):
    console = rich.console.Console(file=io.StringIO(), width=200, color_system=None)
    console.print(table(snapshot))
    return console.file.getvalue()


def test_each_stage_is_a_row_under_the_headline_and_the_bottleneck_is_its_caption():
    source = stage(length=100, utilisation=0.0, output_fill_mean=0.9)
    busy = stage(
        "parse", "thread map", utilisation=0.95, capacity=2, input_fill=0.5, output_fill_mean=0.0
    )
    text = rendered(Snapshot((source, busy), elapsed=5.0, done=False))
    lines = text.splitlines()
    assert lines[0].startswith("pipework: 5.0 s, about 5.0 s to go")
    [source_row] = [line for line in lines if line.startswith("#0 source (source)")]
    assert "50/100" in source_row
    assert "5.0 s" in source_row  # its eta
    [parse_row] = [line for line in lines if line.startswith("#1 parse (thread map)")]
    assert parse_row.split()[-2:] == ["50%", "95%"]  # input fill, then busy
    assert "bottleneck: #1 'parse' (thread map)" in text


def test_a_name_with_markup_in_it_is_shown_as_it_is():
    text = rendered(Snapshot((stage(name="[bold]x[/bold]"),), elapsed=1.0, done=True))
    assert "#0 [bold]x[/bold] (source)" in text
