"""The figures of a running pipeline or service, published for Prometheus.

A collector in prometheus-client's sense: each scrape takes one `Snapshot`
and turns it into metric families, so publishing costs nothing between
scrapes and adds no work per item. ``prometheus_client`` is imported only
when a collector is made (the ``pipework[prometheus]`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from ._snapshot import Snapshot, StageSnapshot

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

_QUANTILES = (("0.5", "p50"), ("0.9", "p90"), ("0.99", "p99"))

# Counted up over the run: exposed with Prometheus's ``_total`` suffix.
_COUNTERS = {
    "items_in": "Items the stage took from its input.",
    "items_out": "Items the stage put on its output.",
    "items_failed": "Items that failed for good.",
    "items_retried": "Tries made again after a failure.",
    "busy_seconds": "Seconds in the stage's work, summed over its workers or calls.",
    "blocked_seconds": "Seconds the stage waited for room in its output.",
}

_GAUGES: dict[str, tuple[str, Callable[[StageSnapshot], float | None]]] = {
    "utilisation": (
        "Share of the stage's workers or call slots in use over the run.",
        lambda s: s.utilisation,
    ),
    "capacity": ("Items the stage works on at once.", lambda s: s.capacity),
    "rate": ("Items out per second over the last few seconds.", lambda s: s.recent_rate),
    "input_fill": ("How full the stage's input is now, 0 to 1.", lambda s: s.input_fill),
}


class PrometheusCollector:
    """Publishes a pipeline's snapshot at every scrape; see `prometheus_collector`."""

    def __init__(
        self, snapshot: Callable[[], Snapshot], namespace: str, labels: Mapping[str, str]
    ) -> None:
        """Read ``snapshot()`` at each scrape; name metrics ``{namespace}_stage_...``."""
        import prometheus_client  # noqa: F401, PLC0415 - only with the extra; fails early

        self._snapshot = snapshot
        self._namespace = namespace
        self._labels = dict(labels)

    def collect(self) -> Iterator[Metric]:
        """Yield one family per figure, each with a sample per stage."""
        from prometheus_client.core import (  # noqa: PLC0415 - only with the extra
            CounterMetricFamily,
            GaugeMetricFamily,
        )

        snapshot = self._snapshot()
        names = ["stage", "kind", *self._labels]
        prefix = f"{self._namespace}_stage"
        stages = [
            ([f"#{i} {stage.name}", stage.kind, *self._labels.values()], stage)
            for i, stage in enumerate(snapshot.stages)
        ]
        for name, doc in _COUNTERS.items():
            counter = CounterMetricFamily(f"{prefix}_{name}", doc, labels=names)
            for values, stage in stages:
                counter.add_metric(values, float(getattr(stage, name)))
            yield counter
        for name, (doc, read) in _GAUGES.items():
            gauge = GaugeMetricFamily(f"{prefix}_{name}", doc, labels=names)
            for values, stage in stages:
                if (value := read(stage)) is not None:
                    gauge.add_metric(values, float(value))
            yield gauge
        latency = GaugeMetricFamily(
            f"{prefix}_latency_seconds",
            "Per item, the time in the stage's work, by quantile, over the run.",
            labels=[*names, "quantile"],
        )
        for values, stage in stages:
            if stage.latency is not None:
                for quantile, attribute in _QUANTILES:
                    latency.add_metric([*values, quantile], getattr(stage.latency, attribute))
        yield latency
        elapsed = GaugeMetricFamily(
            f"{self._namespace}_elapsed_seconds",
            "Seconds since the run started.",
            labels=list(self._labels),
        )
        elapsed.add_metric(list(self._labels.values()), snapshot.elapsed)
        yield elapsed


def prometheus_collector(
    snapshot: Callable[[], Snapshot],
    *,
    namespace: str = "pipework",
    labels: Mapping[str, str] | None = None,
) -> PrometheusCollector:
    """Publish a running pipeline's figures to Prometheus, read at each scrape.

    ``snapshot`` is what gives the figures: an open service's or stream's
    ``snapshot`` method. Register the collector with a prometheus-client
    registry; every stage is a sample labelled by its ``stage`` (``#1 parse``)
    and ``kind``, plus any ``labels`` you give (``{"pipeline": "ingest"}``).
    Needs the ``pipework[prometheus]`` extra.

    Example::

        from prometheus_client import REGISTRY, generate_latest

        async with pipeline.open() as service:
            REGISTRY.register(pipework.prometheus_collector(service.snapshot))
            ...                              # serve generate_latest() at /metrics

    :raises ModuleNotFoundError: if prometheus-client is not installed
    """
    return PrometheusCollector(snapshot, namespace, labels or {})
