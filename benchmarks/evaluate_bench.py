"""Evaluate benchmark: wall and CPU seconds of `ledger evaluate` on an LCDB-size replay table
and on a three-gate simulator campaign. Prints one JSON object. Not a test.

The replay table is synthetic and seeded (no download): 300 conditions x 10 fidelities
(1, 2, 4, ... 512) x 100 recorded replicates = 300,000 rows, learning curves
a + b * f^-0.5 with a run-level offset (sd 0.02) and point noise (sd 0.005), costs
cumulative. Its campaign screens all 300 at fidelity 8 (one seed), continues the best 30
to 64 (three seeds) and the best 5 to 512 (five seeds). Timed separately: reading the table,
the protocol alone, each default baseline, all of them, and the default run with the
bootstrap over replicates. The machine's load average is printed beside the figures: on a
shared 2-core box wall seconds vary with it, CPU seconds much less.

    python benchmarks/evaluate_bench.py                 # 200 trials, seed 0
    python benchmarks/evaluate_bench.py --trials 50 --asha
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.campaign import load_campaign, parse_campaign  # noqa: E402
from stages.evaluate import evaluate  # noqa: E402
from stages.evaluation_sources import replay_csv_source, sim_source  # noqa: E402


def write_lcdb_size(
    out: Path, conditions: int = 300, fidelities: int = 10, replicates: int = 100
) -> tuple[Path, Path]:
    """The synthetic table and its campaign (see the module docstring)."""
    rng = random.Random(0)
    out.mkdir(parents=True, exist_ok=True)
    steps = [2**i for i in range(fidelities)]
    names = [f"c{c:03d}" for c in range(conditions)]
    with open(out / "curves.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["condition", "budget", "metric", "cost_gpu_s", "seed"])
        for name in names:
            a, b, speed = 0.1 + 0.3 * rng.random(), rng.uniform(0.3, 1.0), rng.uniform(0.5, 2)
            for seed in range(replicates):
                offset = rng.gauss(0, 0.02)
                for f in steps:
                    value = a + b * f**-0.5 + offset * f**-0.25 + rng.gauss(0, 0.005)
                    writer.writerow([name, f, f"{value:.5f}", f"{speed * f:.3f}", seed])
    conds = "\n".join(f"{n} = {{ learner = {i} }}" for i, n in enumerate(names))
    (out / "campaign.toml").write_text(
        f"""[campaign]
name = "lcdb-size"
[conditions]
{conds}
[[stages]]
name = "s8"
budget = 8
add = {json.dumps(names)}
rule = {{ top_k = 30 }}
[[stages]]
name = "s64"
budget = 64
from = "s8"
seeds = [0, 1, 2]
rule = {{ top_k = 5 }}
[[stages]]
name = "s512"
budget = 512
from = "s64"
seeds = [0, 1, 2, 3, 4]
rule = {{ top_k = 1 }}
"""
    )
    return out / "curves.csv", out / "campaign.toml"


SIM = """
[campaign]
name = "bench"
[base]
depth = 3
aspect_ratio = 48
device_batch_size = 8
total_batch_size = 2048
matrix_lr = 0.02
warmdown_ratio = 0.4
[factors]
A = { key = "total_batch_size", levels = [1024, 4096] }
B = { key = "depth", levels = [2, 4] }
C = { key = "aspect_ratio", levels = [32, 64] }
D = { key = "matrix_lr", levels = [0.01, 0.04] }
E = { key = "warmdown_ratio", levels = [0.2, 0.6] }
[[stages]]
name = "screen"
budget = "2m"
design = "fractional"
runs = 16
rule = { top_k = 4, fdr = 0.10 }
[[stages]]
name = "gate"
budget = "10m"
from = "screen"
seeds = [0, 1]
rule = { top_k = 2 }
[[stages]]
name = "confirm"
budget = "60m"
from = "gate"
seeds = [0, 1]
rule = { top_k = 1 }
[sim]
effects = { A = 0.010, B = -0.020, C = -0.006, D = 0.004, E = -0.003 }
interactions = { AB = 0.004 }
penalties = { A = 0.020 }
noise = 0.004
"""


def timed(fn) -> tuple[dict, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return {
        "wall_s": round(time.perf_counter() - wall, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
    }, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--asha", action="store_true", help="also time Optuna's ASHA")
    args = parser.parse_args()
    out: dict = {"trials": args.trials, "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        table, campaign_path = write_lcdb_size(Path(tmp))
        camp = load_campaign(campaign_path, runner_keys=False)
        lcdb: dict = {"rows": 300 * 10 * 100}
        lcdb["read_table"], source = timed(lambda: replay_csv_source(table, camp, args.seed))
        runs = [
            ("protocol", []),
            ("successive-halving", ["successive-halving"]),
            ("hyperband", ["hyperband"]),
            ("random", ["random"]),
            ("protocol+all", None),
        ]
        if args.asha:
            runs.append(("asha", ["asha"]))
        for name, against in runs:
            kwargs = {} if against is None else {"against": against}
            lcdb[name], result = timed(
                lambda kw=kwargs: evaluate(
                    camp, source, trials=args.trials, seed=args.seed, bootstrap=0, **kw
                )
            )
        lcdb["protocol+all+bootstrap (default)"], result = timed(
            lambda: evaluate(camp, source, trials=args.trials, seed=args.seed)
        )
        lcdb["verdict"] = result.verdict
        out["lcdb_size"] = lcdb
    sim_camp = parse_campaign(SIM, "bench.toml")
    sim: dict = {}
    sim["protocol"], _ = timed(
        lambda: evaluate(sim_camp, sim_source(sim_camp, args.seed), trials=args.trials, against=[])
    )
    sim["protocol+all"], result = timed(
        lambda: evaluate(sim_camp, sim_source(sim_camp, args.seed), trials=args.trials)
    )
    sim["verdict"] = result.verdict
    out["sim_three_gates"] = sim
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
