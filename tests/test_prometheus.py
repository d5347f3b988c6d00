"""The Prometheus exporter: a real service's figures, scraped as Prometheus reads them.

Each test registers a collector in a registry of its own, renders it with
prometheus-client's own exposition, and parses the text back with its own
parser, so what is checked is what a Prometheus server would store.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import pipework
from pipework import Pipeline

prometheus_client = pytest.importorskip(
    "prometheus_client", reason="the prometheus extra is not installed"
)
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def scrape(collector):
    registry = prometheus_client.CollectorRegistry()
    registry.register(collector)
    text = prometheus_client.generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def double(x):
    return 2 * x


async def test_a_services_counts_and_figures_are_published_per_stage():
    async with Pipeline.service(list).map(double, on="thread", workers=2).open() as service:
        assert [await service.submit(i) for i in range(20)] == [2 * i for i in range(20)]
        got = scrape(pipework.prometheus_collector(service.snapshot, labels={"app": "test"}))
    stage = (("app", "test"), ("kind", "thread map"), ("stage", "#1 double"))
    assert got[("pipework_stage_items_out_total", stage)] == 20
    assert got[("pipework_stage_items_in_total", stage)] == 20
    assert got[("pipework_stage_items_failed_total", stage)] == 0
    assert got[("pipework_stage_capacity", stage)] == 2
    assert 0 <= got[("pipework_stage_utilisation", stage)] <= 1
    assert 0 <= got[("pipework_stage_input_fill", stage)] <= 1
    assert got[("pipework_stage_busy_seconds_total", stage)] >= 0
    p50 = got[("pipework_stage_latency_seconds", (*stage[:2], ("quantile", "0.5"), stage[2]))]
    p99 = got[("pipework_stage_latency_seconds", (*stage[:2], ("quantile", "0.99"), stage[2]))]
    assert 0 < p50 <= p99
    assert got[("pipework_elapsed_seconds", (("app", "test"),))] > 0


async def test_each_scrape_reads_a_new_snapshot():
    async with Pipeline.service(list).map(double).open() as service:
        collector = pipework.prometheus_collector(service.snapshot, namespace="mine")
        await service.submit(1)
        first = scrape(collector)
        await service.submit(2)
        second = scrape(collector)
    key = ("mine_stage_items_out_total", (("kind", "inline map"), ("stage", "#1 double")))
    assert (first[key], second[key]) == (1, 2)


def test_importing_pipework_does_not_import_prometheus_client():
    code = "import sys, pipework; print('prometheus_client' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
