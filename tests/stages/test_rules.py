"""Gate rules: hand-computed outcomes for every key of the rule vocabulary (DESIGN §6)."""

from __future__ import annotations

import json
import re

import pytest

from ledger.errors import LedgerError, PlanError
from ledger.manifest import parse_plan
from ledger.plan_model import Check, FactorSpec, Rule
from stages.designs import full_factorial, point_name
from stages.rules import apply_rule
from stages.stats import estimate_effects, summarize

CELLS = [(0, "a"), (1, "a")]


def make(table: dict[str, list[float | None]], cells=CELLS):
    """Summaries from {condition: [value per cell]} (None = a failed run in that cell)."""
    obs = []
    for cond, values in table.items():
        for (seed, host), v in zip(cells, values, strict=True):
            status = "ok" if v is not None else "crashed"
            obs.append({"condition": cond, "seed": seed, "host": host, "status": status,
                        "value": v})  # fmt: skip
    return summarize(obs, cells=cells)


# means: c1 1.0, c2 1.2, c3 1.1, c4 1.5
BASIC = {"c1": [0.9, 1.1], "c2": [1.2, 1.2], "c3": [1.0, 1.2], "c4": [1.4, 1.6]}
NAMES = {"c1": "base", "c2": "bridge", "c3": "wide", "c4": "deep", "c9": "anchor"}


def typed(rule: dict, checks=()) -> tuple[Rule, list[Check]]:
    """The rule and checks as a manifest holds them: validated where the plan enters."""
    return Rule.model_validate(rule), [Check.model_validate(c) for c in checks]


def run(rule, table=BASIC, **kw):
    kw.setdefault("names", NAMES)
    rule, kw["checks"] = typed(rule, kw.get("checks", ()))
    out = apply_rule(rule, make(table), **kw)
    json.dumps(out.to_dict(), allow_nan=False)
    return out


def test_top_k():
    out = run({"top_k": 2})
    assert out.promoted == ["c1", "c3"] and out.best == "c1"
    assert any(t.startswith("promoted wide [c3]: rank 2 of 4, mean 1.1") for t in out.trace)
    assert any(t.startswith("not promoted bridge [c2]: rank 3 of 4") for t in out.trace)


def test_tie_breaks_by_condition_id():
    out = run({"top_k": 1}, {"z": [1.0, 1.0], "b": [1.0, 1.0], "m": [0.5, 1.5]})
    assert out.promoted == ["b"]  # all three tie at mean 1.0: lowest id first


def test_within():
    assert run({"within": 0.15}).promoted == ["c1", "c3"]
    # 1.2 - 1.0 = 0.19999999999999996 in floats: the margin of 0.2 includes it
    assert run({"within": 0.2}).promoted == ["c1", "c3", "c2"]
    out = run({"within": 0.05})
    assert out.promoted == ["c1"]
    assert any(
        t.startswith("not promoted wide [c3]: rank 2 of 4, 0.1 above best (margin 0.05)")
        for t in out.trace
    )


def test_within_and_top_k():
    assert run({"within": 0.25, "top_k": 2}).promoted == ["c1", "c3"]
    assert run({"within": 0.15, "top_k": 3}).promoted == ["c1", "c3"]


def test_no_ranking_selector_promotes_no_one():
    out = run({})
    assert out.promoted == []
    assert "no top_k or within: no one is promoted by ranking" in out.trace


def test_min_cells_excludes_incomplete():
    table = {**BASIC, "c0": [0.1, None]}  # best mean but only one of two cells
    out = run({"top_k": 1, "min_cells": 2, "failed": "ignore"}, table)
    assert out.promoted == ["c1"]
    assert [e.to_dict() for e in out.excluded] == [
        {
            "condition": "c0",
            "name": None,
            "reason": "1 ok cells < min_cells 2",
            "failed": [{"seed": 1, "host": "a", "status": "crashed"}],
        }
    ]
    assert "excluded c0: 1 ok cells < min_cells 2" in out.trace
    # under `failed = ignore` and without min_cells it is ranked on its one ok run, and noted
    out = run({"top_k": 1, "failed": "ignore"}, table)
    assert out.promoted == ["c0"]
    assert (
        "note c0: 1 failed run(s) (a/1 crashed); failed = ignore: ranked on its 1 ok run(s)"
        in out.trace
    )


def test_no_ok_runs_is_excluded():
    out = run({"top_k": 5, "failed": "ignore"}, {**BASIC, "c5": [None, None]})
    assert "c5" not in out.promoted
    assert out.excluded[0].condition == "c5"
    assert out.excluded[0].reason == "no ok runs (a/0 crashed, a/1 crashed)"


