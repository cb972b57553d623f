"""Statistics against independent textbook answers, not the code's own output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ledger.errors import LedgerError
from ledger.plan_model import FactorSpec
from stages.designs import fractional, full_factorial
from stages.stats import (
    bh,
    clean,
    estimate_effects,
    lenth,
    spearman,
    summarize,
    t_interval,
    t_ppf,
    t_sf,
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
    a = res.term("A")
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
    assert res.term("A").effect == pytest.approx(21.625)
    assert res.term("A").coef == pytest.approx(10.8125)
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
        assert res.term(term).effect == pytest.approx(v)
    assert res.method == "lenth"
    assert res.dropped[:3] == ["BC", "BD", "CD"]  # aliased with AD, AC, AB


def test_explicit_terms_and_alias_error():
    res = estimate_effects(filtration_rows(), list("ABCD"), terms=["A", "C", "AC"])
    assert [e.term for e in res.effects] == ["A", "C", "AC"]
    assert res.term("AC").effect == pytest.approx(-18.125)
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
    assert res.term("A").effect == pytest.approx(4.0)
    assert res.term("B").effect == pytest.approx(-2.0)
    # zero error: a nonzero effect is certain (p = 0, t infinite -> None), round-off is not
    assert res.term("A").p == 0.0 and res.term("A").t is None
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
    assert res.term("A").effect == pytest.approx(4 + a_noise)
    assert res.term("A").p < 1e-6 and res.term("A").q is not None


def test_single_block_level_is_ignored_and_failed_rows_dropped():
    rows = [dict(r, host="h", value=float(i)) for i, r in enumerate(full_factorial(2))]
    rows += [dict(full_factorial(2)[0], host="h", value=None)]
    res = estimate_effects(rows, ["A", "B"], block="host")
    assert res.block is None and res.n == 4


def test_bad_levels_name_the_column():
    with pytest.raises(LedgerError, match="'B'"):
        estimate_effects([{"A": 1, "B": 0, "value": 1.0}], ["A", "B"])


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


def test_spearman_edges():
    a = {"x": 1, "y": 2, "z": 3, "w": 4}
    assert spearman(a, {"x": 4, "y": 3, "z": 2, "w": 1}) == (pytest.approx(-1.0), 4)
    assert spearman(a, {"x": 1, "y": 2}) == (None, 2)  # fewer than three shared
    assert spearman(a, {"x": 1, "y": 1, "z": 1}) == (None, 3)  # constant ranks


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


def test_variance_decomposition_unbalanced_matches_statsmodels_type_i_anova():
    """Unbalanced, with host partly aliased by condition: the shares are statsmodels'
    sequential ANOVA (computed here with its formula API, an independent route)."""
    import random

    import pandas as pd
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    rng = random.Random(3)
    rows = []
    for cond, c in (("c1", 0.0), ("c2", 0.4), ("c3", -0.2)):
        for host, h in (("a", 0.0), ("b", 0.1)):
            if cond == "c3" and host == "b":
                continue  # an empty cell: the design is unbalanced
            for seed in range(rng.randint(1, 4)):
                rows.append(
                    {
                        "budget": rng.choice(["2m", "5m"]),
                        "condition": cond,
                        "host": host,
                        "seed": seed,
                        "value": c + h + rng.gauss(0, 0.05),
                    }
                )
    vd = variance_decomposition(rows)
    df = pd.DataFrame(
        {
            "y": [r["value"] for r in rows],
            **{k: [str(r[k]) for r in rows] for k in ("budget", "condition", "host", "seed")},
        }
    )
    table = anova_lm(smf.ols("y ~ C(budget) + C(condition) + C(host) + C(seed)", df).fit(), typ=1)
    for name in ("budget", "condition", "host", "seed"):
        assert vd.ss[name] == pytest.approx(table.loc[f"C({name})", "sum_sq"], rel=1e-9, abs=1e-12)
    assert vd.ss["residual"] == pytest.approx(table.loc["Residual", "sum_sq"], rel=1e-9)


def test_clean():
    assert clean(float("nan")) is None and clean(float("inf")) is None and clean(1) == 1.0


# --------------------------------------------------------------------------- issue #12 checks

# Student t quantiles t(0.975, df), from a printed table (Montgomery, Appendix Table II).
T975 = {1: 12.706, 2: 4.303, 5: 2.571, 10: 2.228, 14: 2.145}


def _noisy_rows(reps: int, noise: list[float]) -> list[dict]:
    rows = []
    i = 0
    for _ in range(reps):
        for r in full_factorial(2):
            rows.append(dict(r, value=1.0 + 0.3 * r["A"] - 0.1 * r["B"] + noise[i]))
            i += 1
    return rows


NOISE16 = [0.05, -0.02, 0.01, 0.04, -0.06, 0.03, 0.00, -0.01,
           0.02, -0.04, 0.05, -0.03, 0.01, 0.02, -0.05, 0.03]  # fmt: skip


@pytest.mark.parametrize("reps, df", [(3, 10), (4, 14)])
def test_effect_intervals_use_t_with_the_residual_df(reps, df):
    rows = _noisy_rows(reps, NOISE16)
    res = estimate_effects(rows, ["A", "B"], terms=["A"])
    a = res.term("A")
    assert res.df_resid == df and res.t_df == df
    half = (a.ci_high - a.ci_low) / 2
    assert half / a.se == pytest.approx(T975[df], abs=5e-4)  # not 1.96
    assert (a.ci_low + a.ci_high) / 2 == pytest.approx(a.effect)


def test_ols_se_and_p_against_the_normal_equations():
    """Unbalanced, noisy, with a host block: se and p from (X'X)^-1 computed here."""
    from scipy import stats as sps

    rows = []
    noise = iter([0.013, -0.021, 0.034, 0.002, -0.017, 0.026, -0.008, 0.011, -0.03, 0.019,
                  0.005, -0.012, 0.027, -0.004])  # fmt: skip
    for host, offset, points in (
        ("h1", 0.0, full_factorial(3)),
        ("h2", 0.07, full_factorial(3)[:6]),
    ):
        for r in points:
            rows.append(
                dict(
                    r,
                    host=host,
                    value=2
                    + 0.2 * r["A"]
                    - 0.05 * r["B"]
                    + 0.03 * r["A"] * r["C"]
                    + offset
                    + next(noise),
                )
            )
    res = estimate_effects(rows, list("ABC"), terms=["A", "B", "C", "AC"], block="host")
    X = np.array(
        [[1.0, r["host"] == "h2", r["A"], r["B"], r["C"], r["A"] * r["C"]] for r in rows],
        dtype=float,
    )
    y = np.array([r["value"] for r in rows])
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ X.T @ y
    resid = y - X @ beta
    df = len(y) - X.shape[1]
    sigma2 = resid @ resid / df
    se = np.sqrt(np.diag(xtx_inv) * sigma2)
    assert res.df_resid == df == 8 and res.block == "host"
    for j, term in enumerate(["A", "B", "C", "AC"], start=2):
        e = res.term(term)
        assert e.effect == pytest.approx(2 * beta[j], rel=1e-10)
        assert e.se == pytest.approx(2 * se[j], rel=1e-10)
        t = beta[j] / se[j]
        assert e.p == pytest.approx(2 * sps.t.sf(abs(t), df), rel=1e-8)


def _bh_by_hand(ps: list[float]) -> list[float]:
    """q_(i) = min over j >= i of m p_(j) / j (Benjamini & Hochberg 1995), capped at 1."""
    m = len(ps)
    order = sorted(range(m), key=ps.__getitem__)
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, ps[i] * m / rank)
        q[i] = running
    return q


