"""`stages.evaluate` against answers known without the code: planted truth, chance, hand sums."""

from __future__ import annotations

import math

import pytest

from ledger.errors import LedgerError
from ledger.keys import generate_key
from ledger.store import Store
from stages.baselines import protocol_gpu_hours
from stages.campaign import parse_campaign
from stages.evaluate import candidate_pool, evaluate
from stages.evaluation_model import differences
from stages.evaluation_sources import sim_source
from stages.evaluation_stats import wilson
from stages.executors.sim import SimExecutor
from stages.pipeline import run_campaign
from stages.surface import SimParams

HEAD = """
[campaign]
name = "ev"
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
"""

THREE_GATES = (
    HEAD
    + """
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
"""
)


def campaign(sim: str, text: str = THREE_GATES):
    return parse_campaign(text + "\n[sim]\n" + sim, "ev.toml")


def test_zero_noise_with_planted_effects_always_promotes_the_best():
    # no penalties: the 2-minute ranking is the 60-minute ranking; the best point of the
    # half fraction E=ABCD is A-, B+, C+, D-, E+ (= ABCD = +1), named "bce"
    camp = campaign(
        "effects = { A = 0.02, B = -0.03, C = -0.01, D = 0.008, E = -0.005 }\nnoise = 0.0\n"
    )
    out = evaluate(camp, sim_source(camp, 0), trials=5, seed=0, against=[])
    assert out.truth.best == "bce" and out.truth.pool == 16
    protocol = out.protocol
    assert protocol.p_best_in_set.value == 1.0 and protocol.p_pick_best.value == 1.0
    assert protocol.regret.value == 0.0 and protocol.regret.mc == (0.0, 0.0)
    assert all(g.decision_changed == 0.0 for g in protocol.gates)
    screen = protocol.gates[0].screen
    # exact data: every planted effect has p = 0, the rest none: nothing false, all found
    assert screen.active == ["A", "B", "C", "D", "E"]
    assert screen.fdr.value == 0.0 and screen.power.value == 1.0
    assert "FDR is 0 by construction" in screen.note  # no null factor: the FDR says nothing
    assert out.uncertainty.data == "planted"


def test_a_penalty_that_shrinks_with_budget_misleads_the_screen_by_a_known_regret():
    # at 2 minutes A's effect is -0.010 + 0.040 = +0.030 (low A looks better); at 60 minutes
    # it is -0.010 + 0.040 * sqrt(120/3600) < 0 (high A is truly better). The screen keeps the
    # four A-, B+ points, so the pick is an A- point: regret = 0.010 - 0.040 * sqrt(1/30).
    camp = campaign(
        "effects = { A = -0.010, B = -0.020 }\npenalties = { A = 0.040 }\nnoise = 0.0\n"
    )
    out = evaluate(camp, sim_source(camp, 0), trials=3, seed=0, against=[])
    assert out.protocol.p_best_in_set.value == 0.0
    assert out.protocol.regret.value == pytest.approx(
        0.010 - 0.040 * math.sqrt(1 / 30), abs=2e-6
    )  # logs keep 6 decimals
    assert len(out.truth.ties) == 3  # four A+, B+ points tie for the truly best
    assert any("4 candidates tie for the true best" in w for w in out.warnings)


def test_noise_far_above_the_effects_gives_chance():
    # each gate's ranking is a random permutation: the one finalist is any of the 16 alike
    camp = campaign(
        "effects = { A = 0.004, B = -0.003, C = 0.002, D = -0.001, E = 0.0005 }\nnoise = 5.0\n"
    )
    out = evaluate(camp, sim_source(camp, 11), trials=300, seed=11, against=[])
    protocol = out.protocol
    lo, hi = protocol.p_pick_best.mc
    assert lo <= 1 / 16 <= hi
    assert protocol.regret.value > 0


def test_wilson_interval_matches_the_textbook_value():
    # Agresti & Coull's example: 0 successes of 10 -> [0, 0.2775]
    lo, hi = wilson(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.2775, abs=1e-4)
    assert wilson(5, 10)[0] == pytest.approx(0.2366, abs=1e-4)


