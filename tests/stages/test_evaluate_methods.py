"""Every method on tables whose answers are known: a dominating condition, a cost model's
bill, a data interval on a table of known variance."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from stages.campaign import parse_campaign
from stages.evaluate import evaluate
from stages.evaluation_sources import replay_csv_source

NAMES = [f"k{i}" for i in range(8)]


def campaign(tmp_path, stages: str):
    named = "\n".join(f"{n} = {{ matrix_lr = {0.01 * (i + 1):.2f} }}" for i, n in enumerate(NAMES))
    text = f"""
[campaign]
name = "known"
metric = "val_bpb"

[conditions]
{named}

{stages}
"""
    return parse_campaign(text, tmp_path / "known.toml")


TWO_STAGES = """
[[stages]]
name = "short"
budget = 1
add = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"]
rule = { top_k = 4 }

[[stages]]
name = "long"
budget = 9
from = "short"
seeds = [0, 1, 2, 3]
rule = { top_k = 1 }
"""


def test_a_dominating_condition_is_every_methods_pick(tmp_path):
    # k5 is 0.2 below every other condition at every fidelity and in every one of five
    # replicates (noise +-0.01): whatever a method samples, promotes or stops, it keeps k5.
    # The cap (8 + 4 x 4 x 9 = 152 GPU-s) pays for every candidate trained to the end
    # (8 x 9 = 72), so even a sequential method meets k5 before the cap stops it.
    rows = ["matrix_lr,budget,val_bpb,cost_gpu_s,seed"]
    for i in range(8):
        for seed in range(5):
            for fidelity in (1, 3, 9):
                noise = 0.01 * math.sin(7 * i + 3 * seed + fidelity)
                value = 1.0 + 0.02 * i - (0.2 if i == 5 else 0.0) + noise
                rows.append(f"{0.01 * (i + 1):.2f},{fidelity},{value:.5f},{fidelity},{seed}")
    (tmp_path / "dominated.csv").write_text("\n".join(rows) + "\n")
    camp = campaign(tmp_path, TWO_STAGES)
    out = evaluate(
        camp,
        replay_csv_source(tmp_path / "dominated.csv", camp, 0),
        trials=12,
        against=["all"],
        bootstrap=3,
        bootstrap_trials=4,
    )
    assert out.truth.best == "k5" and not out.truth.ties
    for row in [out.protocol, *out.baselines]:
        assert row.p_pick_best.value == 1.0, row.method
        assert row.regret.value == 0.0, row.method
    assert all(c.verdict == "identical" for c in out.comparisons)


ONE_THEN_TEN = """
[[stages]]
name = "short"
budget = 1
add = ["k0", "k1", "k2", "k3"]
rule = { top_k = 2 }

[[stages]]
name = "long"
budget = 10
from = "short"
rule = { top_k = 1 }
"""


@pytest.mark.parametrize(
    ("cost_model", "gpu_s"),
    [
        ("restart", 4 * 1 * 3 + 2 * 10 * 3),  # four runs to 1, then two anew to 10
        ("continue", 4 * 1 * 3 + 2 * 9 * 3),  # the two promoted go on from 1 to 10
    ],
)
def test_the_protocol_pays_what_its_cost_model_says(tmp_path, cost_model, gpu_s):
    # 3 GPU-seconds per unit of fidelity; seed 0, host local in both stages: the same run
    rows = ["matrix_lr,budget,val_bpb,cost_gpu_s,seed"]
    for i in range(4):
        lr = f"{0.01 * (i + 1):.2f}"
        rows += [f"{lr},1,{1.0 + 0.1 * i},3,0", f"{lr},10,{0.8 + 0.1 * i},30,0"]
    (tmp_path / "bill.csv").write_text("\n".join(rows) + "\n")
    camp = campaign(tmp_path, ONE_THEN_TEN)
    out = evaluate(
        camp,
        replay_csv_source(tmp_path / "bill.csv", camp, 0),
        trials=2,
        against=["random"],
        cost_model=cost_model,
    )
    assert out.protocol.gpu_hours.value == pytest.approx(gpu_s / 3600)
    assert out.cost_model == cost_model and out.inputs.cost_model == cost_model


@pytest.mark.slow
def test_the_data_interval_covers_the_spread_of_a_table_of_known_variance(tmp_path):
    """Four conditions, 50 recorded runs each, whose costs have mean 100 and population sd 20
    exactly. A one-stage protocol runs each once, so its GPU-seconds average the four
    conditions' mean costs; resampling the runs moves that by sd sqrt(4 * 20^2 / 50) =
    5.657 GPU-seconds (the bootstrap's own variance of a mean of 50, population form). The
    data interval must be at least that wide (it may be wider: residual Monte Carlo error)."""
    z = [NormalDist().inv_cdf((j + 0.5) / 50) for j in range(50)]
    mean = sum(z) / 50
    sd = math.sqrt(sum((x - mean) ** 2 for x in z) / 50)
    costs = [100 + 20 * (x - mean) / sd for x in z]
    rows = ["matrix_lr,budget,val_bpb,cost_gpu_s,seed"]
    for i in range(4):
        for seed, cost in enumerate(costs):
            rows.append(
                f"{0.01 * (i + 1):.2f},10,{1.0 + 0.1 * i},{cost:.6f},{(seed * 17 + i) % 50}"
            )
    (tmp_path / "known.csv").write_text("\n".join(rows) + "\n")
    camp = campaign(
        tmp_path,
        '[[stages]]\nname = "only"\nbudget = 10\nadd = ["k0", "k1", "k2", "k3"]\n'
        "rule = { top_k = 1 }\n",
    )
    out = evaluate(
        camp,
        replay_csv_source(tmp_path / "known.csv", camp, 0),
        trials=100,
        against=[],
        bootstrap=40,
        bootstrap_trials=100,
    )
    known = 1.96 * math.sqrt(4 * 20**2 / 50) / 3600
    low, high = out.protocol.gpu_hours.data
    half = (high - low) / 2
    assert 0.8 * known <= half <= 1.8 * known
    assert out.uncertainty.data == "bootstrap" and out.uncertainty.bootstrap_worlds == 40
    # the truth never moves (every run of a condition has the same value): P(best) has no
    # data spread, and the protocol always picks k0
    assert out.protocol.p_pick_best.value == 1.0 and out.protocol.p_pick_best.data == (1.0, 1.0)
