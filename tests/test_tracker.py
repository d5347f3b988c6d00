"""Tracker: a worker's position in its chunk, read by the parent through shared memory."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from pipework._worker._tracker import Tracker

pytestmark = pytest.mark.timeout(60)

CONTEXT = multiprocessing.get_context("forkserver")


def walk(tracker, positions, done):
    for position in range(positions):
        tracker.begin(position)
    done.set()
    time.sleep(60)  # hold the last position until the parent has read it


def test_a_new_tracker_reads_position_zero_never_started():
    assert Tracker(CONTEXT).read() == (0, 0.0)


def test_the_parent_reads_what_a_worker_process_wrote():
    tracker = Tracker(CONTEXT)
    done = CONTEXT.Event()
    before = time.monotonic()
    worker = CONTEXT.Process(target=walk, args=(tracker, 5, done))
    worker.start()
    try:
        assert done.wait(30)
        position, started = tracker.read()
        assert position == 4
        assert before <= started <= time.monotonic()  # one monotonic clock for both
    finally:
        worker.kill()
        worker.join()


def test_a_write_cut_in_the_middle_still_reads_the_last_position():
    tracker = Tracker(CONTEXT)
    tracker.begin(7)
    tracker._slots[0] += 1  # a worker killed between the two counts leaves them odd
    assert tracker.read()[0] == 7
