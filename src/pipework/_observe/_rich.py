"""The terminal display of progress, drawn with rich (the ``pipework[progress]`` extra).

Imported only when ``progress=True`` meets a terminal and rich is installed:
a run that shows no progress never pays for importing rich.
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from ._snapshot import Snapshot
from ._words import duration, headline, rate, shown_rate


class RichDisplay:
    """A table of one line per stage, redrawn in place, and left on screen at the end."""

    def __init__(self, out: TextIO, interval: float) -> None:
        """Draw on ``out`` (a terminal) every ``interval`` seconds."""
        self.interval = interval
        self._console = Console(file=out, force_terminal=True)
        # No refresh thread (the run's ticker redraws), and sys.stdout and
        # sys.stderr stay the program's own: a library must not swap them.
        self._live = Live(
            console=self._console,
            auto_refresh=False,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._started = False

    async def show(self, snapshot: Snapshot) -> None:
        """Redraw the table from a snapshot."""
        if not self._started:
            self._live.start()
            self._started = True
        self._live.update(table(snapshot), refresh=True)

    async def end(self, snapshot: Snapshot) -> None:
        """Draw the last snapshot and leave it on screen, below it the cursor."""
        await self.show(snapshot)
        self._live.stop()


def table(snapshot: Snapshot) -> Table:
    """Render a snapshot as a table of one row per stage."""
    bottleneck = snapshot.bottleneck
    grid = Table(
        title=headline(snapshot),
        title_justify="left",
        caption=None if bottleneck is None else escape(str(bottleneck)),
        caption_justify="left",
        box=None,
        pad_edge=False,
    )
    for name, justify in (
        ("stage", "left"),
        ("in", "right"),
        ("out", "right"),
        ("failed", "right"),
        ("rate/s", "right"),
        ("input", "right"),
        ("busy", "right"),
        ("eta", "right"),
    ):
        grid.add_column(name, justify=justify)  # type: ignore[arg-type]
    for number, stage in enumerate(snapshot.stages):
        source = stage.kind == "source"
        of = "" if stage.length is None else f"/{stage.length:,}"
        eta = ""
        if stage.remaining and stage.recent_rate > 0:
            eta = duration(stage.remaining / stage.recent_rate)
        grid.add_row(
            escape(f"#{number} {stage.name} ({stage.kind})"),
            "" if source else f"{stage.items_in:,}",
            f"{stage.items_out:,}{of}",
            f"[red]{stage.items_failed:,}[/]" if stage.items_failed else "0",
            rate(shown_rate(stage, done=snapshot.done)),
            "" if stage.input_fill is None else f"{stage.input_fill:.0%}",
            "" if stage.utilisation is None or source else f"{stage.utilisation:.0%}",
            eta,
        )
    return grid
