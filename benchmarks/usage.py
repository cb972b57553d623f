"""What a benchmark reads from the OS around a timed pass: CPU seconds and disk reads of
this process and its reaped children (forked workers included), and a cold page cache.

Shared by `audit_bench.py` and `store_read_bench.py`, which import it from this folder.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path


def usage() -> tuple[float, float]:
    """(CPU seconds, MB read from the disk, not the page cache) of this process and its
    reaped children."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    return cpu, (own.ru_inblock + kids.ru_inblock) * 512 / 1e6


def drop_page_cache() -> None:
    """Evict the page cache (Linux, as root) so that the next pass reads from the disk."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError as exc:
        raise SystemExit(f"--cold needs root on Linux to drop the page cache: {exc}") from None
