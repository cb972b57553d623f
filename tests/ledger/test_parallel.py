"""The fan-out the big passes use: same results forked or in-process, the parent's own work
done meanwhile, and the cyclic collector paused only for the pass."""

from __future__ import annotations

import gc
import os

import pytest

from ledger import parallel
from ledger.parallel import fork_map, shared, without_gc_pauses


def _square_with_pid(items: list[int]) -> list[tuple[int, int]]:
    offset = shared()
    return [(x * x + offset, os.getpid()) for x in items]


@pytest.mark.parametrize("serial", [True, False])
def test_fork_map_gives_every_item_once_and_runs_meanwhile_in_this_process(serial, monkeypatch):
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    done: list[int] = []
    out = fork_map(
        _square_with_pid,
        list(range(50)),
        1000,
        serial=serial,
        meanwhile=lambda: done.append(os.getpid()),
    )
    assert sorted(v for v, _ in out) == [x * x + 1000 for x in range(50)]
    assert done == [os.getpid()]  # once, here
    pids = {pid for _, pid in out}
    if serial or "fork" not in parallel.mp.get_all_start_methods():
        assert pids == {os.getpid()}
    else:
        assert os.getpid() not in pids  # the items ran in workers
    assert shared() is None  # nothing left shared after the pass


def test_the_collector_is_paused_for_the_pass_and_restored_after():
    seen = []

    @without_gc_pauses
    def a_pass() -> str:
        seen.append(gc.isenabled())
        return "done"

    assert gc.isenabled()
    assert a_pass() == "done" and seen == [False] and gc.isenabled()
    gc.disable()
    try:
        a_pass()
        assert not gc.isenabled()  # one that was off stays off
    finally:
        gc.enable()