FIXED_COUNTS = (
    HEAD
    + """
[conditions]
base = { }

[[stages]]
name = "screen"
budget = "2m"
design = "fractional"
runs = 16
rule = { top_k = 3, keep = ["base"] }

[[stages]]
name = "gate"
budget = "10m"
from = "screen"
seeds = [0, 1]
hosts = ["h1", "h2"]
rule = { top_k = 1, keep = ["base"] }

[[stages]]
name = "final"
budget = "60m"
from = "gate"
seeds = [0, 1]
hosts = ["h1", "h2"]
rule = { top_k = 1, keep = ["base"] }

[sim]
effects = { A = 0.02, B = -0.01 }
hosts = { h2 = 0.005 }
noise = 0.004
diverge = ["a"]
"""
)


def test_protocol_gpu_hours_equal_one_sim_walk_and_baselines_spend_80_to_105_percent(tmp_path):
    camp = parse_campaign(FIXED_COUNTS, tmp_path / "fixed.toml")
    store = Store.init(tmp_path / ".ledger", host="h1")
    sim = SimExecutor(SimParams.from_table(camp.sim, "ABCDE"))
    run_campaign(store, camp, generate_key("tester"), sim, progress=False)
    walked = protocol_gpu_hours(store, camp)
    # by hand: 15 runs x 120 s + the diverged "a" at 30% of 120 s; the base anchor runs at
    # the screen too (17 candidates); then 4 conditions x 4 cells x 600 s; 2 x 4 x 3600 s
    by_hand = (16 * 120 + 0.3 * 120 + 4 * 4 * 600 + 2 * 4 * 3600) / 3600
    assert walked == pytest.approx(by_hand)
    out = evaluate(camp, sim_source(camp, 3), trials=20, seed=3, against=["all"])
    assert out.protocol.gpu_hours.value == pytest.approx(by_hand)
    assert [b.method for b in out.baselines] == [
        "successive-halving",
        "hyperband",
        "asha",
        "asha-hyperband",
        "random",
    ]
    for baseline in out.baselines:
        assert baseline.target_gpu_hours == pytest.approx(by_hand)
        assert 0.8 <= baseline.spent_ratio_min <= baseline.spent_ratio_max <= 1.05
        assert baseline.gpu_hours.value == pytest.approx(baseline.spent_ratio_mean * by_hand)


def test_same_seed_same_numbers_and_another_seed_other_noise():
    camp = campaign("effects = { A = 0.01, B = -0.01 }\nnoise = 0.02\n")
    a = evaluate(
        camp, sim_source(camp, 5), trials=15, seed=5, against=["random", "successive-halving"]
    )
    b = evaluate(
        camp, sim_source(camp, 5), trials=15, seed=5, against=["random", "successive-halving"]
    )
    assert differences(a, b) == []
    c = evaluate(
        camp, sim_source(camp, 6), trials=15, seed=6, against=["random", "successive-halving"]
    )
    assert differences(a, c)


def test_the_pool_is_every_condition_the_protocol_could_run():
    text = THREE_GATES.replace(
        "rule = { top_k = 4, fdr = 0.10 }", "rule = { top_k = 4, fdr = 0.10, reduce = true }"
    )
    camp = campaign("noise = 0.0\n", text + "\n[conditions]\nanchor = { depth = 3 }\n")
    names = {c.name for c in candidate_pool(camp)}
    assert len(names) == 32 and "(1)" in names  # reduce may reach any of the 2^5 points
    plain = campaign("noise = 0.0\n")
    assert len(candidate_pool(plain)) == 16


def test_bad_inputs_are_one_line_errors():
    camp = campaign("noise = 0.0\n")
    with pytest.raises(LedgerError, match="--trials"):
        evaluate(camp, sim_source(camp, 0), trials=0)
    with pytest.raises(LedgerError, match="unknown method 'bohb'"):
        evaluate(camp, sim_source(camp, 0), trials=1, against=["bohb"])
    with pytest.raises(LedgerError, match="--cost-model must be one of restart, continue"):
        evaluate(camp, sim_source(camp, 0), trials=1, cost_model="resume")
    with pytest.raises(LedgerError, match=r"--min-budget 2h must be positive and at most"):
        evaluate(camp, sim_source(camp, 0), trials=1, min_budget_s=7200)
    with pytest.raises(LedgerError, match=r"sim\.nosie: unknown key \(known: budget_gain, "):
        campaign("nosie = 1.0\n")  # refused when the campaign loads, before any walk
