"""CollectionPacer: no automatic collection inside, a collection every `every` steps, and the
collector exactly as it was afterwards."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from migrainefhir.export.pacing import CollectionPacer


class _Node:
    """An object that can be part of a reference cycle and be watched by a weakref."""

    def __init__(self) -> None:
        self.other: object = None


def _cycle() -> weakref.ref[_Node]:
    """A two-node cycle nothing else holds: only the cyclic collector can free it."""
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return weakref.ref(first)


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    """Each test starts with the collector enabled and nothing frozen, and leaves it so."""
    gc.collect()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()
    gc.enable()


def test_automatic_collection_is_off_inside() -> None:
    with CollectionPacer(every=3):
        assert not gc.isenabled()


def test_a_cycle_lives_until_the_every_th_step() -> None:
    with CollectionPacer(every=3) as pacer:
        watched = _cycle()
        pacer.step()
        pacer.step()
        assert watched() is not None
        pacer.step()
        assert watched() is None


def test_every_step_collects_with_every_1() -> None:
    with CollectionPacer(every=1) as pacer:
        watched = _cycle()
        pacer.step()
        assert watched() is None


def test_objects_alive_on_entry_are_left_out_of_its_collections() -> None:
    watched = _cycle()
    with CollectionPacer(every=1) as pacer:
        pacer.step()
        assert watched() is not None  # frozen on entry
    gc.collect()
    assert watched() is None  # collectable again after exit


def test_survivors_of_a_collection_are_left_out_of_later_ones() -> None:
    with CollectionPacer(every=1) as pacer:
        first = _Node()
        first.other = _Node()
        first.other.other = first  # a cycle, held by `first` through the next collection
        watched = weakref.ref(first)
        pacer.step()
        del first
        pacer.step()
        assert watched() is not None  # survived a collection: frozen
    gc.collect()
    assert watched() is None


def test_exit_reenables_the_collector() -> None:
    with CollectionPacer(every=2):
        pass
    assert gc.isenabled()


def test_exit_keeps_a_disabled_collector_disabled() -> None:
    gc.disable()
    with CollectionPacer(every=2):
        pass
    assert not gc.isenabled()


def test_an_exception_inside_restores_the_collector() -> None:
    with pytest.raises(RuntimeError), CollectionPacer(every=2):
        raise RuntimeError("boom")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("every", [0, -1])
def test_every_below_1_is_refused(every: int) -> None:
    with pytest.raises(ValueError, match=f"every must be at least 1, not {every}"):
        CollectionPacer(every=every)