def test_q_families_are_separate_bh_runs():
    res = estimate_effects(filtration_rows(), list("ABCD"), terms="all")
    main = [e for e in res.effects if len(e.term) == 1]
    inter = [e for e in res.effects if len(e.term) > 1]
    assert [e.q for e in main] == pytest.approx(_bh_by_hand([e.p for e in main]), rel=1e-12)
    assert [e.q for e in inter] == pytest.approx(_bh_by_hand([e.p for e in inter]), rel=1e-12)
    assert _bh_by_hand([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04])  # the helper


def test_post_selection_effects_have_no_q():
    res = estimate_effects(_noisy_rows(4, NOISE16), ["A", "B"], post_selection=True)
    assert res.post_selection and all(e.q is None for e in res.effects)
    assert res.term("A").p is not None and "post-selection" in res.notes[0]
    assert res.to_dict()["post_selection"] is True


def test_alias_chains_of_the_2_4_1_with_d_abc():
    # Montgomery Example 8.1: D = ABC, I = ABCD
    want = {
        "A": ["BCD"],
        "B": ["ACD"],
        "C": ["ABD"],
        "D": ["ABC"],
        "AB": ["CD"],
        "AC": ["BD"],
        "AD": ["BC"],
    }
    d = fractional(4, 1)
    rows = [
        dict(r, value=v) for r, v in zip(d.runs, [45, 100, 45, 65, 75, 60, 80, 96], strict=True)
    ]
    res = estimate_effects(rows, list("ABCD"), terms="all")
    assert {e.term: e.aliases for e in res.effects} == want
    assert res.dropped_reasons["CD"] == "aliased with AB"
    assert res.dropped_reasons["ABCD"].startswith("aliased with the intercept")
    # a negative generator flips the signs: D = -ABC gives A = -BCD
    neg = fractional(4, 1, ["D=-ABC"])
    rows = [dict(r, value=float(i)) for i, r in enumerate(neg.runs)]
    res = estimate_effects(rows, list("ABCD"), terms="main")
    assert res.term("A").aliases == ["-BCD"] and res.term("D").aliases == ["-ABC"]


