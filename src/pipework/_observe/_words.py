"""A snapshot in words, for the displays: a headline, a line per stage, rates and durations.

Both the plain display and the rich table read snapshots through these, so
the two say the same things in the same way.
"""

from __future__ import annotations

from ._snapshot import Snapshot, StageSnapshot


def plain_lines(snapshot: Snapshot) -> list[str]:
    """Render a snapshot as a headline, one line per stage, and its bottleneck, if any.

    No control codes: these are for logs.
    """
    lines = [headline(snapshot)] + [
        f"  #{number} {stage.name} ({stage.kind}): " + ", ".join(cells(stage, done=snapshot.done))
        for number, stage in enumerate(snapshot.stages)
    ]
    if (bottleneck := snapshot.bottleneck) is not None:
        lines.append(f"  {bottleneck}")
    return lines


def headline(snapshot: Snapshot) -> str:
    """Say how long the run has gone, and how long it has to go if that is known."""
    if snapshot.done:
        return f"pipework: done in {duration(snapshot.elapsed)}"
    eta = snapshot.eta_seconds
    left = "" if eta is None else f", about {duration(eta)} to go"
    return f"pipework: {duration(snapshot.elapsed)}{left}"


def shown_rate(stage: StageSnapshot, *, done: bool) -> float:
    """Return the rate to show: the recent one while the run goes, the whole run's at the end."""
    return stage.rate if done else stage.recent_rate


def cells(stage: StageSnapshot, *, done: bool) -> list[str]:
    """Describe a stage in a few short phrases: counts, rate, input fill, busy share, ETA."""
    if stage.kind == "source":
        of = "" if stage.length is None else f"/{stage.length:,}"
        said = [f"{stage.items_out:,}{of} read"]
    else:
        said = [f"in {stage.items_in:,}", f"out {stage.items_out:,}"]
    if stage.items_failed:
        said.append(f"failed {stage.items_failed:,}")
    said.append(f"{rate(shown_rate(stage, done=done))}/s")
    if stage.input_fill is not None:
        said.append(f"input {stage.input_fill:.0%} full")
    if stage.utilisation is not None and stage.kind != "source":
        said.append(f"{stage.utilisation:.0%} busy")
    if stage.remaining and stage.recent_rate > 0:
        said.append(f"eta {duration(stage.remaining / stage.recent_rate)}")
    return said


_TWO_PLACES, _ONE_PLACE = 10, 100  # below these rates, show decimals
_MINUTE = 60


def rate(per_second: float) -> str:
    """Format a rate with as many digits as help: 0.25, 12.5, 1,234."""
    if per_second < _TWO_PLACES:
        return f"{per_second:.2f}"
    if per_second < _ONE_PLACE:
        return f"{per_second:.1f}"
    return f"{per_second:,.0f}"


def duration(seconds: float) -> str:
    """Format seconds as ``4.2 s``, ``3m05s`` or ``2h07m``."""
    if seconds < _MINUTE:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), _MINUTE)
    if minutes < _MINUTE:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, _MINUTE)
    return f"{hours}h{minutes:02d}m"