def test_keep_without_data():
    out = run({"top_k": 1, "keep": ["anchor", "deep"]})
    assert out.promoted == ["c1", "c4", "c9"]  # ranked first, unranked keeps last
    assert "kept anchor [c9]: always carried (no ok data at this stage)" in out.trace
    with pytest.raises(LedgerError, match="'nobody'"):
        run({"keep": ["nobody"]})


def test_wins_all_cells():
    table = {"c1": [1.0, 3.0], "c2": [1.5, 1.5], "c3": [1.6, 1.6]}
    # c1 wins cell 0, c2 wins cell 1: nobody wins all
    out = run({"wins_all_cells": True}, table)
    assert out.promoted == []
    assert "wins_all_cells: no condition ranks first in every cell" in out.trace
    table = {"c1": [1.0, 1.0], "c2": [1.1, 1.1], "c3": [1.2, 0.95]}
    # c1 mean 1.0 ranks first, c3 (mean 1.075) wins cell 1: nobody wins both
    assert run({"wins_all_cells": True}, table).promoted == []
    table["c3"] = [1.2, 3.0]  # now c1 is first in both cells
    out = run({"wins_all_cells": True}, table)
    assert out.promoted == ["c1"]
    assert "promoted base [c1]: wins_all_cells, first in all 2 cells" in out.trace
    # adds to (and deduplicates with) the ranking selectors
    assert run({"wins_all_cells": True, "top_k": 2}, table).promoted == ["c1", "c2"]


def test_max_gap_pass_and_fail():
    out = run({"top_k": 1, "max_gap": {"condition": "bridge", "gap": 0.2}})
    assert out.promoted == ["c1", "c2"]
    assert out.verdicts[0].name == "max_gap:bridge" and out.verdicts[0].passed is True
    out = run({"top_k": 1, "max_gap": {"condition": "bridge", "gap": 0.1}})
    assert out.promoted == ["c1"]
    assert out.verdicts[0].passed is False and "gap 0.2" in out.verdicts[0].detail
    out = run({"max_gap": {"condition": "anchor", "gap": 1.0}})
    assert out.verdicts[0].passed is False and "no data" in out.verdicts[0].detail


def test_checks_record_verdicts_only():
    checks = [
        {"name": "eq", "a": "best", "b": "bridge", "within": 0.25},
        {"name": "far", "a": "wide", "b": "deep", "within": 0.1},
        {"name": "nodata", "a": "anchor", "b": "base", "within": 1.0},
    ]
    out = run({"top_k": 1}, checks=checks)
    assert out.promoted == ["c1"]
    v = {x.name: x for x in out.verdicts}
    assert v["eq"].passed is True and v["far"].passed is False
    assert v["nodata"].passed is False and v["nodata"].detail == "no data for anchor"
    with pytest.raises(PlanError, match=r"plan key 'checks\[0\]\.margin': unknown key"):
        parse_plan(plan_with(rule={}, checks=[{"name": "x", "a": "b", "b": "w", "margin": 1}]))


def reduce_setup(coded_subset=None, huge=5.0):
    """A 2^3 with two seeds; y = 10 + huge*A + seed noise (+0.1/-0.1, no B or C signal)."""
    pts = full_factorial(3)
    ids = [f"p{i}" for i in range(8)]
    coded = dict(zip(ids, pts, strict=True))
    table, rows = {}, []
    for cid, pt in coded.items():
        ys = [10 + huge * pt["A"] + 0.1, 10 + huge * pt["A"] - 0.1]
        table[cid] = ys
        rows += [dict(pt, value=y) for y in ys]
    effects = estimate_effects(rows, ["A", "B", "C"])
    factors = {
        f: FactorSpec(key=k, levels=[1, 2])
        for f, k in zip("ABC", ("bs", "depth", "lr"), strict=True)
    }
    names = {cid: point_name(pt) for cid, pt in coded.items()}
    if coded_subset is not None:
        coded = {c: coded[c] for c in coded_subset}
    return table, names, effects, coded, factors


def test_reduce_fixes_significant_factor_and_promotes_rest():
    table, names, effects, coded, factors = reduce_setup()
    out = run({"fdr": 0.05, "reduce": True, "top_k": 1}, table, names=names, effects=effects,
              coded=coded, factors=factors)  # fmt: skip
    assert out.significant == ["A"]
    # A raises the minimized metric (effect +10): fixed at -1; B, C free -> (1), b, c, bc
    assert sorted(out.promoted) == ["p0", "p2", "p4", "p6"]
    assert out.new_points == []
    assert "reduce: fix A at -1 (effect 10)" in out.trace


