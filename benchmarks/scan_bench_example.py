"""Worked example: a staged protocol against textbook baselines on real LLM pretraining curves.

The PyPI package `scan-bench` ships the evaluation curves of 1194 LLM pretraining runs as a
CSV inside the package (`scan_bench/llm/configs_intermediate_summary.csv`: per run its
config, and at each evaluation the fraction of its planned steps done, the validation loss
and the FLOPs spent so far). Install it without its heavy dependencies and only that CSV is
read; nothing is downloaded at run time:

    pip install --no-deps scan-bench==0.2.3
    python benchmarks/scan_bench_example.py --out out/scan-llm      # prints JSON

What it does: keeps the runs evaluated at least 9 times along their training (119 runs, each
first evaluated by 1/8 of its steps), writes them as a replay table (`condition`, `budget` =
the fraction of the run's planned steps, `metric` = validation loss, `cost_gpu_s` = FLOPs so
far at 40% of an A100's 312 TFLOP/s, a stated constant that scales every method alike) and a
campaign in the papers' style (all screened at 1/8 of their steps, the best 24 continued to
half, the best 6 to the end, one winner), then runs `ledger evaluate` against synchronous
successive halving, Hyperband and random search at the protocol's GPU-hours. Budgets are
fractions of each run's planned steps, the table's fidelity unit. Every run has one recorded
curve (one seed), so the protocol's walk is the same in every trial, and says so.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCAN_BENCH = "scan-bench"
MIN_POINTS = 9
GPU_FLOPS = 312e12 * 0.40  # an A100's bf16 peak at 40% utilisation: FLOPs per GPU-second


def scan_llm_csv() -> Path:
    """The LLM curves CSV inside the installed scan-bench package (no import of the package)."""
    try:
        dist = distribution(SCAN_BENCH)
    except PackageNotFoundError:
        raise SystemExit(
            "scan-bench is not installed: pip install --no-deps scan-bench==0.2.3"
        ) from None
    path = Path(str(dist.locate_file("scan_bench/llm/configs_intermediate_summary.csv")))
    if not path.is_file():
        raise SystemExit(f"scan-bench {dist.version} has no {path.name}")
    return path


def curves(source: Path, min_points: int = MIN_POINTS) -> dict[int, list[dict[str, str]]]:
    """config_id -> its evaluations in training order, for runs evaluated >= min_points times."""
    by_config: dict[int, list[dict[str, str]]] = {}
    with open(source, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_config.setdefault(int(row["config_id"]), []).append(row)
    out = {}
    for config, rows in by_config.items():
        rows.sort(key=lambda r: float(r["step_fraction"]))
        if len(rows) >= min_points and float(rows[-1]["step_fraction"]) == 1.0:
            out[config] = rows
    return out


def write_example(out_dir: Path, min_points: int = MIN_POINTS) -> tuple[Path, Path]:
    """Write curves.csv and campaign.toml; return their paths."""
    runs = curves(scan_llm_csv(), min_points)
    names = [f"cfg{config:04d}" for config in sorted(runs)]
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / "curves.csv"
    with open(table, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        # `metric`: scan-bench's valid_loss (minimised), read in the campaign metric's place
        writer.writerow(["condition", "budget", "metric", "cost_gpu_s", "seed"])
        for config in sorted(runs):
            for row in runs[config]:
                writer.writerow(
                    [
                        f"cfg{config:04d}",
                        row["step_fraction"],
                        row["valid_loss"],
                        f"{float(row['flops_so_far']) / GPU_FLOPS:.3f}",
                        row["seed"],
                    ]
                )
    conditions = "\n".join(
        f"{name} = {{ scan_config = {config} }}"
        for name, config in zip(names, sorted(runs), strict=True)
    )
    campaign = out_dir / "campaign.toml"
    campaign.write_text(
        f"""# {len(names)} scan-bench LLM pretraining runs; budgets are fractions of each run's
# planned steps (the table's unit); the metric replayed is scan-bench's valid_loss (the
# table's `metric` column), minimised. Replayed only: no runner command.
[campaign]
name = "scan-llm"
metric = "val_bpb"

[conditions]
{conditions}

[[stages]]
name = "eighth"
budget = 0.125
add = {json.dumps(names)}
rule = {{ top_k = 24 }}

[[stages]]
name = "half"
budget = 0.5
from = "eighth"
rule = {{ top_k = 6 }}

[[stages]]
name = "full"
budget = 1.0
from = "half"
rule = {{ top_k = 1 }}
""",
        encoding="utf-8",
    )
    return table, campaign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/scan-llm"))
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--cost-model", default="restart", choices=["restart", "continue"])
    args = parser.parse_args()
    from stages.campaign import load_campaign
    from stages.evaluate import evaluate
    from stages.evaluation_sources import replay_csv_source

    table, campaign_path = write_example(args.out)
    camp = load_campaign(campaign_path, runner_keys=False)
    result = evaluate(
        camp, replay_csv_source(table, camp, 0), trials=args.trials, cost_model=args.cost_model
    )
    print(
        json.dumps(
            {
                "table": str(table),
                "campaign": str(campaign_path),
                "truth": result.truth.model_dump(include={"best", "value", "ties", "pool"}),
                "cost_model": result.cost_model,
                "methods": [
                    {
                        "method": row.method,
                        "deterministic": row.deterministic,
                        "p_pick_best": row.p_pick_best.model_dump(),
                        "p_top3": row.p_top3.value,
                        "regret": row.regret.model_dump(),
                        "gpu_hours": row.gpu_hours.value,
                        "spent_ratio_mean": getattr(row, "spent_ratio_mean", None),
                    }
                    for row in [result.protocol, *result.baselines]
                ],
                "verdict": result.verdict,
                "comparisons": [c.sentence for c in result.comparisons],
                "uncertainty": result.uncertainty.note,
                "reference": result.reference.model_dump(),
                "warnings": result.warnings,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
