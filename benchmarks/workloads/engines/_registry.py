"""Every engine and every variant by key, and the probe that times one variant."""

from __future__ import annotations

from ._common import LOCAL, OFFSET, WARMUP, Engine, Job, Variant, function_for
from ._dask import DASK
from ._ray import RAY

ENGINES: dict[str, Engine] = {"dask": DASK, "ray": RAY}
VARIANTS: dict[str, Variant] = {
    LOCAL.key: LOCAL,
    **{v.key: v for engine in ENGINES.values() for v in engine.variants},
}


def time_variant(
    *, variant: str, address: str | None, task: str, iterations: int, n: int, batch: int
) -> dict[str, float]:
    """Time one call of ``variant`` on ``n`` items, after a warm-up and a 1-item call (a probe)."""
    calls = {
        "warmup": list(range(OFFSET, OFFSET + WARMUP)),
        "startup": [2 * OFFSET],
        "seconds": list(range(n)),
    }
    job = Job(address, task, function_for(task, iterations), calls, batch)
    found = VARIANTS[variant].runner(job)
    return {"seconds": found["seconds"], "startup": found["startup"]}