def test_reduce_returns_new_points():
    table, names, effects, coded, factors = reduce_setup(coded_subset=["p0", "p1"])
    out = run({"fdr": 0.05, "reduce": True}, table, names=names, effects=effects,
              coded=coded, factors=factors)  # fmt: skip
    assert out.promoted == ["p0"]
    assert [p.name for p in out.new_points] == ["b", "c", "bc"]
    assert out.new_points[0].coded == {"A": -1, "B": 1, "C": -1}


def test_reduce_nothing_significant_falls_back():
    table, names, effects, coded, factors = reduce_setup(huge=0.0)
    out = run({"fdr": 0.05, "reduce": True, "top_k": 2}, table, names=names, effects=effects,
              coded=coded, factors=factors)  # fmt: skip
    assert out.significant == [] and out.new_points == []
    assert out.promoted == ["p0", "p1"]  # all tie at 10.0: lowest ids
    assert "reduce: no factor is significant; promoting per the other selectors" in out.trace


def test_fdr_without_effects():
    out = run({"fdr": 0.05, "top_k": 1})
    assert out.significant == [] and out.promoted == ["c1"]


def plan_with(**keys) -> dict:
    """An explicit plan (what `ledger freeze --plan` reads) with `keys` replaced."""
    return {
        "campaign": "c",
        "stage": "s",
        "budget_s": 60,
        "runs": [{"condition": "c1", "seed": 0, "host": "h"}],
        "conditions": {"c1": {"name": "base", "config": {}}},
        "rule": {"top_k": 1},
        "analysis": {},
        "runner": {"kind": "builtin"},
        "data_sha256": None,
        "parent": None,
        **keys,
    }


@pytest.mark.parametrize(
    "rule, needle",
    [
        ({"topk": 3}, "'rule.topk': unknown key"),
        ({"top_k": 0}, "'rule.top_k': must be >= 1, not 0"),
        ({"top_k": 1.5}, "'rule.top_k': must be an integer, not 1.5"),
        ({"within": -1}, "'rule.within': must be >= 0, not -1"),
        ({"reduce": True}, "reduce requires fdr"),
        ({"fdr": 2}, "'rule.fdr': must be <= 1, not 2"),
        ({"max_gap": {"condition": "base"}}, "'rule.max_gap.gap': is required"),
        ({"max_gap": {"condition": "base", "gap": 1, "x": 1}}, "'rule.max_gap.x': unknown key"),
        ({"keep": "base"}, "'rule.keep': must be an array, not 'base'"),
        ({"wins_all_cells": 1}, "'rule.wins_all_cells': must be true or false, not 1"),
    ],
)
def test_bad_rules_are_refused_before_anything_is_signed(rule, needle):
    """A rule is checked where the plan enters (`freeze`), every bad key named: a rule
    that cannot be applied is never signed."""
    with pytest.raises(PlanError, match=re.escape(needle)):
        parse_plan(plan_with(rule=rule))


def test_deterministic_under_input_order():
    rule = Rule.model_validate(
        {"top_k": 2, "keep": ["anchor"], "max_gap": {"condition": "deep", "gap": 1}}
    )
    a = apply_rule(rule, make(BASIC), names=NAMES)
    b = apply_rule(rule, list(reversed(make(BASIC))), names=NAMES)
    assert a.to_dict() == b.to_dict()
    assert a.promoted == ["c1", "c3", "c4", "c9"]


# --------------------------------------------------------------------------- failed runs

CELLS4 = [(0, "a"), (1, "a"), (0, "b"), (1, "b")]
# "fast" diverged in 3 of 4 cells; its one survivor beats every stable condition
DIVERGING = {
    "fast": [0.80, None, None, None],
    "stable": [1.00, 1.02, 0.98, 1.00],
    "slow": [1.10, 1.12, 1.08, 1.10],
}


def run4(rule, **kw):
    rule, kw["checks"] = typed(rule, kw.get("checks", ()))
    out = apply_rule(rule, make(DIVERGING, CELLS4), names={}, **kw)
    json.dumps(out.to_dict(), allow_nan=False)
    return out


