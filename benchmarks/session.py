"""What one run of the benchmarks shares: its settings, calibration and measured start-up costs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import tasks
from .contenders import CONTENDERS
from .measure import median
from .probe import NotAvailable, run_probe


@dataclass(frozen=True)
class Settings:
    """How hard to measure: ``scale`` multiplies every item count."""

    quick: bool = False
    repeat: int = 3
    scale: float = 1.0
    contenders: frozenset[str] | None = None  # None: every contender
    timeout: float = 120.0  # seconds for one timed call, its process and warm-up included

    def count(self, full: int, floor: int = 1) -> int:
        return max(floor, round(full * self.scale))


@dataclass(frozen=True)
class Timing:
    """The median time of ``n`` items, and of one call with a single item (start-up)."""

    n: int
    seconds: float
    startup: float | None = None

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def steady_rate(self) -> float | None:
        """Items per second once workers are up: the start-up time taken off."""
        if self.startup is None or self.seconds <= self.startup:
            return None
        return self.n / (self.seconds - self.startup)


Result = Timing | NotAvailable


@dataclass(frozen=True)
class Cell:
    """One contender on one workload: what `measure.time_map` is given, less the repeats."""

    key: str
    label: str
    spec: dict[str, Any]
    chunksize: int | None = None


class Session:
    """Shared by the workloads of one run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._startup: dict[str, float] = {}
        self._iterations: dict[float, int] = {}

    def wants(self, key: str) -> bool:
        chosen = self.settings.contenders
        return chosen is None or key in chosen

    def iterations(self, seconds: float) -> int:
        """Loop iterations of `tasks.burn` that take about ``seconds``, measured once per run."""
        if seconds not in self._iterations:
            self._iterations[seconds] = tasks.iterations_for(seconds)
        return self._iterations[seconds]

    def measure(self, cells: list[Cell], rounds: int | None = None) -> list[Result]:
        """Time each cell once per round, the cells taking turns, each run in a fresh process.

        Taking turns spreads every contender's samples over the same stretch
        of time, so a machine that slows down for a while (others share it)
        slows them all alike, and their ratios hold. The first cell of each
        contender whose start-up is not yet known measures it too. ``rounds``
        defaults to the settings' ``repeat``.
        """
        samples: list[list[float] | NotAvailable] = [_missing(cell.key) or [] for cell in cells]
        firsts = {cell.key: cell for cell in reversed(cells)}
        startups: dict[str, list[float]] = {
            key: [] for key in firsts if key != "serial" and key not in self._startup
        }
        for _ in range(rounds or self.settings.repeat):
            for index, cell in enumerate(cells):
                wants_startup = cell.key in startups and firsts[cell.key] is cell
                samples[index] = self._sample(cell, samples[index], startups, wants_startup)
        self._startup.update({key: median(values) for key, values in startups.items() if values})
        return [self._result(cell, found) for cell, found in zip(cells, samples, strict=True)]

    def _sample(
        self,
        cell: Cell,
        times: list[float] | NotAvailable,
        startups: dict[str, list[float]],
        wants_startup: bool,
    ) -> list[float] | NotAvailable:
        """Run ``cell`` once more, unless it could not run before."""
        if isinstance(times, NotAvailable):
            return times
        kwargs = {"contender": cell.key, "repeat": 1, "warmup": 1, **cell.spec}
        kwargs["startup_repeat"] = 1 if wants_startup else 0
        found = run_probe("benchmarks.measure:time_map", kwargs, timeout=self.settings.timeout)
        if isinstance(found, NotAvailable):
            return found
        if wants_startup:
            startups[cell.key] += found["startup"]
        return [*times, *found["times"]]

    def _result(self, cell: Cell, found: list[float] | NotAvailable) -> Result:
        if isinstance(found, NotAvailable):
            return found
        startup = None if cell.key == "serial" else self._startup.get(cell.key)
        return Timing(cell.spec["n"], median(found), startup)


def _missing(key: str) -> NotAvailable | None:
    reason = CONTENDERS[key].missing()
    return None if reason is None else NotAvailable(reason)
