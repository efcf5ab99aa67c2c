"""The collector setup of `connectord.heap`: cycles are still freed, survivors frozen."""

from __future__ import annotations

import gc
import weakref

import pytest

from connectord import heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    """A two-object reference cycle nobody else holds; a weak reference to one."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def restore_collector():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tune_raises_the_young_threshold():
    heap.tune()
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, heap.OLDER_THRESHOLD, heap.OLDER_THRESHOLD)


def test_settle_frees_cycles_then_freezes_what_survived():
    garbage = cycle()
    kept = Node()
    frozen = heap.settle()
    assert garbage() is None, "a cycle left over from startup was not collected"
    assert frozen > 0  # (the count moves as other frozen objects are freed by refcount)
    assert all(o is not kept for o in gc.get_objects()), "survivors are frozen, not scanned"


def test_a_second_settle_frees_what_the_first_froze():
    """A reload settles again: what the old configuration held is collectable again."""
    held = [Node(), Node()]
    held[0].other, held[1].other = held[1], held[0]
    probe = weakref.ref(held[0])
    heap.settle()
    del held  # the cycle is garbage now, but frozen: a collection does not see it
    gc.collect()
    assert probe() is not None
    heap.settle()
    assert probe() is None