def test_diverging_condition_is_excluded_by_default():
    out = run4({"top_k": 1})
    assert out.promoted == ["stable"] and out.best == "stable"
    assert out.ranking == ["stable", "slow"]
    (ex,) = out.excluded
    assert ex.condition == "fast" and [f.host + str(f.seed) for f in ex.failed] == [
        "a1",
        "b0",
        "b1",
    ]
    assert (
        "excluded fast: 3 of 4 runs failed (a/1 crashed, b/0 crashed, b/1 crashed); "
        "failed = exclude"
    ) in out.trace


def test_diverging_condition_ranks_last_under_worst():
    out = run4({"top_k": 2, "failed": "worst"})
    assert out.ranking == ["stable", "slow", "fast"] and out.promoted == ["stable", "slow"]
    assert [e.to_dict() for e in out.excluded] == []
    # top_k reaches it only when it must; `within` never counts a failing condition as close
    assert run4({"top_k": 3, "failed": "worst"}).promoted == ["stable", "slow", "fast"]
    out = run4({"within": 1.0, "failed": "worst"})
    assert out.promoted == ["stable", "slow"]
    assert any(
        t.startswith("not promoted fast: rank 3 of 3, 3 failed run(s) (failed = worst)")
        for t in out.trace
    )


def test_failed_ignore_is_todays_behaviour_spelled_out():
    out = run4({"top_k": 1, "failed": "ignore"})
    assert out.promoted == ["fast"]  # ranked on its one surviving run, as before
    assert any(
        t.startswith("note fast: 3 failed run(s)") and "failed = ignore" in t for t in out.trace
    )


def test_failed_runs_fail_checks_and_max_gap_unless_ignored():
    checks = [{"name": "eq", "a": "fast", "b": "best", "within": 1.0}]
    for policy, passed in (("exclude", False), ("worst", False), ("ignore", True)):
        out = run4({"failed": policy, "max_gap": {"condition": "fast", "gap": 1.0}}, checks=checks)
        verdicts = {v.name: v for v in out.verdicts}
        assert verdicts["eq"].passed is passed, policy
        assert verdicts["max_gap:fast"].passed is passed, policy


def test_bad_failed_policy_is_one_line_naming_the_key():
    with pytest.raises(
        PlanError,
        match=r"^plan key 'rule.failed': must be 'exclude', 'worst' or 'ignore', not 'drop'$",
    ):
        parse_plan(plan_with(rule={"failed": "drop"}))


def test_campaign_file_refuses_a_bad_failed_policy_naming_the_key(sim_campaign):
    from stages.campaign import load_campaign

    sim_campaign.write_text(
        sim_campaign.read_text().replace(
            'rule = { top_k = 3, keep = ["base"], fdr = 0.05 }',
            'rule = { top_k = 3, keep = ["base"], fdr = 0.05, failed = "drop" }',
        )
    )
    with pytest.raises(
        LedgerError,
        match=r"stages\[0\]\.rule\.failed \(stage 'screen'\): must be 'exclude', 'worst' or "
        r"'ignore', not 'drop'",
    ):
        load_campaign(sim_campaign)


def test_fdr_ignores_post_selection_effects():
    table, names, effects, coded, factors = reduce_setup()
    effects.post_selection = True
    out = run(
        {"fdr": 0.05, "top_k": 1}, table, names=names, effects=effects, coded=coded, factors=factors
    )
    assert out.significant == []
    assert any("post-selection" in t for t in out.trace)


def test_gate_flags_overlap_and_host_reversal():
    from stages.stats import gate_flags

    table = {
        "w": [1.00, 1.04, 1.02, 1.06],
        "r": [1.03, 1.05, 0.99, 1.01],
        "x": [1.50, 1.52, 1.51, 1.49],
    }
    summaries = make(table, CELLS4)
    out = apply_rule(Rule(top_k=1), summaries, names={})
    # w: mean 1.03, host a 1.02, host b 1.04; r: mean 1.02 -> r wins overall
    assert out.ranking == ["r", "w", "x"]
    flags = gate_flags(summaries, out.ranking, out.promoted, {})
    kinds = [f.kind for f in flags]
    assert kinds == ["winner_overlaps_runner_up", "host_reverses_order"]
    assert flags[1].detail.startswith("on host a, w (1.02) beats r (1.04)")
    # far apart, no reversal: no flags
    clear = make({"w": [1.0, 1.0, 1.01, 1.01], "r": [1.5, 1.5, 1.51, 1.51]}, CELLS4)
    out = apply_rule(Rule(top_k=1), clear, names={})
    assert gate_flags(clear, out.ranking, out.promoted, {}) == []
