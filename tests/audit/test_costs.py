"""Cost accounting and counterfactuals, checked against hand arithmetic (DESIGN §8)."""

from __future__ import annotations

import pytest

from audit.costs import campaign_totals, cost_breakdown, counterfactuals
from ledger.errors import LedgerError


def run(stage="s", condition="c1", host="h1", seed=0, status="ok", train=120.0, total=150.0,
        gpus=1, name=None):
    return {"stage": stage, "condition": condition, "name": name or condition, "host": host,
            "seed": seed, "status": status, "training_seconds": train, "total_seconds": total,
            "gpus": gpus}


# the staged-promotion paper example: 9 ten-minute candidates, 4 sixty-minute, 3 anchors at
# 12 h, every stage on 2 hosts x 2 seeds (4 cells)
PAPER = [
    {"name": "gate-10m", "budget_s": 600, "cells": 4, "candidates": [f"c{i}" for i in range(9)],
     "promoted": ["c0", "c1", "c2", "c3"], "executed_gpu_hours": 6.0},
    {"name": "gate-60m", "budget_s": 3600, "cells": 4, "candidates": ["c0", "c1", "c2", "c3"],
     "promoted": ["c0", "c1", "c2"], "executed_gpu_hours": 16.0},
    {"name": "final-12h", "budget_s": 43200, "cells": 4, "candidates": ["c0", "c1", "c2"],
     "promoted": ["c0"], "executed_gpu_hours": 144.0},
]


def test_paper_example_144_192_432():
    first, second = counterfactuals(PAPER)
    assert first["final_planned"] == pytest.approx(144.0)   # 3 x 4 x 12 h
    assert second["final_if_all"] == pytest.approx(192.0)   # 4 x 4 x 12 h
    assert first["final_if_all"] == pytest.approx(432.0)    # 9 x 4 x 12 h
    assert first["saved_final"] == pytest.approx(288.0)
    # next stage from the 10-minute gate: 9 x 4 x 1 h = 36, planned 4 x 4 x 1 h = 16
    assert first["next_if_all"] == pytest.approx(36.0)
    assert first["next_planned"] == pytest.approx(16.0)
    assert first["saved_next"] == pytest.approx(20.0)
    assert first["protocol_remaining"] == pytest.approx(16.0 + 144.0)
    assert second["next"] == second["final"] == "final-12h"
    assert second["protocol_remaining"] == pytest.approx(144.0)
    assert first["n_candidates"] == 9 and first["n_promoted"] == 4


def test_counterfactual_sentences():
    first, second = counterfactuals(PAPER)
    assert first["sentence"] == ("continuing all 9 candidates of gate-10m to final-12h would "
                                 "have spent 432.0 GPU-hours; the protocol planned 144.0")
    assert second["sentence"] == ("continuing all 4 candidates of gate-60m to final-12h would "
                                  "have spent 192.0 GPU-hours; the protocol planned 144.0")
    assert first["sentence_next"] == ("continuing all 9 candidates of gate-10m to gate-60m "
                                      "would have spent 36.0 GPU-hours; the protocol planned 16.0")


def test_counterfactual_gpus_per_run():
    stages = [dict(PAPER[0]), dict(PAPER[1], gpus=2), dict(PAPER[2], gpus=8)]
    first, _ = counterfactuals(stages)
    assert first["next_if_all"] == pytest.approx(72.0)
    assert first["final_if_all"] == pytest.approx(432.0 * 8)
    assert first["final_planned"] == pytest.approx(144.0 * 8)


def test_single_stage_has_no_gate():
    assert counterfactuals(PAPER[-1:]) == []
    assert counterfactuals([]) == []


def test_campaign_totals():
    tot = campaign_totals(PAPER)
    assert tot["executed_gpu_hours"] == pytest.approx(166.0)
    # first stage as executed + all 9 continued through 60 m (36) and 12 h (432)
    assert tot["all_from_first_gate_gpu_hours"] == pytest.approx(6.0 + 36.0 + 432.0)
    assert tot["saved_gpu_hours"] == pytest.approx(474.0 - 166.0)
    assert tot["planned_gpu_hours"] == pytest.approx(6.0 + 16.0 + 144.0)
    assert "474.0" in tot["sentence"]


