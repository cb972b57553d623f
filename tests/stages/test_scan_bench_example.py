"""The docs' worked example on scan-bench's shipped VLM curves: the table says what the CSV says."""

from __future__ import annotations

import csv
import importlib.util
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from stages.campaign import load_campaign
from stages.evaluate import evaluate, replay_csv_source

try:
    DATA = Path(str(distribution("scan-bench").locate_file("scan_bench/vlm/data.csv")))
except PackageNotFoundError:  # .ci/run installs it (--no-deps); a bare dev box may not
    DATA = None

pytestmark = pytest.mark.skipif(DATA is None, reason="scan-bench not installed")


def _example():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "scan_bench_example.py"
    spec = importlib.util.spec_from_file_location("scan_bench_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_replayed_scan_bench_curves_answer_by_lookup(tmp_path):
    table, campaign_path = _example().write_example(tmp_path, n=6, seed=1)
    camp = load_campaign(campaign_path)
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    config = int(rows[0]["condition"].removeprefix("cfg"))
    with open(DATA, newline="") as handle:  # the package's own file, read independently
        raw = [r for r in csv.DictReader(handle) if int(r["config_id"]) == config]
    at3 = next(r for r in raw if r["epoch"] == "3")
    first3 = [r for r in raw if int(r["epoch"]) <= 3]
    mine = next(r for r in rows if r["budget"] == "3" and r["condition"] == f"cfg{config:04d}")
    assert float(mine["metric"]) == float(at3["val_loss"])
    assert float(mine["cost_gpu_s"]) == pytest.approx(
        sum(float(r["train_duration(s)"]) * float(r["world_size"]) for r in first3), abs=1e-3
    )
    out = evaluate(camp, replay_csv_source(table, camp, 0), trials=2, against=["hyperband"])
    assert out["truth"]["pool"] == 6 and out["truth"]["unknown"] == []
    assert 0.8 <= out["baselines"][0]["spent_ratio_min"] <= 1.05
