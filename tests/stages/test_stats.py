"""Statistics against independent textbook answers, not the code's own output."""

from __future__ import annotations

import json
import math

import pytest

from ledger.errors import LedgerError
from stages.designs import fractional, full_factorial
from stages.stats import (
    bh,
    clean,
    estimate_effects,
    lenth,
    spearman,
    summarize,
    t_interval,
    variance_decomposition,
)

# Montgomery, Design and Analysis of Experiments, Example 6.2 (filtration rate), standard order.
FILTRATION = [45, 71, 48, 65, 68, 60, 80, 65, 43, 100, 45, 104, 75, 86, 70, 96]
FILTRATION_EFFECTS = {
    "A": 21.625, "B": 3.125, "C": 9.875, "D": 14.625, "AB": 0.125, "AC": -18.125,
    "AD": 16.625, "BC": 2.375, "BD": -0.375, "CD": -1.125, "ABC": 1.875, "ABD": 4.125,
    "ACD": -1.625, "BCD": -2.625, "ABCD": 1.375,
}  # fmt: skip


def filtration_rows():
    return [dict(r, value=v) for r, v in zip(full_factorial(4), FILTRATION, strict=True)]


def test_example_6_2_saturated_uses_lenth():
    res = estimate_effects(filtration_rows(), list("ABCD"), terms="all")
    assert res.method == "lenth" and res.df_resid == 0
    got = {e.term: e.effect for e in res.effects}
    assert list(got) == list(FILTRATION_EFFECTS)
    for term, want in FILTRATION_EFFECTS.items():
        assert got[term] == pytest.approx(want, abs=1e-9)
    # By hand: median|c| = 2.625, s0 = 3.9375, 2.5 s0 = 9.84375 -> the 10 smallest |c|
    # remain, median (1.625 + 1.875)/2 = 1.75, PSE = 1.5 * 1.75 = 2.625.
    assert res.pse == pytest.approx(2.625)
    # ME = t_{0.975, 5} * PSE = 2.5706 * 2.625; SME: gamma = (1 + 0.95^(1/15))/2, t = 5.2191
    assert res.me == pytest.approx(2.570582 * 2.625, rel=1e-5)
    assert res.sme == pytest.approx(5.21874 * 2.625, rel=1e-3)
    a = res.get("A")
    assert a.t == pytest.approx(21.625 / 2.625)
    # the big effects (A, C, D, AC, AD) exceed ME; B does not
    big = {e.term for e in res.effects if abs(e.effect) > res.me}
    assert big == {"A", "C", "D", "AC", "AD"}
    json.dumps(res.to_dict(), allow_nan=False)


def test_lenth_function_directly():
    pse, me, sme, d = lenth(list(FILTRATION_EFFECTS.values()))
    assert (pse, d) == (pytest.approx(2.625), 5)


def test_example_6_2_main_effects_ols():
    res = estimate_effects(filtration_rows(), list("ABCD"), terms="main")
    assert res.method == "ols" and res.df_resid == 11
    assert res.get("A").effect == pytest.approx(21.625)
    assert res.get("A").coef == pytest.approx(10.8125)
    assert res.pse is None and res.me is None


def test_example_8_1_half_fraction():
    by_point = {tuple(r.values()): v for r, v in zip(full_factorial(4), FILTRATION, strict=True)}
    d = fractional(4, 1)
    rows = [dict(r, value=by_point[tuple(r.values())]) for r in d.runs]
    assert [r["value"] for r in rows] == [45, 100, 45, 65, 75, 60, 80, 96]
    res = estimate_effects(rows, list("ABCD"), terms="all")
    want = {"A": 19.0, "B": 1.5, "C": 14.0, "D": 16.5, "AB": -1.0, "AC": -18.5, "AD": 19.0}
    assert [e.term for e in res.effects] == list(want)
    for term, v in want.items():
        assert res.get(term).effect == pytest.approx(v)
    assert res.method == "lenth"
    assert res.dropped[:3] == ["BC", "BD", "CD"]  # aliased with AD, AC, AB


def test_explicit_terms_and_alias_error():
    res = estimate_effects(filtration_rows(), list("ABCD"), terms=["A", "C", "AC"])
    assert [e.term for e in res.effects] == ["A", "C", "AC"]
    assert res.get("AC").effect == pytest.approx(-18.125)
    d = fractional(4, 1)
    rows = [dict(r, value=float(i)) for i, r in enumerate(d.runs)]
    with pytest.raises(LedgerError, match="'BC'"):
        estimate_effects(rows, list("ABCD"), terms=["AD", "BC"])
    with pytest.raises(LedgerError, match="'AX'"):
        estimate_effects(rows, list("ABCD"), terms=["AX"])


