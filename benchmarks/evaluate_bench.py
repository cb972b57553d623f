"""Evaluate benchmark: wall time of `stages.evaluate.evaluate` on a three-gate, 16-run protocol.

Prints one JSON object. Not a test. The protocol is a 16-run half fraction of five factors at
2 minutes (top 4, BH 0.10), a 10-minute gate with two seeds (top 2) and a 60-minute
confirmation (top 1), on a `[sim]` surface with a budget-shrinking penalty. Timed separately:
the protocol's trials alone, then each baseline (successive halving, Hyperband, random) at
the protocol's mean GPU-hours. Reported: seconds, trials per second, and the headline
numbers, so a change that speeds things up can be seen not to change them.

    python benchmarks/evaluate_bench.py                # 200 trials, seed 0
    python benchmarks/evaluate_bench.py --trials 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.campaign import parse_campaign  # noqa: E402
from stages.evaluate import evaluate, sim_source  # noqa: E402

CAMPAIGN = """
[campaign]
name = "bench"
metric = "val_bpb"

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
intercept = 1.0
ref_budget = 120
effects = { A = 0.010, B = -0.020, C = -0.006, D = 0.004, E = -0.003 }
interactions = { AB = 0.004 }
penalties = { A = 0.020 }
noise = 0.004
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    camp = parse_campaign(CAMPAIGN, "bench.toml")
    evaluate(camp, sim_source(camp, args.seed), trials=2, seed=args.seed)  # imports, warm-up
    out: dict = {"trials": args.trials, "seed": args.seed, "timings": {}}
    for against in ([], ["successive-halving"], ["hyperband"], ["random"]):
        start = time.perf_counter()
        result = evaluate(
            camp, sim_source(camp, args.seed), trials=args.trials, seed=args.seed, against=against
        )
        seconds = time.perf_counter() - start
        name = against[0] if against else "protocol"
        out["timings"][name] = {
            "seconds": round(seconds, 3),
            "trials_per_s": round(args.trials / seconds, 1),
        }
        row = result["baselines"][0] if against else result["protocol"]
        out[name] = {k: row[k] for k in ("p_best", "p_top3", "regret_mean", "gpu_hours_mean")}
    start = time.perf_counter()
    evaluate(camp, sim_source(camp, args.seed), trials=args.trials, seed=args.seed)
    out["timings"]["all"] = {"seconds": round(time.perf_counter() - start, 3)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
