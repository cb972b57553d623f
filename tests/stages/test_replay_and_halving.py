"""Replay tables and Optuna's ASHA, checked against hand lookups and arithmetic."""

from __future__ import annotations

import pytest

from ledger.errors import LedgerError
from stages.campaign import parse_campaign
from stages.conditions import Condition
from stages.evaluate import evaluate
from stages.evaluation_sources import ReplaySource, TrialDraws, replay_csv_source
from stages.hpo_baselines import Point, Setup, optuna_asha, random_search, rung_steps
from stages.replay_table import read_table


def cand(name: str, cid: str | None = None, config: dict | None = None) -> Condition:
    """A candidate as the evaluation passes it (a replay table reads its id, name, config)."""
    return Condition(cid or name, name, config or {}, {}, "test")


# Nine curves at steps 1, 3, 9; the cost column is cumulative GPU-seconds (= the step).
STEP1 = [0.50, 0.60, 0.40, 0.70, 0.30, 0.80, 0.45, 0.35, 0.90]
STEP3 = {1: 0.40, 3: 0.30, 5: 0.35, 8: 0.20}
STEP9 = {1: 0.35, 3: 0.15, 8: 0.22}


def nine_curves(tmp_path):
    lines = ["condition,budget,val_bpb,cost_gpu_s"]
    for i, v in enumerate(STEP1, start=1):
        lines.append(f"c{i},1,{v},1")
        lines.append(f"c{i},3,{STEP3.get(i, v - 0.01)},3")
        lines.append(f"c{i},9,{STEP9.get(i, v - 0.02)},9")
    path = tmp_path / "nine.csv"
    path.write_text("\n".join(lines) + "\n")
    return read_table(path)


def setup_and_evaluate(table, cap, cost_model="continue"):
    """Nine candidates c1..c9, steps 1..9, answered through the replay source and cost model."""
    source = ReplaySource(table, seed=0, description={})
    conds = [cand(f"c{i}") for i in range(1, 10)]
    draws = TrialDraws(source, 0, cost_model, final_budget_s=9)

    def evaluate_one(run_id, idx, budget):
        got, charge = draws.run(run_id, conds[idx], budget, "local", 1)
        return Point(got.value, charge)

    return Setup(9, 1.0, 9.0, 3, cap, lambda i, r: r), evaluate_one


def test_optuna_asha_promotes_what_hand_arithmetic_says(tmp_path):
    """ASHA (eta 3), trials in order c1..c9, each run until pruned or finished.

    Rung 1 (step 1): a trial is promoted iff its value is <= the k-th smallest of the values
    seen there so far (itself included), k = max(1, n // 3):
      c1 .50 [n1 k1 .50] yes; c2 .60 [k1 .50] no; c3 .40 [n3 k1 .40] yes; c4 .70 no;
      c5 .30 [k1 .30] yes; c6 .80 [n6 k2 .40] no; c7 .45 [n7 k2 .40] no;
      c8 .35 [n8 k2 .35] yes; c9 .90 [n9 k3 .40] no.
    Rung 2 (step 3), among c1 c3 c5 c8:
      c1 .40 yes; c3 .30 [k1 .30] yes; c5 .35 [n3 k1 .30] no; c8 .20 [n4 k1 .20] yes.
    c1, c3, c8 finish at step 9 with .35, .15, .22: the pick is c3. Spent, continuing each
    run: 9 x 1 + 4 x 2 + 3 x 6 = 35 GPU-seconds.
    """
    setup, evaluate_one = setup_and_evaluate(nine_curves(tmp_path), 35.0)
    run = optuna_asha("asha", setup, evaluate_one, list(range(9)), seed=0)
    assert rung_steps(9, 3) == [1, 3, 9]
    assert run.reached[1] == list(range(9))
    assert [f"c{i + 1}" for i in run.reached[3]] == ["c1", "c3", "c5", "c8"]
    assert [f"c{i + 1}" for i in run.completed] == ["c1", "c3", "c8"]
    assert run.pick == 2 and run.pick_value == 0.15
    assert run.spent_gpu_s == 35.0 and run.evaluations == 9


def test_asha_and_random_stop_at_the_cap(tmp_path):
    table = nine_curves(tmp_path)
    for method in ("asha", "asha-hyperband"):
        setup, evaluate_one = setup_and_evaluate(table, 20.0)
        run = optuna_asha(method, setup, evaluate_one, list(range(9)), seed=0)
        assert 19.0 <= run.spent_gpu_s <= 20.0  # within one first step (1 GPU-s) of the cap
    setup, evaluate_one = setup_and_evaluate(table, 20.0)
    run = random_search(setup, evaluate_one, [8, 7, 6, 5, 4, 3, 2, 1, 0])
    # two full curves (9 GPU-s each) fit under 20: c9 then c8; c8 (.22) beats c9 (.88)
    assert run.evaluations == 2 and run.spent_gpu_s == 18.0 and run.pick == 7


TINY = """seed,host,budget,lr,depth,val_bpb,cost_gpu_s
0,a,1m,0.01,2,1.30,60
1,a,1m,0.01,2,1.34,60
0,a,2m,0.01,2,1.20,120
1,a,2m,0.01,2,1.24,120
0,a,10m,0.01,2,1.10,600
0,a,1m,0.02,2,1.25,60
0,a,2m,0.02,2,,80
"""


