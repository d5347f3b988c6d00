"""PNG plots of the results, with matplotlib's Agg backend; skipped if matplotlib is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _pyplot() -> Any:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def throughput(plot: dict[str, Any], path: Path, workers: int) -> None:
    """Items/s and speedup over serial against task size, one line per contender."""
    plt = _pyplot()
    sizes = plot["sizes_ms"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    for name, series in plot["series"].items():
        style = {"linewidth": 3} if name.startswith("pipework.map") else {}
        _line(left, sizes, series["rate"], name, style)
        _line(right, sizes, series["speedup"], name, style)
    left.set(xscale="log", yscale="log", xlabel="task size (ms)", ylabel="items/s")
    left.set_title("Throughput against task size")
    right.axhline(workers, color="grey", linestyle=":", label=f"limit: {workers} workers")
    right.set(xscale="log", xlabel="task size (ms)", ylabel="speedup over serial")
    right.set_title("Speedup after start-up")
    right.set_ylim(bottom=0)
    right.legend(fontsize=7, loc="lower right")
    _save(plt, figure, path)


def _line(
    axes: Any, xs: list[float], ys: list[float | None], name: str, style: dict[str, Any]
) -> None:
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    if points:
        axes.plot(*zip(*points, strict=True), marker="o", label=name, **style)


def latency(samples: dict[str, list[float]], path: Path) -> None:
    """The distribution of each contender's latencies, as cumulative curves."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, 5))
    for name, values in samples.items():
        ordered = sorted(v * 1000 for v in values)
        fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
        axes.step(ordered, fractions, where="post", label=name)
    axes.set(xscale="log", xlabel="latency (ms)", ylabel="fraction of items")
    axes.set_title("Latency of a lone item through an idle process stage")
    axes.axhline(0.5, color="grey", linestyle=":")
    axes.axhline(0.99, color="grey", linestyle=":")
    axes.legend(fontsize=8, loc="lower right")
    _save(plt, figure, path)


def _save(plt: Any, figure: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
