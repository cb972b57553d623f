"""Worked example: a staged protocol against Hyperband at equal cost on real VLM learning curves.

The PyPI package `scan-bench` ships per-epoch learning curves of 1500 vision-language training
runs as CSV files inside the package (`scan_bench/vlm/data.csv`: config, epoch, val_loss,
per-epoch train_duration(s), world_size, GPU). Install it without its heavy dependencies and
only its CSV files are read; nothing is downloaded at run time:

    pip install --no-deps scan-bench==0.2.3
    python benchmarks/scan_bench_example.py --out out/scan-vlm      # prints JSON

What it does: takes the 134 runs planned for 10 epochs that completed them, samples 16
(seeded), writes them as a replay table (`condition`, `budget` = epochs, `metric` = val_loss,
`cost_gpu_s` = cumulative train_duration x world_size, `host` = the GPU type) and a campaign
in the papers' style (16 candidates screened at 1 epoch, the best 6 re-run to 3 epochs, the
best 3 within 0.10 to 10 epochs, one winner), then runs `ledger evaluate --executor replay`
against successive halving, Hyperband and random search capped at the protocol's GPU-hours.
Budgets are written in epochs, the table's fidelity unit.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCAN_BENCH = "scan-bench"
EPOCHS = 10


def scan_vlm_csv() -> Path:
    """The VLM curves CSV inside the installed scan-bench package (no import of the package)."""
    try:
        dist = distribution(SCAN_BENCH)
    except PackageNotFoundError:
        raise SystemExit(
            "scan-bench is not installed: pip install --no-deps scan-bench==0.2.3"
        ) from None
    path = Path(str(dist.locate_file("scan_bench/vlm/data.csv")))
    if not path.is_file():
        raise SystemExit(f"scan-bench {dist.version} has no scan_bench/vlm/data.csv")
    return path


def complete_curves(source: Path) -> dict[int, list[dict[str, str]]]:
    """config_id -> its rows by epoch, for runs planned for and completing EPOCHS epochs."""
    by_config: dict[int, list[dict[str, str]]] = {}
    with open(source, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_config.setdefault(int(row["config_id"]), []).append(row)
    out = {}
    for config, rows in by_config.items():
        rows.sort(key=lambda r: int(r["epoch"]))
        if float(rows[0]["total_epochs"]) == EPOCHS and [int(r["epoch"]) for r in rows] == list(
            range(1, EPOCHS + 1)
        ):
            out[config] = rows
    return out


def host_of(gpu_name: str) -> str:
    return "h100" if "H100" in gpu_name else "a100" if "A100" in gpu_name else "other"


def write_example(out_dir: Path, n: int = 16, seed: int = 0) -> tuple[Path, Path]:
    """Write curves.csv and campaign.toml for n sampled configs; return their paths."""
    curves = complete_curves(scan_vlm_csv())
    chosen = sorted(random.Random(seed).sample(sorted(curves), n))
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / "curves.csv"
    with open(table, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        # `metric`: scan-bench's val_loss (minimised), read in the campaign metric's place
        writer.writerow(["condition", "budget", "metric", "cost_gpu_s", "host", "status"])
        for config in chosen:
            spent = 0.0
            for row in curves[config]:
                spent += float(row["train_duration(s)"]) * float(row["world_size"])
                diverged = row["epoch_diverged"] == "True"
                writer.writerow(
                    [
                        f"cfg{config:04d}",
                        row["epoch"],
                        "" if diverged else row["val_loss"],
                        f"{spent:.3f}",
                        host_of(row["train_gpu_name"]),
                        "diverged" if diverged else "ok",
                    ]
                )
    names = [f"cfg{config:04d}" for config in chosen]
    conditions = "\n".join(
        f"{name} = {{ scan_config = {config} }}" for name, config in zip(names, chosen, strict=True)
    )
    campaign = out_dir / "campaign.toml"
    campaign.write_text(
        f"""# {n} scan-bench VLM runs (seed {seed}); budgets in epochs (the table's unit)
# the metric replayed is scan-bench's val_loss (the table's `metric` column), minimised
[campaign]
name = "scan-vlm"
metric = "val_bpb"
runner = {{ command = "replayed: scan-bench curves {{config}}", format = "jsonl" }}

[conditions]
{conditions}

[[stages]]
name = "epoch-1"
budget = 1
add = {json.dumps(names)}
rule = {{ top_k = 6 }}

[[stages]]
name = "epoch-3"
budget = 3
from = "epoch-1"
rule = {{ top_k = 3, within = 0.10 }}

[[stages]]
name = "epoch-10"
budget = 10
from = "epoch-3"
rule = {{ top_k = 1 }}
""",
        encoding="utf-8",
    )
    return table, campaign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/scan-vlm"))
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    from stages.campaign import load_campaign
    from stages.evaluate import evaluate, replay_csv_source

    table, campaign_path = write_example(args.out, args.n, args.sample_seed)
    camp = load_campaign(campaign_path)
    result = evaluate(camp, replay_csv_source(table, camp, 0), trials=args.trials, seed=0)
    keys = ("p_best", "p_best_ci", "p_top3", "regret_mean", "gpu_hours_mean")
    print(
        json.dumps(
            {
                "table": str(table),
                "campaign": str(campaign_path),
                "truth": result["truth"],
                "recorded": result["recorded"],
                "protocol": {k: result["protocol"][k] for k in keys},
                "baselines": [
                    {
                        "method": b["method"],
                        **{k: b[k] for k in keys},
                        "spent_ratio_mean": b["spent_ratio_mean"],
                        "evaluations_mean": b["evaluations_mean"],
                    }
                    for b in result["baselines"]
                ],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
