"""The docs' worked example on scan-bench's shipped LLM curves: the table says what the CSV says."""

from __future__ import annotations

import csv
import importlib.util
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from stages.campaign import load_campaign
from stages.evaluate import evaluate
from stages.evaluation_sources import replay_csv_source

try:
    DATA = Path(
        str(
            distribution("scan-bench").locate_file(
                "scan_bench/llm/configs_intermediate_summary.csv"
            )
        )
    )
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
    example = _example()
    table, campaign_path = example.write_example(tmp_path)
    camp = load_campaign(campaign_path, runner_keys=False)  # no runner command, table keys
    assert camp.runner is None and len(camp.named) == 119
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    config = int(rows[0]["condition"].removeprefix("cfg"))
    with open(DATA, newline="") as handle:  # the package's own file, read independently
        raw = [r for r in csv.DictReader(handle) if int(r["config_id"]) == config]
    last = max(raw, key=lambda r: float(r["step_fraction"]))
    mine = [r for r in rows if r["condition"] == f"cfg{config:04d}"]
    assert len(mine) == len(raw)
    final = next(r for r in mine if float(r["budget"]) == 1.0)
    assert float(final["metric"]) == float(last["valid_loss"])
    assert float(final["cost_gpu_s"]) == pytest.approx(
        float(last["flops_so_far"]) / (312e12 * 0.4), abs=1e-3
    )
    out = evaluate(camp, replay_csv_source(table, camp, 0), trials=3, against=["hyperband"])
    assert out.truth.pool == 119 and out.truth.unknown == []
    assert out.protocol.deterministic and out.uncertainty.data == "single-replicate"
    assert out.baselines[0].spent_ratio_max <= 1.0 + 1e-9