def test_replay_lookups_take_the_nearest_fidelity_at_or_below_the_budget(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text(TINY)
    table = read_table(path)
    assert table.keys == ["lr", "depth"]
    slow = cand("slow", "x", {"lr": 0.01, "depth": 2, "other": 1})
    fast = cand("fast", "y", {"lr": 0.02, "depth": 2})
    fidelity, rows = table.rows_at(slow, 300)  # 5 minutes: the 2-minute rows
    assert fidelity == 120 and [r.value for r in rows] == [1.20, 1.24]
    assert table.rows_at(slow, 600)[0] == 600 and table.rows_at(slow, 7200)[0] == 600
    fidelity, rows = table.rows_at(fast, 120)
    assert rows[0].value is None and rows[0].status == "diverged" and rows[0].cost_gpu_s == 80
    with pytest.raises(LedgerError, match=r"no row for condition 'slow'.*at or below budget 30s"):
        table.rows_at(slow, 30)
    with pytest.raises(LedgerError, match=r"no row for condition 'other' \(lr=0.05, depth=2\)"):
        table.rows_at(cand("other", "z", {"lr": 0.05, "depth": 2}), 60)
    with pytest.raises(LedgerError, match="has no config value for table column 'depth'"):
        table.rows_at(cand("w", "w", {"lr": 0.01}), 60)
    source = ReplaySource(table, seed=0, description={})
    assert source.truth(slow, 120) == pytest.approx(1.22)  # the replicates' mean
    exact = TrialDraws(source, -1, "restart", mode="exact")
    assert exact.run("r", slow, 120, "a", 1, seed=1)[0].value == 1.24  # its own (seed, host)
    drawn = {
        TrialDraws(source, t, "restart").run("r", slow, 120, "a", 1)[0].value for t in range(40)
    }
    assert drawn == {1.20, 1.24}  # trials deal the two seeds afresh
    for t in range(20):  # two runs of one condition in one stage never read the same seed
        draws = TrialDraws(source, t, "restart")
        first, second = (draws.run(i, slow, 120, "a", 1)[0].value for i in range(2))
        assert {first, second} == {1.20, 1.24} and draws.reused == 0


def test_bad_tables_name_file_line_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("condition,budget,val_bpb\nc1,1,0.5\n")
    with pytest.raises(LedgerError, match=r"bad.csv: no cost column"):
        read_table(path)
    path.write_text("condition,budget,val_bpb,cost_gpu_s\nc1,soon,0.5,1\n")
    with pytest.raises(LedgerError, match=r"bad.csv: line 2, column 'budget'"):
        read_table(path)
    path.write_text("condition,budget,val_bpb,cost_gpu_s\nc1,1,0.5,-3\n")
    with pytest.raises(LedgerError, match=r"line 2, column 'cost_gpu_s'"):
        read_table(path)
    # a cost that falls along one run cannot be cumulative: refused, naming both rows
    path.write_text("condition,budget,val_bpb,cost_gpu_s,seed\nc1,1,0.5,10,0\nc1,2,0.4,7,0\n")
    with pytest.raises(
        LedgerError,
        match=r"line 3: cost 7 at budget 2 is below 10 at budget 1 \(line 2\) for the same run "
        r"\(condition c1, seed 0, host None\): the cost column must be cumulative",
    ):
        read_table(path)
    # the same replicate twice at one fidelity is ambiguous
    path.write_text("condition,budget,val_bpb,cost_gpu_s\nc1,1,0.5,1\nc1,1,0.6,1\n")
    with pytest.raises(LedgerError, match=r"line 3 repeats line 2 \(condition c1, seed None"):
        read_table(path)
    with pytest.raises(LedgerError, match="replay table not found"):
        read_table(tmp_path / "missing.csv")


REPLAY_CAMPAIGN = """
[campaign]
name = "replay"
metric = "val_bpb"

[conditions]
w = { matrix_lr = 0.01 }
x = { matrix_lr = 0.02 }
y = { matrix_lr = 0.03 }
z = { matrix_lr = 0.04 }

[[stages]]
name = "short"
budget = "1m"
add = ["w", "x", "y", "z"]
rule = { top_k = 2 }

[[stages]]
name = "long"
budget = "10m"
from = "short"
rule = { top_k = 1 }
"""

# at 1 minute y and z look best; at 10 minutes w (never promoted) would have been best
CURVES = """matrix_lr,budget,val_bpb,cost_gpu_s
0.01,60,1.50,60
0.01,600,0.90,600
0.02,60,1.40,60
0.02,600,1.00,600
0.03,60,1.20,60
0.03,600,1.10,600
0.04,60,1.30,60
0.04,600,0.95,600
"""


def test_replay_walk_decides_and_costs_what_the_table_says(tmp_path):
    camp = parse_campaign(REPLAY_CAMPAIGN, tmp_path / "replay.toml")
    (tmp_path / "curves.csv").write_text(CURVES)
    source = replay_csv_source(tmp_path / "curves.csv", camp, seed=0)
    out = evaluate(camp, source, trials=3, seed=0, against=["random"])
    assert out.reference.promoted == {"short": ["y", "z"], "long": ["z"]}
    assert out.recorded.unavailable == (
        "the table has no seed column, so its rows cannot be matched to the campaign's cells"
    )
    assert out.truth.best == "w" and out.truth.value == 0.90
    protocol = out.protocol
    assert protocol.p_pick_best.value == 0.0 and protocol.p_best_in_set.value == 0.0
    assert protocol.deterministic and protocol.p_pick_best.mc is None  # one run per condition
    assert protocol.regret.value == pytest.approx(0.05)  # z 0.95 - w 0.90
    assert protocol.gpu_hours.value == pytest.approx((4 * 60 + 2 * 600) / 3600)
    assert out.inputs.table_sha256 and out.inputs.executor == "replay"
    assert out.uncertainty.data == "single-replicate"
    # random search at the 10-minute budget: 1440 GPU-s buys two of the four curves
    random = out.baselines[0]
    assert random.evaluations_mean == 2 and random.spent_ratio_mean == pytest.approx(1200 / 1440)


def test_replay_names_the_missing_row(tmp_path):
    camp = parse_campaign(
        REPLAY_CAMPAIGN.replace("top_k = 2", "top_k = 3"), tmp_path / "replay.toml"
    )
    (tmp_path / "curves.csv").write_text(
        CURVES.replace("0.02,60,1.40,60\n", "").replace("0.02,600,1.00,600\n", "")
    )
    source = replay_csv_source(tmp_path / "curves.csv", camp, seed=0)
    with pytest.raises(LedgerError, match=r"no row for condition 'x' \(matrix_lr=0.02\)$"):
        evaluate(camp, source, trials=1, against=[])
    # a 10-minute run of a condition recorded only at 1 minute reads its 1-minute row, and
    # the evaluation says whose truth comes from below the final budget
    (tmp_path / "curves.csv").write_text(CURVES.replace("0.02,600,1.00,600\n", ""))
    source = replay_csv_source(tmp_path / "curves.csv", camp, seed=0)
    out = evaluate(camp, source, trials=1, against=[])
    assert out.truth.below_final_budget == ["x"]


def test_the_recorded_walk_reads_each_runs_own_seed_without_a_host_column(tmp_path):
    # seed 0 promotes y, z and picks z; seed 1 would promote w, x and pick w; their mean
    # promotes x, z. The campaign runs seed 0 only, so the recorded walk is seed 0's.
    camp = parse_campaign(REPLAY_CAMPAIGN, tmp_path / "replay.toml")
    rows = ["matrix_lr,budget,val_bpb,cost_gpu_s,seed"]
    for lr, s0, s1 in (
        (0.01, (1.50, 0.90), (1.10, 0.80)),
        (0.02, (1.40, 1.00), (1.15, 0.85)),
        (0.03, (1.20, 1.10), (1.50, 1.20)),
        (0.04, (1.30, 0.95), (1.45, 0.99)),
    ):
        rows += [f"{lr},60,{s0[0]},60,0", f"{lr},600,{s0[1]},600,0"]
        rows += [f"{lr},60,{s1[0]},60,1", f"{lr},600,{s1[1]},600,1"]
    (tmp_path / "seeds.csv").write_text("\n".join(rows) + "\n")
    out = evaluate(camp, replay_csv_source(tmp_path / "seeds.csv", camp, 0), trials=4, against=[])
    assert out.recorded.walk.promoted == {"short": ["y", "z"], "long": ["z"]}
    assert out.reference.promoted == {"short": ["x", "w"], "long": ["w"]}  # the means


def test_baselines_run_on_the_final_stages_host(tmp_path):
    # on host b, w is best at 10 minutes; on host a, x is. Random search buys all four
    # curves (the protocol runs all four to 10 minutes) on host b, so it always picks w.
    text = (
        REPLAY_CAMPAIGN.replace("top_k = 2", "top_k = 4")
        .replace('name = "long"', 'name = "long"\nhosts = ["b"]')
        .replace('name = "short"', 'name = "short"\nhosts = ["b"]')
    )
    camp = parse_campaign(text, tmp_path / "hosts.toml")
    rows = ["matrix_lr,budget,val_bpb,cost_gpu_s,seed,host"]
    for lr, on_a, on_b in (
        (0.01, 1.0, 0.80),
        (0.02, 0.7, 0.90),
        (0.03, 1.1, 0.95),
        (0.04, 1.2, 0.99),
    ):
        rows += [f"{lr},60,1.5,60,0,a", f"{lr},600,{on_a},600,0,a"]
        rows += [f"{lr},60,1.5,60,0,b", f"{lr},600,{on_b},600,0,b"]
    (tmp_path / "hosts.csv").write_text("\n".join(rows) + "\n")
    out = evaluate(
        camp, replay_csv_source(tmp_path / "hosts.csv", camp, 0), trials=6, against=["random"]
    )
    assert out.baselines[0].picks == {"w": 6}
    assert not any("drawn across" in w for w in out.warnings)