def test_failed_run_counts_its_seconds():
    runs = [run(train=120, total=130), run(seed=1, status="diverged", train=30, total=35)]
    out = cost_breakdown(runs)
    assert out["training_gpu_hours"] == pytest.approx(150 / 3600)
    assert out["wall_gpu_hours"] == pytest.approx(165 / 3600)
    assert out["by_status"]["diverged"] == {"n_runs": 1, "training_gpu_hours": 30 / 3600,
                                            "wall_gpu_hours": 35 / 3600}
    assert out["n_runs"] == 2


def test_gpus_double_the_hours():
    one = cost_breakdown([run(train=3600, total=3600)])
    two = cost_breakdown([run(train=3600, total=3600, gpus=2)])
    assert one["training_gpu_hours"] == pytest.approx(1.0)
    assert two["training_gpu_hours"] == pytest.approx(2.0)
    assert two["wall_gpu_hours"] == pytest.approx(2.0)


def test_parts_sum_to_totals():
    runs = [run(stage=s, condition=c, host=h, seed=seed, status=st, train=t, total=t + 7.3, gpus=g)
            for s, t in (("a", 60.1), ("b", 600.7))
            for c in ("x", "y", "z") for h in ("h1", "h2") for seed in (0, 1)
            for st, g in (("ok", 1), ("timeout", 2))]
    out = cost_breakdown(runs)
    assert [c["name"] for c in out["checks"]] == [
        "by_stage sums to total", "by_host sums to total", "by_condition sums to total",
        "by_status sums to total"]
    assert all(c["ok"] for c in out["checks"])
    for key in ("by_stage", "by_host", "by_condition", "by_status"):
        assert sum(p["n_runs"] for p in out[key].values()) == len(runs)
        assert sum(p["training_gpu_hours"] for p in out[key].values()) == pytest.approx(
            out["training_gpu_hours"], rel=1e-12)
    assert list(out["by_stage"]) == ["a", "b"]
    assert out["by_condition"]["x"]["name"] == "x"
    # hand arithmetic: per stage 3 conditions x 2 hosts x 2 seeds x (1 + 2 gpus) = 36 gpu-runs
    assert out["by_stage"]["a"]["training_gpu_hours"] == pytest.approx(36 * 60.1 / 3600)


def test_empty_runs():
    out = cost_breakdown([])
    assert out["training_gpu_hours"] == 0.0 and all(c["ok"] for c in out["checks"])


@pytest.mark.parametrize("bad, message", [
    ({"training_seconds": None}, "runs[0].training_seconds"),
    ({"total_seconds": float("nan")}, "runs[0].total_seconds"),
    ({"training_seconds": -1.0}, "runs[0].training_seconds"),
    ({"gpus": 0}, "runs[0].gpus"),
    ({"status": "weird"}, "runs[0].status"),
])
def test_bad_run_raises_one_line(bad, message):
    with pytest.raises(LedgerError, match=message.replace("[", r"\[").replace("]", r"\]")):
        cost_breakdown([{**run(), **bad}])


def test_missing_key_is_named():
    r = run()
    del r["host"]
    with pytest.raises(LedgerError, match="missing key 'host'"):
        cost_breakdown([run(), r])


def test_bad_stage_is_named():
    with pytest.raises(LedgerError, match=r"stages\[1\].cells"):
        counterfactuals([PAPER[0], dict(PAPER[1], cells=0)])


def test_small_campaign_sentences_keep_precision():
    tiny = [{"name": "s1", "budget_s": 60, "cells": 1, "candidates": ["a", "b", "c"]},
            {"name": "s2", "budget_s": 120, "cells": 2, "candidates": ["a"]}]
    (cf,) = counterfactuals(tiny)
    assert cf["final_if_all"] == pytest.approx(3 * 2 * 120 / 3600)
    assert cf["sentence"].endswith("would have spent 0.20 GPU-hours; the protocol planned "
                                   "0.0667")