def test_ols_with_host_block_recovers_exact_effects():
    rows = []
    for host, offset in (("h1", 0.0), ("h2", 0.5)):
        for r in full_factorial(2):
            rows.append(dict(r, host=host, value=10 + 2 * r["A"] - 1 * r["B"] + offset))
    res = estimate_effects(rows, ["A", "B"], block="host")
    assert res.method == "ols" and res.block == "host" and res.df_resid == 4
    assert res.get("A").effect == pytest.approx(4.0)
    assert res.get("B").effect == pytest.approx(-2.0)
    # zero error: a nonzero effect is certain (p = 0, t infinite -> None), round-off is not
    assert res.get("A").p == 0.0 and res.get("A").t is None
    json.dumps(res.to_dict(), allow_nan=False)


def test_constant_response_has_no_signal():
    rows = [dict(r, value=1.0) for r in full_factorial(3)]
    res = estimate_effects(rows, list("ABC"), terms="all")
    assert all(e.effect == 0.0 and e.p is None for e in res.effects) and res.pse == 0.0


def test_ols_with_block_and_small_noise():
    noise = [0.01, -0.01, 0.02, -0.02, -0.01, 0.01, -0.02, 0.02]
    rows = []
    i = 0
    for host, offset in (("h1", 0.0), ("h2", 0.5)):
        for r in full_factorial(2):
            rows.append(dict(r, host=host, value=10 + 2 * r["A"] - r["B"] + offset + noise[i]))
            i += 1
    res = estimate_effects(rows, ["A", "B"], block="host")
    # Hand: A contrast of the noise = (-0.01+0.02-0.02+0.01-0.02-0.02... ) computed below
    a_noise = sum(n * r["A"] for n, r in zip(noise, rows, strict=True)) / 4
    assert res.get("A").effect == pytest.approx(4 + a_noise)
    assert res.get("A").p < 1e-6 and res.get("A").q is not None


def test_single_block_level_is_ignored_and_failed_rows_dropped():
    rows = [dict(r, host="h", value=float(i)) for i, r in enumerate(full_factorial(2))]
    rows += [dict(full_factorial(2)[0], host="h", value=None)]
    res = estimate_effects(rows, ["A", "B"], block="host")
    assert res.block is None and res.n == 4


def test_bad_levels_name_the_column():
    with pytest.raises(LedgerError, match="'B'"):
        estimate_effects([{"A": 1, "B": 0, "value": 1.0}], ["A", "B"])


def test_q_families():
    res = estimate_effects(filtration_rows(), list("ABCD"), terms="all")
    main = [e for e in res.effects if len(e.term) == 1]
    _, q = bh([e.p for e in main], 0.05)
    assert [e.q for e in main] == pytest.approx(q)


def test_bh_benjamini_hochberg_1995():
    ps = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459,
          0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.000]  # fmt: skip
    reject, q = bh(ps, 0.05)
    assert sum(reject) == 4 and reject[:4] == [True] * 4
    # q_(i) = min_{j>=i} p_(j) * m / j, by hand for the first and 4th
    # q_(1) = min(0.0015, 0.003, 0.0095, ...) = 0.0015; q_(4) = 0.0095 * 15 / 4 = 0.035625
    # and q_(5) = 0.0201 * 15 / 5 = 0.0603 > 0.05, so the fifth is not rejected.
    assert q[0] == pytest.approx(0.0015)
    assert q[3] == pytest.approx(0.035625)
    assert q[4] == pytest.approx(0.0603)


def test_bh_small_hand_cases():
    reject, q = bh([0.01, 0.04, 0.03], 0.05)
    # sorted 0.01, 0.03, 0.04 -> 0.03, 0.045, 0.04 -> monotone: 0.03, 0.04, 0.04
    assert q == pytest.approx([0.03, 0.04, 0.04]) and reject == [True, True, True]
    reject, q = bh([0.02, 0.5], 0.05)
    assert q == pytest.approx([0.04, 0.5]) and reject == [True, False]
    assert bh([], 0.05) == ([], [])
    with pytest.raises(LedgerError):
        bh([0.1], 0)


