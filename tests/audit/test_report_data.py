"""audit.report_data (one dict for every surface) and audit.dvc_outputs (DVC metrics/plots)."""

from __future__ import annotations

import csv
import json

import pytest

from audit.dvc_outputs import cost_rows, effects_rows, write_dvc_outputs
from audit.rederive import audit_store
from audit.report_data import build_report_data, headline
from ledger.keys import generate_key
from ledger.store import Store
from stages.campaign import load_campaign
from stages.executors.sim import SimExecutor
from stages.pipeline import run_campaign
from stages.sim import SimParams


@pytest.fixture
def data(tmp_path, sim_campaign):
    store = Store.init(tmp_path / ".ledger", host="h1")
    camp = load_campaign(sim_campaign)
    run_campaign(store, camp, generate_key("k"), SimExecutor(SimParams.from_table(camp.sim,
                 "ABCDE")), progress=False)
    return build_report_data(store, audit_store(store), camp)


def test_report_data_and_headline_by_hand(data):
    assert [s["name"] for s in data["stages"]] == ["screen", "gate", "final"]
    final = data["stages"][-1]
    best = next(c for c in final["conditions"] if c["rank"] == 1)
    head = headline(data)
    assert head["best_condition"] == best["name"] and head["best_val_bpb"] == best["mean"]
    assert head["final_stage"] == "final" and head["audit_clean"] and head["problems"] == 0
    # 17 screen runs x 2 min, 5 gate candidates x 4 cells x 10 min, 3 final x 4 cells x 1 h
    assert head["training_gpu_hours"] == pytest.approx((17 * 120 + 20 * 600 + 12 * 3600) / 3600)
    # saved at the first gate: all 17 screen candidates x 4 cells x 1 h, minus what the
    # protocol planned after it (gate 20 x 10 min + final 12 x 1 h)
    assert head["gpu_hours_saved_vs_all"] == pytest.approx(17 * 4 - (20 / 6 + 12))
    assert [r["from"] for r in data["rank_stability"]] == ["screen", "gate"]
    assert any(c["name"] == "signing keys" and "k [" in c["detail"]
               for c in data["audit"]["checks"])


def test_dvc_outputs_intervals_and_files(data, tmp_path):
    rows = effects_rows(data)
    screen = data["stages"][0]["effects"]
    assert screen["method"] == "ols" and len(rows) == 5
    first = screen["effects"][0]
    assert rows[0]["low"] == pytest.approx(first["effect"] - 1.96 * first["se"])
    lenth = {"stages": [{"name": "s", "budget_s": 1, "significant": ["A"], "effects": {
        "method": "lenth", "me": 2.0, "effects": [{"term": "A", "effect": 5.0, "q": None}]}}]}
    (row,) = effects_rows(lenth)
    assert (row["low"], row["high"], row["significant"]) == (3.0, 7.0, True)
    labels = [r["label"] for r in cost_rows(data)]
    assert "final executed" in labels and "screen: continue all to final" in labels
    write_dvc_outputs(data, tmp_path / "m.json", tmp_path / "plots")
    assert json.loads((tmp_path / "m.json").read_text()) == headline(data)
    with open(tmp_path / "plots" / "effects.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 5
