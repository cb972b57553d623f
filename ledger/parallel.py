"""Fork-based fan-out for the passes that read every object or log of a store.

Why fork: verify and audit read hundreds of thousands of files; workers forked after the
parent has loaded what they need see it without copying, and send back only their
findings. Where fork is unavailable (or the work is small) everything runs in-process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

MAX_WORKERS = 8
_SHARED: Any = None  # what forked workers read; set only around one `fork_map`


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, so a container's or a scheduler's
    limit), not the machine's count that ``os.cpu_count`` reports."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def shared() -> Any:
    """The object the current `fork_map` shares with its workers."""
    return _SHARED


def fork_map(func: Callable[[list], list], items: list, share: Any, *, serial: bool) -> list:
    """`func` over chunks of `items`, concatenated in chunk order.

    `func` is a module-level function that reads `shared()`; it runs in forked workers
    unless `serial`, one CPU, or no fork. Chunks interleave items so that workers get
    similar loads; callers that need an order sort the result.
    """
    global _SHARED
    workers = min(usable_cpus(), MAX_WORKERS)
    _SHARED = share
    try:
        if serial or workers < 2 or len(items) < 2 or "fork" not in mp.get_all_start_methods():
            return func(items)
        chunks = [c for c in (items[i :: workers * 4] for i in range(workers * 4)) if c]
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            return [x for part in pool.map(func, chunks) for x in part]
    finally:
        _SHARED = None


__all__ = ["fork_map", "shared", "usable_cpus"]
