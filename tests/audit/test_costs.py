"""Cost accounting and counterfactuals, checked against hand arithmetic (DESIGN §8)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from audit.costs import (
    CostRow,
    StagePlan,
    audit_costs,
    campaign_sentence,
    campaign_totals,
    cost_breakdown,
    counterfactual_sentences,
    counterfactuals,
    partition_checks,
    saved_sentence,
)
from audit.report_model import CostPart
from audit.runs import ObservedRun
from ledger.documents import RunMetrics
from ledger.errors import LedgerError


def run(
    stage="s",
    condition="c1",
    host="h1",
    status="ok",
    train=120.0,
    total=150.0,
    gpus=1,
    name=None,
):
    return CostRow(
        stage=stage,
        condition=condition,
        name=name or condition,
        host=host,
        status=status,
        training_seconds=train,
        wall_seconds=total,
        gpus=gpus,
    )


# the staged-promotion paper example: 9 ten-minute candidates, 4 sixty-minute, 3 anchors at
# 12 h, every stage on 2 hosts x 2 seeds (4 cells)
PAPER = [
    StagePlan(
        name="gate-10m",
        budget_s=600,
        cells=4,
        candidates=[f"c{i}" for i in range(9)],
        promoted=["c0", "c1", "c2", "c3"],
        executed_gpu_hours=6.0,
    ),
    StagePlan(
        name="gate-60m",
        from_stage="gate-10m",
        budget_s=3600,
        cells=4,
        candidates=["c0", "c1", "c2", "c3"],
        promoted=["c0", "c1", "c2"],
        executed_gpu_hours=16.0,
    ),
    StagePlan(
        name="final-12h",
        from_stage="gate-60m",
        budget_s=43200,
        cells=4,
        candidates=["c0", "c1", "c2"],
        promoted=["c0"],
        executed_gpu_hours=144.0,
    ),
]


def test_paper_example_144_192_432():
    first, second = counterfactuals(PAPER)
    assert first.final_planned == pytest.approx(144.0)  # 3 x 4 x 12 h
    assert second.final_if_all == pytest.approx(192.0)  # 4 x 4 x 12 h
    assert first.final_if_all == pytest.approx(432.0)  # 9 x 4 x 12 h
    # next stage from the 10-minute gate: 9 x 4 x 1 h = 36, planned 4 x 4 x 1 h = 16
    assert first.next_if_all == pytest.approx(36.0)
    assert first.next_planned == pytest.approx(16.0)
    assert first.protocol_remaining == pytest.approx(16.0 + 144.0)
    assert second.next == second.final == "final-12h"
    assert second.protocol_remaining == pytest.approx(144.0)
    assert first.n_candidates == 9 and first.n_promoted == 4
    # the campaign had the gate continued everything: the rest of the protocol as executed
    # (6 h at 10 minutes), all 9 through 60 m (9 x 4 x 1 h) and 12 h (9 x 4 x 12 h)
    assert first.campaign_if_all == pytest.approx(6.0 + 36.0 + 432.0)
    assert first.saved_gpu_hours == pytest.approx(474.0 - 166.0)
    # from the 60-minute gate: 6 + 16 as executed, then 4 x 4 x 12 h
    assert second.campaign_if_all == pytest.approx(6.0 + 16.0 + 192.0)
    assert second.saved_gpu_hours == pytest.approx(214.0 - 166.0)
    # numbers only: no sentences among them
    assert not [k for k, v in first.model_dump().items() if isinstance(v, str) and " " in v]


def test_counterfactual_sentences():
    first, second = counterfactuals(PAPER)
    assert counterfactual_sentences(first) == [
        "continuing all 9 candidates of gate-10m to gate-60m would have spent 36.0 "
        "GPU-hours there; the protocol planned 16.0",
        "continuing all 9 candidates of gate-10m to final-12h would have spent 432.0 "
        "GPU-hours there; the protocol planned 144.0",
        "continuing all 9 candidates of gate-10m through gate-60m, final-12h would have "
        "cost the campaign 474.0 GPU-hours instead of 166.0",
    ]
    # next is final: said once
    assert counterfactual_sentences(second)[0] == (
        "continuing all 4 candidates of gate-60m to final-12h would have spent 192.0 "
        "GPU-hours there; the protocol planned 144.0"
    )
    assert len(counterfactual_sentences(second)) == 2


def test_a_given_protocol_total_counts_what_no_gate_plans():
    # 2 GPU-hours of a superseded plan's runs are in the protocol's total, on both sides
    first, _ = counterfactuals(PAPER, total_gpu_hours=168.0)
    assert first.campaign_if_all == pytest.approx(2.0 + 6.0 + 36.0 + 432.0)
    assert first.saved_gpu_hours == pytest.approx(474.0 - 166.0)


def test_counterfactual_gpus_per_run():
    stages = [PAPER[0], replace(PAPER[1], gpus=2), replace(PAPER[2], gpus=8)]
    first, _ = counterfactuals(stages)
    assert first.next_if_all == pytest.approx(72.0)
    assert first.final_if_all == pytest.approx(432.0 * 8)
    assert first.final_planned == pytest.approx(144.0 * 8)


def test_single_stage_has_no_gate():
    assert counterfactuals(PAPER[-1:]) == []
    assert counterfactuals([]) == []


def test_campaign_totals():
    tot = campaign_totals(PAPER)
    assert tot.executed_gpu_hours == pytest.approx(166.0)
    # first stage as executed + all 9 continued through 60 m (36) and 12 h (432)
    assert tot.all_from_first_gate_gpu_hours == pytest.approx(6.0 + 36.0 + 432.0)
    assert tot.saved_gpu_hours == pytest.approx(474.0 - 166.0)
    assert tot.planned_gpu_hours == pytest.approx(6.0 + 16.0 + 144.0)
    assert tot.root == "gate-10m"
    # the headline and the campaign line use the root's counterfactual: one "saved"
    assert tot.saved_gpu_hours == counterfactuals(PAPER)[0].saved_gpu_hours
    assert saved_sentence(tot) == (
        "Saved 308.0 GPU-hours: continuing all 9 candidates of gate-10m through gate-60m, "
        "final-12h would have cost the campaign 474.0 GPU-hours; the protocol spent 166.0."
    )
    assert campaign_sentence(tot).startswith("the protocol spent 166.0 training GPU-hours")
    alone = campaign_totals(PAPER[-1:])
    assert alone.root is None and alone.saved_gpu_hours is None
    assert saved_sentence(alone) is None


def test_failed_run_counts_its_seconds():
    runs = [run(train=120, total=130), run(status="diverged", train=30, total=35)]
    out = cost_breakdown(runs)
    assert out.training_gpu_hours == pytest.approx(150 / 3600)
    assert out.wall_gpu_hours == pytest.approx(165 / 3600)
    assert out.by_status["diverged"] == CostPart(
        n_runs=1, training_gpu_hours=30 / 3600, wall_gpu_hours=35 / 3600
    )
    assert out.n_runs == 2


def test_gpus_double_the_hours():
    one = cost_breakdown([run(train=3600, total=3600)])
    two = cost_breakdown([run(train=3600, total=3600, gpus=2)])
    assert one.training_gpu_hours == pytest.approx(1.0)
    assert two.training_gpu_hours == pytest.approx(2.0)
    assert two.wall_gpu_hours == pytest.approx(2.0)


def test_parts_by_hand_and_a_check_that_can_fail():
    runs = [
        run(stage="a", condition="x", host="h1", train=3600, total=3960),
        run(stage="a", condition="y", host="h2", train=1800, total=1800, gpus=2),
        run(stage="b", condition="x", host="h1", status="timeout", train=900, total=1260),
    ]
    out = cost_breakdown(runs)
    # by hand: 1 h + 2 x 0.5 h + 0.25 h = 2.25 h training; 1.1 + 1.0 + 0.35 = 2.45 h wall
    assert out.training_gpu_hours == pytest.approx(2.25)
    assert out.wall_gpu_hours == pytest.approx(2.45)
    assert out.by_stage["a"].training_gpu_hours == pytest.approx(2.0)
    h1 = out.by_host["h1"]
    assert h1.n_runs == 2
    assert (h1.training_gpu_hours, h1.wall_gpu_hours) == (pytest.approx(1.25), pytest.approx(1.45))
    assert out.by_condition["x"].training_gpu_hours == pytest.approx(1.25)
    assert out.by_condition["x"].name == "x"
    assert out.by_status["timeout"].training_gpu_hours == pytest.approx(0.25)
    assert [c.name for c in out.checks] == [
        "by_stage sums to total",
        "by_host sums to total",
        "by_condition sums to total",
        "by_status sums to total",
    ]
    assert all(c.ok for c in out.checks)
    # a breakdown whose parts no longer add up (edited in a report, a bundle, by a bug) fails
    h2 = out.by_host["h2"].model_copy(update={"training_gpu_hours": 0.5})
    tampered = out.model_copy(update={"by_host": {**out.by_host, "h2": h2}})
    checks = {c.name: c for c in partition_checks(tampered)}
    assert not checks["by_host sums to total"].ok
    assert checks["by_host sums to total"].difference == pytest.approx(0.5)
    assert checks["by_stage sums to total"].ok
    dropped = out.model_copy(update={"by_status": {"ok": out.by_status["ok"]}})  # one left out
    assert not {c.name: c for c in partition_checks(dropped)}["by_status sums to total"].ok


# The paper's campaign shape: an independent second screen (no `from`), then a lineage
# screen-5m -> gate-10m -> gate-60m -> final-12h; 2 hosts x 1 seed at the screens, 2 x 2 after.
LINEAGE = [
    StagePlan(
        name="screen-2m",
        from_stage=None,
        budget_s=120,
        cells=2,
        candidates=[f"d{i}" for i in range(16)],
        promoted=[f"d{i}" for i in range(8)],
    ),
    StagePlan(
        name="screen-5m",
        from_stage=None,
        budget_s=300,
        cells=2,
        candidates=[f"d{i}" for i in range(16)] + ["base"],
        promoted=[f"d{i}" for i in range(7)] + ["base"],
    ),
    StagePlan(
        name="gate-10m",
        from_stage="screen-5m",
        budget_s=600,
        cells=4,
        candidates=[f"d{i}" for i in range(7)] + ["base", "bridge"],
        promoted=["d0", "d1", "d2", "base"],
    ),
    StagePlan(
        name="gate-60m",
        from_stage="gate-10m",
        budget_s=3600,
        cells=4,
        candidates=["d0", "d1", "d2", "base"],
        promoted=["d0", "d1", "base"],
    ),
    StagePlan(
        name="final-12h",
        from_stage="gate-60m",
        budget_s=43200,
        cells=4,
        candidates=["d0", "d1", "base"],
        promoted=["d0", "base"],
    ),
]


def test_counterfactuals_follow_from_not_file_order():
    cfs = {cf.gate: cf for cf in counterfactuals(LINEAGE)}
    # screen-2m's promotions feed no stage: the next stage in the file is an independent screen
    assert list(cfs) == ["screen-5m", "gate-10m", "gate-60m"]
    five = cfs["screen-5m"]
    assert (five.next, five.final) == ("gate-10m", "final-12h")
    assert five.lineage == ["gate-10m", "gate-60m", "final-12h"]
    # by hand: 17 candidates x 4 cells x 10 min = 11.33 h; planned 9 x 4 x 10 min = 6 h;
    # to the end: 17 x 4 x 12 h = 816 h against 3 x 4 x 12 h = 144 h
    assert five.next_if_all == pytest.approx(17 * 4 / 6)
    assert five.next_planned == pytest.approx(6.0)
    assert five.final_if_all == pytest.approx(816.0)
    assert five.final_planned == pytest.approx(144.0)
    # what the protocol planned after the gate, along the lineage only: 6 + 16 + 144
    assert five.protocol_remaining == pytest.approx(166.0)
    assert cfs["gate-10m"].final_if_all == pytest.approx(432.0)  # 9 x 4 x 12 h
    assert cfs["gate-60m"].final_if_all == pytest.approx(192.0)  # 4 x 4 x 12 h
    # the old reading (next in the file) would have charged screen-2m's 16 candidates to the
    # independent screen; nothing here does
    assert all(cf.next != "screen-5m" for cf in cfs.values())


def test_without_from_the_next_stage_is_the_one_taking_the_promoted_set():
    cfs = {cf.gate: cf for cf in counterfactuals(LINEAGE, lineage=False)}
    # screen-5m's candidates hold all of screen-2m's promoted points: by set, it continues them
    assert cfs["screen-2m"].next == "screen-5m"
    assert cfs["screen-5m"].next == "gate-10m" and cfs["gate-10m"].next == "gate-60m"


def test_campaign_totals_along_the_lineage():
    stages = [
        replace(s, executed_gpu_hours=h)
        for s, h in zip(LINEAGE, (1.0, 2.0, 6.0, 16.0, 144.0), strict=True)
    ]
    tot = campaign_totals(stages)
    assert tot.root == "screen-5m" and tot.executed_gpu_hours == pytest.approx(169.0)
    # outside the lineage as executed (1 + 2), then 17 candidates through 10 m, 60 m and 12 h:
    # 17 x 4 x (1/6 + 1 + 12) h
    assert tot.all_from_first_gate_gpu_hours == pytest.approx(3.0 + 17 * 4 * (1 / 6 + 13))
    assert "through gate-10m, gate-60m, final-12h" in campaign_sentence(tot)


def test_empty_runs():
    out = cost_breakdown([])
    assert out.training_gpu_hours == 0.0 and all(c.ok for c in out.checks)


def test_bad_stage_is_named():
    with pytest.raises(LedgerError, match=r"stages\[1\].cells"):
        counterfactuals([PAPER[0], replace(PAPER[1], cells=0)])


def test_small_campaign_sentences_keep_precision():
    tiny = [
        StagePlan(name="s1", budget_s=60, cells=1, candidates=["a", "b", "c"], promoted=["a"]),
        StagePlan(name="s2", budget_s=120, cells=2, candidates=["a"], from_stage="s1"),
    ]
    (cf,) = counterfactuals(tiny)
    assert cf.final_if_all == pytest.approx(3 * 2 * 120 / 3600)
    assert counterfactual_sentences(cf)[0].endswith(
        "would have spent 0.20 GPU-hours there; the protocol planned 0.0667"
    )


def _observed(manifest, seconds, *, gpus=1, wall=None, status="ok", stage="gate", host="h1"):
    return ObservedRun(
        manifest,
        "c" * 64,
        0,
        host,
        "2025-01-01T00:00:00+00:00",
        status,
        RunMetrics(training_seconds=seconds),
        stage,
        "jsonl",
        gpus,
        wall,
    )


def test_audit_costs_split_the_groups_and_keep_interrupted_apart():
    protocol = SimpleNamespace(spec={}, conditions={"c" * 64: SimpleNamespace(name="base")})
    baseline = SimpleNamespace(spec={"baseline": {"kind": "greedy"}}, conditions={})
    runs = [
        _observed("p", 3600, gpus=2, wall=4000.0),  # 2 GPU-hours training, 2.222 wall
        _observed("p", float("nan"), gpus=0, status="crashed"),  # counts 0 s on 1 GPU
        _observed("b", 1800),  # a baseline's half hour
        _observed(None, 900, stage=None),  # unplanned: booked apart, under "(unplanned)"
    ]
    stopped = CostRow("gate", "c" * 64, "base", "h1", "interrupted", 360.0, 720.0, 1)
    costs = audit_costs(runs, {"p": protocol, "b": baseline}, [stopped])  # type: ignore[dict-item]
    assert costs.all.n_runs == 4
    assert costs.all.training_gpu_hours == pytest.approx(2.0 + 0.5 + 0.25)
    assert costs.protocol.n_runs == 2
    assert costs.protocol.training_gpu_hours == pytest.approx(2.0)
    assert costs.protocol.wall_gpu_hours == pytest.approx(8000 / 3600)
    assert costs.protocol.by_condition["c" * 64].name == "base"
    assert costs.protocol.by_status["crashed"].training_gpu_hours == 0.0
    assert costs.baselines is not None and costs.baselines.training_gpu_hours == 0.5
    assert costs.unplanned is not None and list(costs.unplanned.by_stage) == ["(unplanned)"]
    assert costs.unplanned.by_condition["c" * 64].name == "cccccccc"  # no plan names it
    assert costs.interrupted is not None and costs.interrupted.training_gpu_hours == 0.1
    # the audit's JSON: every run's breakdown, the interrupted attempts under it
    out = costs.to_dict()
    assert out["n_runs"] == 4 and out["interrupted"]["n_runs"] == 1
    assert [p.n_runs for p in costs.parts] == [4, 1]
