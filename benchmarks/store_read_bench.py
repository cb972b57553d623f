"""Store read benchmark: the seconds to read every file a verify scan reads, cold and warm.

Prints one JSON object. Not a test. Reads, as `ledger.scan.scan_objects` does (forked
workers over both cores, each file opened once and read whole), every loose object file
and every pack of each store given, with the page cache dropped first (`--cold`, Linux,
root) or warm, best of --repeat. Nothing is hashed or parsed: this is the part of an audit
that the store's layout decides, and it depends on the disk far more than on the CPU load
of a shared machine (the audit's own figures, `audit_bench.py`, move with that load).

    python benchmarks/store_read_bench.py --cold /work/bench100k/.ledger /work/bench78k-packed/.ledger

Measured on the 2-core dev VM, load average 1.3, best of 3, the 77,844-run store (2.75 GB of
objects) loose and packed (`ledger pack --all-parts` of a copy):

    layout   files                          cache  read s  CPU s  disk MB
    loose    156,156 objects                cold   11.44   9.59   3208
    packed   234 packs + 468 objects        cold    1.51   0.69   2755
    loose    156,156 objects                warm    0.97   1.87      0
    packed   234 packs + 468 objects        warm    0.21   0.39      0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# (below the path line: the repository's packages without an install)
from usage import drop_page_cache, usage  # noqa: E402  (this folder)

from ledger.parallel import fork_map  # noqa: E402
from ledger.store import Store  # noqa: E402


def _read(paths: list[str]) -> list[int]:
    sizes = []
    for path in paths:
        with open(path, "rb") as fh:
            sizes.append(len(fh.read()))
    return sizes


def measure(root: str, repeat: int, cold: bool) -> dict:
    store = Store.open(root)
    packs = [str(p) for _host, p in store.pack_files()]
    loose = [str(p) for _oid, p in store.loose_objects()]
    files = packs + loose  # the scan's order: packs first, then loose files by id
    best: dict = {}
    for _ in range(repeat):
        if cold:
            drop_page_cache()
        cpu, disk = usage()
        t = time.perf_counter()
        sizes = fork_map(_read, files, None, serial=False)
        wall = time.perf_counter() - t
        cpu2, disk2 = usage()
        if not best or wall < best["read_s"]:
            best = {
                "read_s": round(wall, 3),
                "cpu_s": round(cpu2 - cpu, 2),
                "disk_read_mb": round(disk2 - disk, 1),
                "load_avg": [round(x, 2) for x in os.getloadavg()],
            }
    return {
        "store": root,
        "version": store.version(),
        "packs": len(packs),
        "loose_files": len(loose),
        "bytes": sum(sizes),
        "cache": "cold" if cold else "warm",
        **best,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stores", nargs="+", help="store roots (the .ledger folders)")
    parser.add_argument("--repeat", type=int, default=3, help="timed reads per store (best)")
    parser.add_argument(
        "--cold", action="store_true", help="drop the page cache before each read (root)"
    )
    args = parser.parse_args(argv)
    results = [measure(root, args.repeat, args.cold) for root in args.stores]
    print(
        json.dumps({"benchmark": "store_read", "repeat": args.repeat, "results": results}, indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
