"""ChunkSizer: how many items a pooled stage sends to a worker at once."""

from __future__ import annotations

import pytest

from pipework._stages._chunking import CHUNK_BYTES, DEFAULT_TARGET, MAX_CHUNK, ChunkSizer


def test_fixed_size_ignores_measurements():
    sizer = ChunkSizer(7)
    assert sizer.size() == 7
    sizer.observe(100, 10.0)
    sizer.observe(100, 0.0)
    assert sizer.size() == 7


def test_adaptive_starts_at_one():
    assert ChunkSizer().size() == 1


def test_default_target_is_a_few_milliseconds():
    assert 0 < DEFAULT_TARGET < 0.1


def test_sizes_chunks_to_take_the_target_time():
    sizer = ChunkSizer(target=1.0)
    sizer.observe(4, 1.0)  # 0.25 s an item: 4 items make 1 s
    assert sizer.size() == 4


@pytest.mark.parametrize(("items", "seconds"), [(10, 0.1), (1, 0.001), (1000, 0.5)])
def test_first_measurement_aims_at_the_default_target(items, seconds):
    sizer = ChunkSizer()
    sizer.observe(items, seconds)
    per_item = seconds / items
    assert sizer.size() == max(1, min(MAX_CHUNK, int(DEFAULT_TARGET / per_item)))


def test_slower_items_make_smaller_chunks():
    fast, slow = ChunkSizer(target=1.0), ChunkSizer(target=1.0)
    fast.observe(10, 0.1)
    slow.observe(10, 1.0)
    assert fast.size() > slow.size() > 1


def test_clamps_to_max_chunk():
    sizer = ChunkSizer(target=1.0)
    sizer.observe(10, 1e-6)
    assert sizer.size() == MAX_CHUNK


def test_clamps_to_at_least_one():
    sizer = ChunkSizer(target=0.001)
    sizer.observe(1, 60.0)
    assert sizer.size() == 1


def test_zero_duration_does_not_divide_by_zero():
    sizer = ChunkSizer()
    sizer.observe(50, 0.0)
    assert sizer.size() == MAX_CHUNK
    sizer.observe(50, 0.0)
    assert sizer.size() == MAX_CHUNK


@pytest.mark.parametrize("items", [0, -3])
def test_empty_observation_is_ignored(items):
    sizer = ChunkSizer(target=1.0)
    sizer.observe(items, 5.0)
    assert sizer.size() == 1
    sizer.observe(2, 1.0)
    sizer.observe(items, 100.0)
    assert sizer.size() == 2


def test_smoothing_damps_one_outlier():
    sizer = ChunkSizer(target=1.0)
    sizer.observe(1, 0.01)
    assert sizer.size() == 100
    sizer.observe(1, 0.1)  # one slow chunk: the size moves, but not all the way
    assert 10 < sizer.size() < 100


def test_smoothing_follows_a_lasting_change_within_a_few_observations():
    sizer = ChunkSizer(target=1.0)
    sizer.observe(1, 0.01)
    sizes = []
    for _ in range(10):
        sizer.observe(1, 0.1)
        sizes.append(sizer.size())
    assert sizes == sorted(sizes, reverse=True)  # moves steadily toward the new size
    assert sizes[-1] == 10


# Bytes: large items travel in small chunks -------------------------------------------------


def test_large_items_make_chunks_of_a_few_megabytes_however_cheap():
    sizer = ChunkSizer()
    sizer.observe(1, 1e-6, item_bytes=1_000_000)  # cheap, but a megabyte each
    assert sizer.size() == CHUNK_BYTES // 1_000_000


def test_an_item_larger_than_the_budget_goes_alone():
    sizer = ChunkSizer()
    sizer.observe(1, 1e-6, item_bytes=10 * CHUNK_BYTES)
    assert sizer.size() == 1


def test_small_items_still_reach_the_largest_chunk():
    sizer = ChunkSizer()
    sizer.observe(100, 1e-5, item_bytes=28)  # ints
    assert sizer.size() == MAX_CHUNK


def test_a_larger_item_shrinks_chunks_at_once_and_smaller_ones_gradually():
    sizer = ChunkSizer()
    sizer.observe(10, 1e-5, item_bytes=100)
    sizer.observe(1, 1e-6, item_bytes=2_000_000)
    assert sizer.size() == CHUNK_BYTES // 2_000_000  # at once
    sizer.observe(10, 1e-5, item_bytes=100)
    assert sizer.size() < MAX_CHUNK  # not yet forgotten
    for _ in range(60):
        sizer.observe(10, 1e-5, item_bytes=100)
    assert sizer.size() == MAX_CHUNK


def test_time_still_limits_chunks_of_small_slow_items():
    sizer = ChunkSizer(target=0.02)
    sizer.observe(1, 0.01, item_bytes=10)
    assert sizer.size() == 2
