"""Fork-based fan-out for the passes that read every object or log of a store.

Why fork: verify and audit read hundreds of thousands of files; workers forked after the
parent has loaded what they need see it without copying, and send back only their
findings. Where fork is unavailable (or the work is small) everything runs in-process.
"""

from __future__ import annotations

import functools
import gc
import multiprocessing as mp
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

MAX_WORKERS = 8
_SHARED: Any = None  # what forked workers read; set only around one `fork_map`


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, so a container's or a scheduler's
    limit), not the machine's count that ``os.cpu_count`` reports."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def without_gc_pauses(func: Callable[P, T]) -> Callable[P, T]:
    """Run `func` with the cyclic garbage collector off (restored after).

    Why: a pass over a big store holds millions of live objects (parsed envelopes, models,
    journal events) and makes few cycles; each full collection walks all of them, and in a
    forked worker it also writes to every page it walks, copying the parent's heap. At 78k
    runs that was 7 of an audit's 50 seconds. Reference counting still frees everything
    acyclic as it goes; the collector runs again once the pass returns.
    """

    @functools.wraps(func)
    def paused(*args: P.args, **kwargs: P.kwargs) -> T:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return paused


def shared() -> Any:
    """The object the current `fork_map` shares with its workers."""
    return _SHARED


def fork_map(
    func: Callable[[list], list],
    items: list,
    share: Any,
    *,
    serial: bool,
    meanwhile: Callable[[], object] | None = None,
) -> list:
    """`func` over chunks of `items`, concatenated in chunk order.

    `func` is a module-level function that reads `shared()`; it runs in forked workers
    unless `serial`, one CPU, or no fork. Chunks interleave items so that workers get
    similar loads; callers that need an order sort the result. `meanwhile` runs in this
    process while the workers work (in-process: before them), so that what the caller needs
    next, such as a slow import, costs no wall time of its own.
    """
    global _SHARED
    workers = min(usable_cpus(), MAX_WORKERS)
    _SHARED = share
    try:
        if serial or workers < 2 or len(items) < 2 or "fork" not in mp.get_all_start_methods():
            if meanwhile is not None:
                meanwhile()
            return func(items)
        chunks = [c for c in (items[i :: workers * 4] for i in range(workers * 4)) if c]
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            parts = pool.map(func, chunks)  # (every chunk submitted: the workers start)
            if meanwhile is not None:
                meanwhile()
            return [x for part in parts for x in part]
    finally:
        _SHARED = None


__all__ = ["fork_map", "shared", "usable_cpus", "without_gc_pauses"]
