"""Synchronous successive halving and Hyperband against the paper's tables and hand sums."""

from __future__ import annotations

import pytest

from ledger.errors import LedgerError
from stages.conditions import Condition
from stages.evaluation_sources import ReplaySource, TrialDraws
from stages.halving import (
    halving_bracket,
    hyperband_brackets,
    largest_bracket,
    planned_cost,
    run_bracket,
    s_max,
)
from stages.replay_table import read_table


def cand(name: str, cid: str | None = None, config: dict | None = None) -> Condition:
    """A candidate as the evaluation passes it (a replay table reads its id, name, config)."""
    return Condition(cid or name, name, config or {}, {}, "test")


def table_of(brackets):
    return [(b.s, [(r.n, r.resource) for r in b.rungs]) for b in brackets]


def test_hyperband_brackets_for_eta_3_and_R_27_are_the_hand_computed_ones():
    # s_max = 3, B = 4 * 27 = 108; n = ceil(108/27 * 3^s / (s+1)), r = 27 * 3^-s
    assert table_of(hyperband_brackets(27, 3)) == [
        (3, [(27, 1), (9, 3), (3, 9), (1, 27)]),
        (2, [(12, 3), (4, 9), (1, 27)]),
        (1, [(6, 9), (2, 27)]),
        (0, [(4, 27)]),
    ]


def test_hyperband_brackets_for_eta_3_and_R_81_match_li_et_al_table_1():
    # Li et al. (2018), Table 1: the brackets of Hyperband with R = 81, eta = 3
    assert table_of(hyperband_brackets(81, 3)) == [
        (4, [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)]),
        (3, [(34, 3), (11, 9), (3, 27), (1, 81)]),
        (2, [(15, 9), (5, 27), (1, 81)]),
        (1, [(8, 27), (2, 81)]),
        (0, [(5, 81)]),
    ]


def test_s_max_is_exact_at_powers_of_eta():
    assert [s_max(R, 3) for R in (1, 2, 3, 8, 9, 26, 27, 28, 243)] == [0, 0, 1, 1, 2, 2, 3, 3, 5]
    assert s_max(30, 3) == 3  # 2m .. 60m: R = 30


# Eight conditions at fidelities 1, 2, 4 (no noise: one run each). c8 is the true best at 4
# but fifth at 1, so successive halving (eta 2) drops it in the first rung: rung 1 keeps
# c1 c2 c3 c4 (values .50 .52 .54 .56), rung 2 keeps c3 c4 (.40 .41 beat .45 .46), and at
# fidelity 4 c3 (.30) beats c4 (.32): the pick is c3.
VALUES = {
    "c1": (0.50, 0.45, 0.40),
    "c2": (0.52, 0.46, 0.41),
    "c3": (0.54, 0.40, 0.30),
    "c4": (0.56, 0.41, 0.32),
    "c5": (0.60, 0.50, 0.45),
    "c6": (0.62, 0.55, 0.50),
    "c7": (0.64, 0.58, 0.52),
    "c8": (0.58, 0.43, 0.20),
}
SPEED = {f"c{i}": float(i) for i in range(1, 9)}  # GPU-seconds per unit of fidelity


def eight(tmp_path):
    lines = ["condition,budget,metric,cost_gpu_s,seed"]
    for name, values in VALUES.items():
        for fidelity, value in zip((1, 2, 4), values, strict=True):
            lines.append(f"{name},{fidelity},{value},{SPEED[name] * fidelity},0")
    (tmp_path / "eight.csv").write_text("\n".join(lines) + "\n")
    return read_table(tmp_path / "eight.csv")


@pytest.mark.parametrize(
    ("cost_model", "spent"),
    [
        # restart: rung 1 pays c1..c8 at fidelity 1 (1+2+...+8 = 36); rung 2 retrains c1..c4
        # to 2 (2 * (1+2+3+4) = 20); rung 3 retrains c3, c4 to 4 (4 * (3+4) = 28)
        ("restart", 36 + 20 + 28),
        # continue: rung 2 pays 2-1 per unit (1+2+3+4 = 10), rung 3 pays 4-2 (2 * 7 = 14)
        ("continue", 36 + 10 + 14),
    ],
)
def test_synchronous_halving_picks_the_known_condition_at_the_known_cost(
    tmp_path, cost_model, spent
):
    source = ReplaySource(eight(tmp_path), seed=0, description={})
    conds = [cand(name) for name in VALUES]
    draws = TrialDraws(source, 0, cost_model, final_budget_s=4)
    paid = []

    def evaluate(slot, rung, resource):
        got, charge = draws.run(("sh", slot), conds[slot], resource, "local", 1)
        paid.append(charge)
        return got.value

    bracket = halving_bracket(8, 4, 2)
    assert [(r.n, r.resource) for r in bracket.rungs] == [(8, 1), (4, 2), (2, 4)]
    result = run_bracket(bracket, evaluate)
    assert [[conds[s].name for s in rung] for rung in result.evaluated] == [
        ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"],
        ["c1", "c2", "c3", "c4"],
        ["c3", "c4"],
    ]
    assert conds[result.best_slot].name == "c3" and result.best_value == 0.30
    assert sum(paid) == pytest.approx(spent)


def test_largest_bracket_fits_the_cap_and_one_more_does_not():
    def cost(i, resource):  # each evaluation costs its resource (restart)
        return resource

    # n = 8 at R = 4, eta 2: 8 * 1 + 4 * 2 + 2 * 4 = 24; n = 9: 9 + 8 + 8 = 25
    assert planned_cost(halving_bracket(8, 4, 2), cost) == 24
    assert largest_bracket(24, 4, 2, cost).n == 8
    assert largest_bracket(24.9, 4, 2, cost).n == 8
    assert largest_bracket(25, 4, 2, cost).n == 9
    assert largest_bracket(6, 4, 2, cost) is None  # n = 1 already costs 1 + 2 + 4 = 7


def test_failed_evaluations_are_never_promoted():
    values = {0: None, 1: 0.3, 2: None, 3: 0.5}
    result = run_bracket(halving_bracket(4, 4, 2), lambda slot, rung, r: values[slot])
    assert result.evaluated[1] == [1, 3] and result.best_slot == 1


def test_continuing_needs_runs_recorded_all_the_way(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("condition,budget,metric,cost_gpu_s,seed\nc1,1,0.5,1,0\nc1,4,0.4,4,1\n")
    source = ReplaySource(read_table(path), seed=0, description={})
    draws = TrialDraws(source, 0, "continue", final_budget_s=4)
    with pytest.raises(LedgerError, match="no run recorded at every fidelity up to budget 4s"):
        draws.run("x", cand("c1"), 1, "local", 1)
