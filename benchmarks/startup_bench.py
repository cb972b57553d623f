"""Start-up benchmark: `ledger --help`, `ledger verify` and `ledger audit` timed as a user
runs them, each a fresh process of the console script on a paper-sized store.

Prints one JSON object. Not a test. The store is built through the real API (the sim
campaign of `benchmarks/audit_bench.py`, 613 runs by default: the papers' size, 300 step
lines per raw log), or taken from `--existing STORE`. Each command runs once untimed (page
cache, bytecode cache), then `--repeat` times; reported per command: wall seconds (median
and best), CPU seconds of the child (user + sys, from `RUSAGE_CHILDREN`: the figure that
does not move with other load on the machine), the load average around the runs, and one
`python -X importtime` run: seconds spent importing, modules loaded, and which of the heavy
libraries (SciPy's stats, statsmodels, pandas, matplotlib, torch, DuckDB) were loaded.

    python benchmarks/startup_bench.py                     # build a 613-run store, time it
    python benchmarks/startup_bench.py --existing .ledger  # time a store built earlier

`PYTHONDONTWRITEBYTECODE` is removed from the children's environment: a user's first command
writes the bytecode cache and every later one reads it; a shell that forbids the cache
recompiles the package's own modules on every start (about 0.2 s here), which is not what a
user waits for. `LEDGER` overrides the command (default: the `ledger` next to this Python).

Measured on the 2-core dev VM, before (commit 5fcdd7a) and after, in the same hour, on a
615-run store; CPU seconds are the comparable figure (the load average was 8 on 2 cores,
which inflates every wall figure about threefold); at load average 2 the audit took
1.66-1.81 s wall, `verify` 0.29-0.33 s and `--help` 0.10 s:

    command   CPU s before -> after   modules loaded   heavy libraries loaded after
    --help        0.15 -> 0.22*          248 -> 340      none
    verify        1.35 -> 0.47          1102 -> 404      none (DuckDB only with an index)
    audit         2.77 -> 1.94          2045 -> 1695     statsmodels' OLS with SciPy's stats
                                                         and pandas (no statsmodels.api)

(*) the `ledger evaluate` command, merged meanwhile, loads pydantic models at start-up.

Later, with the provenance checks (signed records, candidates and baselines re-derived,
attempts, seeds, throughput) and the typed documents merged, at load average 2 on a quiet
machine, 615 runs: `--help` 0.25 s wall (0.25 CPU-s, 394 modules), `verify` 0.51-0.60 s
(0.60 CPU-s), `audit` 1.93-2.01 s (2.17 CPU-s, 1721 modules): the audit is back at the
2-second line. Its imports (SciPy's special functions pull in SciPy's array-API layer and
with it numpy.testing and numpy.f2py, ~0.13 s; statsmodels' OLS; the pydantic models,
~0.06 s) are about a third of it.

Then the run checks fork from 400 runs and statsmodels is imported while they parse (its
~0.5 s no longer adds to theirs). Quiet machine (load under 0.5), 615 runs, 7 runs each,
commit ab71d60 against after, in the same hour:

    command   wall s median (best)          CPU s median
    --help    0.34 (0.30) -> 0.37 (0.32)    0.34 -> 0.37
    verify    0.66 (0.56) -> 0.49 (0.47)    0.62 -> 0.49
    audit     2.20 (1.93) -> 1.73 (1.68)    2.22 -> 2.15
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_bench import build_store  # noqa: E402  (this folder, put on the path above)

COMMANDS = {"help": ["--help"], "verify": ["verify"], "audit": ["audit"]}
HEAVY = ("scipy.stats", "statsmodels", "statsmodels.api", "pandas", "matplotlib", "torch", "duckdb")
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def ledger_command() -> list[str]:
    if os.environ.get("LEDGER"):
        return shlex.split(os.environ["LEDGER"])
    return [str(Path(sys.executable).with_name("ledger"))]


def child_env(key_dir: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for var in ("LEDGER_STORE", "LEDGER_HOST", "LEDGER_DEBUG"):
        env.pop(var, None)
    if key_dir is not None:
        env["LEDGER_KEY_DIR"] = str(key_dir)
    return env


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user + sys) of one child process that must exit 0."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


# Runs the command in-process under -X importtime and writes every module it loaded to argv[1].
LOADED = (
    "import atexit, json, runpy, sys; out = sys.argv[1]; "
    "atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(sys.modules)))); "
    "sys.argv = ['ledger', *sys.argv[2:]]; runpy.run_module('gateledger', run_name='__main__')"
)


def import_profile(args: list[str], env: dict[str, str]) -> dict:
    """Seconds importing (top-level imports summed), modules loaded, heavy ones present."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [sys.executable, "-X", "importtime", "-c", LOADED, out.name, *args]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        loaded = set(json.loads(Path(out.name).read_text()))
    total_us = 0
    for line in proc.stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if match and len(match.group(3)) == 1:  # one space: imported by no other module
            total_us += int(match.group(2))
    return {
        "import_s": round(total_us / 1e6, 3),
        "modules": len(loaded),
        "heavy_loaded": [h for h in HEAVY if h in loaded],
    }


def measure(store: Path, key_dir: Path | None, repeat: int) -> dict:
    env = child_env(key_dir)
    command = ledger_command()
    results = {}
    for name, args in COMMANDS.items():
        full = [*args] if name == "help" else ["--store", str(store), *args]
        argv = [*command, *full]
        run_once(argv, env)  # untimed: page cache, bytecode cache
        load_before = os.getloadavg()[0]
        walls, cpus = [], []
        for _ in range(repeat):
            wall, cpu = run_once(argv, env)
            walls.append(wall)
            cpus.append(cpu)
        results[name] = {
            "wall_s_median": round(statistics.median(walls), 3),
            "wall_s_best": round(min(walls), 3),
            "cpu_s_median": round(statistics.median(cpus), 3),
            "cpu_s_best": round(min(cpus), 3),
            "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            **import_profile(full, env),
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=613, help="size of the store to build")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per command")
    parser.add_argument("--existing", metavar="STORE", help="time this store instead")
    args = parser.parse_args(argv)
    out: dict = {"benchmark": "startup", "repeat": args.repeat, "cpus": os.cpu_count()}
    if args.existing:
        out["runs"] = None
        out["commands"] = measure(Path(args.existing), None, args.repeat)
    else:
        with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
            key_dir = Path(tmp) / "keys"
            os.environ["LEDGER_KEY_DIR"] = str(key_dir)
            os.environ.pop("LEDGER_PASSPHRASE", None)
            _, runs = build_store(Path(tmp), args.runs)
            out["runs"] = runs
            out["commands"] = measure(Path(tmp) / ".ledger", key_dir, args.repeat)
    out["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