def test_t_interval_hand_computed():
    lo, hi = t_interval([1, 2, 3, 4])
    half = 3.182446 * (math.sqrt(5 / 3) / 2)
    assert lo == pytest.approx(2.5 - half, rel=1e-6) and hi == pytest.approx(2.5 + half, rel=1e-6)
    assert t_interval([1.0]) == (None, None)


def obs(cond, seed, host, value, status="ok"):
    return {"condition": cond, "seed": seed, "host": host, "status": status, "value": value}


def test_summarize_hand_computed():
    rows = [
        obs("c1", 0, "a", 1.0), obs("c1", 1, "a", 2.0), obs("c1", 0, "b", 3.0),
        obs("c1", 1, "b", 4.0),
        obs("c2", 0, "a", 0.5), obs("c2", 1, "a", 3.0), obs("c2", 0, "b", 2.0),
        obs("c2", 1, "b", None, "diverged"),
        obs("c3", 0, "a", None, "crashed"),
    ]  # fmt: skip
    s = {x.condition: x for x in summarize(rows)}
    c1 = s["c1"]
    assert (c1.n, c1.mean, c1.rank, c1.complete) == (4, 2.5, 2, True)
    assert c1.sd == pytest.approx(1.2910, abs=1e-4)
    assert c1.ci_low == pytest.approx(2.5 - 3.182446 * 0.645497, rel=1e-5)
    c2 = s["c2"]
    assert (c2.n, c2.rank, c2.complete, c2.n_cells_expected) == (3, 1, False, 4)
    assert c2.mean == pytest.approx(5.5 / 3)
    # cells: a/0 c2 wins (0.5<1); a/1 c1 (2<3); b/0 c2 (2<3); b/1 only c1 -> c1 wins
    assert (c1.wins, c2.wins) == (2, 2)
    assert c1.ranks_per_cell == {"a/0": 2, "a/1": 1, "b/0": 2, "b/1": 1}
    c3 = s["c3"]
    assert (c3.n, c3.mean, c3.rank, c3.wins, c3.complete) == (0, None, None, 0, False)
    json.dumps([x.to_dict() for x in s.values()], allow_nan=False)


def test_summarize_ties_and_planned_cells():
    rows = [obs("b", 0, "h", 1.0), obs("a", 0, "h", 1.0), obs("c", 0, "h", float("nan"))]
    out = summarize(rows, cells=[(0, "h"), (1, "h")])
    assert [(x.condition, x.rank) for x in out] == [("a", 1), ("b", 2), ("c", None)]
    assert out[0].wins == 1 and out[1].wins == 0  # tie in the cell -> lower id first
    assert out[0].n_cells_expected == 2 and not out[0].complete
    assert out[0].ci_low is None and out[0].sd is None


def test_spearman():
    a = {"x": 1, "y": 2, "z": 3, "w": 4}
    assert spearman(a, {"x": 1, "y": 2, "z": 3, "w": 4, "v": 9}) == (pytest.approx(1.0), 4)
    assert spearman(a, {"x": 4, "y": 3, "z": 2, "w": 1}) == (pytest.approx(-1.0), 4)
    assert spearman(a, {"x": 1, "y": 2}) == (None, 2)


def test_variance_decomposition_hand_computed():
    # y = condition effect (0 / 2) + host effect (0 / 1), balanced, no residual
    rows = []
    for cond, c in (("c1", 0.0), ("c2", 2.0)):
        for host, h in (("a", 0.0), ("b", 1.0)):
            for seed in (0, 1):
                rows.append({"budget": "2m", "condition": cond, "host": host, "seed": seed,
                             "value": c + h})  # fmt: skip
    vd = variance_decomposition(rows)
    # total SS = 8 * var: condition SS = 8 * 1^2 = 8, host SS = 8 * 0.5^2 = 2
    assert vd.total_ss == pytest.approx(10.0)
    assert vd.shares["condition"] == pytest.approx(0.8)
    assert vd.shares["host"] == pytest.approx(0.2)
    assert vd.shares["seed"] == pytest.approx(0.0, abs=1e-12)
    assert vd.shares["budget"] == 0.0 and "budget" not in vd.components
    assert vd.shares["residual"] == pytest.approx(0.0, abs=1e-12)
    json.dumps(vd.to_dict(), allow_nan=False)


def test_clean():
    assert clean(float("nan")) is None and clean(float("inf")) is None and clean(1) == 1.0
