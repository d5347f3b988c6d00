"""Packets: items with their indexes, sliced and joined without losing where each came from."""

from __future__ import annotations

from pipework._packet import Packet


def test_joined_packets_keep_each_items_index_when_parts_arrive_out_of_order():
    parts = [Packet(range(i, i + 1), [i]) for i in (1, 3, 2, 4)]
    joined = Packet.concat(parts)
    assert list(joined.index) == joined.items == [1, 3, 2, 4]


def test_contiguous_parts_join_into_one_range():
    joined = Packet.concat([Packet(range(2), [0, 1]), Packet(range(2, 3), [2])])
    assert joined.index == range(3)
    assert joined.items == [0, 1, 2]


def test_a_gap_between_parts_gives_a_list_of_indexes():
    joined = Packet.concat([Packet(range(2), ["a", "b"]), Packet(range(5, 6), ["c"])])
    assert list(joined.index) == [0, 1, 5]
    assert not isinstance(joined.index, range)


def test_slice_keeps_indexes_and_items_together():
    packet = Packet(range(10, 15), list("abcde"))
    part = packet.slice(1, 3)
    assert list(part.index) == [11, 12]
    assert part.items == ["b", "c"]
    assert len(part) == 2


def test_repr_shows_length_and_first_index_not_the_items():
    text = repr(Packet(range(7, 9), [b"x" * 1000, b"y"]))
    assert text.startswith("Packet(len=2")
    assert "xxxx" not in text
