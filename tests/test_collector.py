"""``licensing.collector.paused``: the cycle collector off for a piece of work, run once after."""

from __future__ import annotations

import gc

import pytest

from licensing import collector


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_the_collector_rests_in_the_block_and_frees_its_cycles_once_after(gc_collections):
    import weakref

    gc.collect()
    gc_collections.clear()  # from a fresh count: nothing of the test's set-up is counted
    with collector.paused():
        assert not gc.isenabled()
        nodes = [Node() for _ in range(5000)]  # enough to wake the collector seven times
        probe = weakref.ref(nodes[0])
        del nodes
        assert probe() is not None and gc_collections == []  # the cycles wait
    assert gc.isenabled()
    assert gc_collections == [0] and probe() is None  # one collection, and the cycles are gone


def test_an_error_in_the_block_turns_the_collector_back_on():
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("the work failed")
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off_and_nested_blocks_collect_once(gc_collections):
    gc.collect()
    gc_collections.clear()
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled() and gc_collections == []
    finally:
        gc.enable()
    gc.collect()
    gc_collections.clear()
    with collector.paused(), collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled() and gc_collections == [0]
