"""``licensing.collector.paused``: the cycle collector off for a piece of work, run once after."""

from __future__ import annotations

import gc

import pytest

from licensing import collector


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


@pytest.fixture
def collections():
    seen: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.collect()
    gc.callbacks.append(record)
    yield seen
    gc.callbacks.remove(record)


def test_the_collector_rests_in_the_block_and_frees_its_cycles_once_after(collections):
    import weakref

    with collector.paused():
        assert not gc.isenabled()
        nodes = [Node() for _ in range(5000)]  # enough to wake the collector seven times
        probe = weakref.ref(nodes[0])
        del nodes
        assert probe() is not None and collections == []  # the cycles wait
    assert gc.isenabled()
    assert collections == [0] and probe() is None  # one collection, and the cycles are gone


def test_an_error_in_the_block_turns_the_collector_back_on():
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("the work failed")
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off_and_nested_blocks_collect_once(collections):
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled() and collections == []
    finally:
        gc.enable()
    with collector.paused(), collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled() and collections == [0]