def test_constant_factor_is_dropped_with_its_reason():
    rows = [dict(r, C=-1, value=1 + r["A"] + 0.1 * i) for i, r in enumerate(full_factorial(2))]
    res = estimate_effects(rows, ["A", "B", "C"], terms="main")
    assert res.dropped == ["C"] and res.dropped_reasons["C"] == "factor C is constant in these rows"
    with pytest.raises(LedgerError, match="'C' is not estimable"):
        estimate_effects(rows, ["A", "B", "C"], terms=["A", "C"])
    kept = estimate_effects(rows, ["A", "B", "C"], terms=["A", "C"], drop_inestimable=True)
    assert [e.term for e in kept.effects] == ["A"] and kept.dropped == ["C"]


def test_planned_ols_without_residual_df_falls_back_to_lenth():
    res = estimate_effects(filtration_rows(), list("ABCD"), terms="all", method="ols")
    assert res.method == "lenth" and res.pse == pytest.approx(2.625)
    assert "Lenth" in res.notes[0]
    a = res.term("A")
    # Lenth's interval: effect +- ME, ME = t(0.975, 15/3 = 5) x PSE, t from the table
    assert a.ci_high - a.effect == pytest.approx(T975[5] * 2.625, abs=2e-3)
    with pytest.raises(LedgerError, match="method 'anova'"):
        estimate_effects(filtration_rows(), list("ABCD"), method="anova")


def test_spearman_by_hand():
    # d = (1, -1, 1, -1, 0): rho = 1 - 6 * 4 / (5 * 24) = 0.8
    rho, n = spearman(
        {c: i for i, c in enumerate("vwxyz", 1)}, {"v": 2, "w": 1, "x": 4, "y": 3, "z": 5}
    )
    assert (rho, n) == (pytest.approx(0.8), 5)
    # ties take average ranks: x = 1, 2, 3, 4; y = 1, 2.5, 2.5, 4 -> Pearson of the ranks
    rho, _ = spearman({"a": 1, "b": 2, "c": 3, "d": 4}, {"a": 1, "b": 2, "c": 2, "d": 3})
    xs, ys = np.array([1, 2, 3, 4.0]), np.array([1, 2.5, 2.5, 4])
    want = ((xs - xs.mean()) @ (ys - ys.mean())) / math.sqrt(
        ((xs - xs.mean()) ** 2).sum() * ((ys - ys.mean()) ** 2).sum()
    )
    assert rho == pytest.approx(want) and rho == pytest.approx(0.9486833, rel=1e-6)


