"""Sizes: about how many bytes an item holds, and a stream's bytes per item."""

from __future__ import annotations

import array

import pytest

from pipework._sizes import SizeEstimate, approx_size


def test_an_estimate_knows_nothing_until_it_measures():
    sizes = SizeEstimate()
    assert sizes.per_item is None
    assert sizes.items_in(1000, most=50) == 50


def test_a_larger_item_counts_at_once_and_smaller_ones_gradually():
    sizes = SizeEstimate()
    sizes.observe(100)
    sizes.observe(1_000_000)
    assert sizes.items_in(4_000_000, most=4096) == 4
    sizes.observe(100)
    assert sizes.items_in(4_000_000, most=4096) < 10  # not yet forgotten
    for _ in range(60):
        sizes.observe(100)
    assert sizes.items_in(4_000_000, most=4096) == 4096


def test_an_estimate_fits_at_least_one_item_and_at_most_the_cap():
    sizes = SizeEstimate()
    sizes.observe(10_000_000)
    assert sizes.items_in(1_000_000, most=4096) == 1
    sizes = SizeEstimate()
    sizes.observe(0)  # an item that measures as nothing: only the count bounds it
    assert sizes.items_in(1_000_000, most=4096) == 4096


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        (bytes(1_000_000), 1_000_000, 1_000_000),
        ("x" * 5000, 5000, 5000),
        (memoryview(bytes(4096)), 4096, 4096),
        ([bytes(10_000)] * 100, 1_000_000, 1_100_000),  # a sample, scaled by the length
        ({"a": bytes(50_000)}, 50_000, 60_000),
        ((1, 2, 3), 28, 500),
        (12345, 20, 40),
    ],
)
def test_approx_size_counts_the_data_a_value_holds(value, low, high):
    assert low <= approx_size(value) <= high


def test_approx_size_counts_an_array_by_its_buffer():
    assert approx_size(memoryview(array.array("d", range(1000)))) == 8000


def test_approx_size_never_raises_for_a_strange_object():
    class Strange:
        @property
        def nbytes(self):
            raise RuntimeError("not computed yet")

    assert approx_size(Strange()) == 0