def test_summaries_name_failed_runs_and_host_means():
    rows = [
        obs("c1", 0, "a", 1.0),
        obs("c1", 0, "b", 1.4),
        obs("c1", 1, "b", None, "diverged"),
        obs("c2", 0, "a", None, "ok"),
    ]
    s = {x.condition: x for x in summarize(rows)}
    assert s["c1"].failed == [{"seed": 1, "host": "b", "status": "diverged"}]
    assert (s["c1"].n_runs, s["c1"].n_failed, s["c1"].by_host) == (3, 1, {"a": 1.0, "b": 1.4})
    assert s["c2"].failed == [{"seed": 0, "host": "a", "status": "ok without a finite metric"}]


def test_failure_rates_by_level_flag_the_factor_that_fails():
    from stages.stats import failures_by_level

    coded = {f"p{i}": r for i, r in enumerate(full_factorial(3))}
    rows = []
    for cid, r in coded.items():
        for seed in (0, 1):
            failed = r["C"] == 1 and (seed == 0 or r["A"] == 1)  # 6 of 8 at C = +1, 0 of 8 at -1
            rows.append(
                obs(cid, seed, "h", None if failed else 1.0, "diverged" if failed else "ok")
            )
    factors = {
        f: FactorSpec(key=k, levels=[1, 2])
        for f, k in zip("ABC", ("bs", "depth", "lr"), strict=True)
    }
    out = failures_by_level(rows, coded, factors)
    c = out.factors["C"]
    assert (c.high.failed, c.high.runs, c.low.failed) == (6, 8, 0)
    # Fisher's exact p by hand: 16 runs, 6 failed, 8 at +1. P(k failed at +1) =
    # C(6,k) C(10,8-k) / C(16,8); two-sided sums the tables no likelier than the observed k = 6,
    # which are k = 6 and k = 0, each 45 / 12870
    assert c.p == pytest.approx(2 * math.comb(10, 2) / math.comb(16, 8), rel=1e-9)
    assert out.flagged == ["C"] and c.unequal
    assert not out.factors["B"].unequal  # 3 of 8 at each level of B
    assert (out.n_runs, out.n_failed) == (16, 6)


def test_t_quantiles_and_tails_from_a_table_and_equal_to_scipy_stats():
    """`t_ppf`/`t_sf` (scipy.special, cheap to import) are scipy.stats.t's numbers exactly,
    and a printed t table's: t(0.975; 1) = 12.706, t(0.975; 10) = 2.228, t(0.95; 30) = 1.697."""
    from scipy import stats as sps

    assert round(t_ppf(0.975, 1), 3) == 12.706
    assert round(t_ppf(0.975, 10), 3) == 2.228
    assert round(t_ppf(0.95, 30), 3) == 1.697
    assert round(2 * t_sf(2.228, 10), 3) == 0.05
    for df in (0.5, 1, 2, 3, 14 / 3, 5, 10, 29.5, 100, 1e4):
        for q in (0.5, 0.6, 0.9, 0.95, 0.975, 0.99, (1 + 0.95 ** (1 / 15)) / 2):
            assert t_ppf(q, df) == float(sps.t.ppf(q, df)), (q, df)
        for x in (0.0, 0.3, 1.0, 2.5, 7.0, 40.0):
            assert t_sf(x, df) == float(sps.t.sf(x, df)), (x, df)


def test_rows_must_carry_the_columns_they_are_analysed_by():
    """A row without the response or a component is a caller's mistake, named, not a level."""
    rows = [{"condition": "c1", "host": "a", "seed": 0, "value": 1.0}]
    with pytest.raises(LedgerError, match=r"variance decomposition: row 0 has no 'budget'"):
        variance_decomposition(rows)
    with pytest.raises(LedgerError, match=r"effects: row 1 has no response column 'y'"):
        estimate_effects([{"A": 1, "y": 1.0}, {"A": -1}], ["A"], response="y")
