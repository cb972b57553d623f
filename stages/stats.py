"""Per-condition summaries, factorial effects, FDR control, rank agreement, variance shares.

Why: `decide` and `audit` must reach the same numbers from the same records, so everything
here is a pure function of plain dicts, deterministic, and returns JSON-friendly results
(NaN and infinities become None: they may never enter canonical JSON).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy import stats as sps

from ledger.errors import LedgerError


def clean(x: object) -> float | None:
    """A plain float, or None for None/NaN/inf (canonical JSON cannot hold them)."""
    if x is None:
        return None
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def cell_key(seed: object, host: object) -> str:
    """The name of a (seed, host) cell, as used in `ranks_per_cell`."""
    return f"{host}/{seed}"


def _ok_value(obs: dict) -> float | None:
    if obs.get("status") != "ok":
        return None
    return clean(obs.get("value"))


# --------------------------------------------------------------------------- summaries


@dataclass
class ConditionSummary:
    """One condition at one stage: how good (mean, CI, rank) and how consistent (wins)."""

    condition: str
    n: int
    mean: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    rank: int | None
    n_cells_expected: int
    complete: bool
    wins: int
    ranks_per_cell: dict[str, int] = field(default_factory=dict)
    n_cells: int = 0  # distinct cells with at least one ok value

    def to_dict(self) -> dict:
        return {
            "condition": self.condition,
            "n": self.n,
            "n_cells": self.n_cells,
            "mean": clean(self.mean),
            "sd": clean(self.sd),
            "ci_low": clean(self.ci_low),
            "ci_high": clean(self.ci_high),
            "rank": self.rank,
            "n_cells_expected": self.n_cells_expected,
            "complete": self.complete,
            "wins": self.wins,
            "ranks_per_cell": dict(sorted(self.ranks_per_cell.items())),
        }


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float | None, float | None]:
    """Student-t interval for the mean (None when n < 2: no spread to estimate)."""
    n = len(values)
    if n < 2:
        return None, None
    m = statistics.fmean(values)
    half = sps.t.ppf((1 + level) / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return m - half, m + half


def summarize(
    observations: Iterable[dict], cells: Iterable[tuple[object, object]] | None = None
) -> list[ConditionSummary]:
    """Summarize each condition; only status "ok" with a finite value counts.

    `cells` is the planned list of (seed, host) pairs; by default, every cell seen in the
    observations. Ranks: 1 = lowest mean (the metric is minimized), ties by condition id;
    conditions without any ok value get rank None. Within a cell, each condition's value is
    the mean of its ok values there; cell ranks break ties by condition id, and a win is a
    cell where the condition ranks first.
    """
    obs = list(observations)
    for i, o in enumerate(obs):
        for key in ("condition", "seed", "host", "status"):
            if key not in o:
                raise LedgerError(f"observation {i}: missing key {key!r}")
    if cells is None:
        expected = sorted(
            {(o["seed"], o["host"]) for o in obs}, key=lambda c: (str(c[1]), str(c[0]))
        )
    else:
        expected = list(dict.fromkeys((s, h) for s, h in cells))
    expected_keys = {cell_key(s, h) for s, h in expected}

    values: dict[str, list[float]] = {}
    per_cell: dict[str, dict[str, list[float]]] = {}
    for o in obs:
        cond = str(o["condition"])
        values.setdefault(cond, [])
        v = _ok_value(o)
        if v is None:
            continue
        values[cond].append(v)
        per_cell.setdefault(cell_key(o["seed"], o["host"]), {}).setdefault(cond, []).append(v)

    cell_ranks: dict[str, dict[str, int]] = {c: {} for c in values}
    for ck, conds in per_cell.items():
        order = sorted(conds, key=lambda c: (statistics.fmean(conds[c]), c))
        for r, c in enumerate(order, start=1):
            cell_ranks[c][ck] = r

    means = {c: statistics.fmean(v) for c, v in values.items() if v}
    order = sorted(means, key=lambda c: (means[c], c))
    rank = {c: i for i, c in enumerate(order, start=1)}
    out = []
    for c in sorted(values):
        v = values[c]
        lo, hi = t_interval(v)
        in_plan = {k: r for k, r in cell_ranks[c].items() if k in expected_keys}
        out.append(
            ConditionSummary(
                condition=c,
                n=len(v),
                mean=means.get(c),
                sd=statistics.stdev(v) if len(v) >= 2 else None,
                ci_low=lo,
                ci_high=hi,
                rank=rank.get(c),
                n_cells_expected=len(expected),
                complete=bool(expected) and len(in_plan) == len(expected),
                wins=sum(1 for r in in_plan.values() if r == 1),
                ranks_per_cell=dict(sorted(cell_ranks[c].items())),
                n_cells=len(cell_ranks[c]),
            )
        )
    out.sort(key=lambda s: (s.rank is None, s.rank or 0, s.condition))
    return out


# --------------------------------------------------------------------------- BH, Spearman


def bh(pvalues: Sequence[float], alpha: float) -> tuple[list[bool], list[float]]:
    """Benjamini-Hochberg step-up: which hypotheses to reject at FDR `alpha`, and q-values."""
    from statsmodels.stats.multitest import multipletests

    if not 0 < alpha <= 1:
        raise LedgerError(f"fdr level {alpha!r} must be in (0, 1]")
    ps = [float(p) for p in pvalues]
    if not ps:
        return [], []
    if any(not (0 <= p <= 1) for p in ps):
        raise LedgerError(f"p-values must lie in [0, 1], got {ps}")
    reject, q, _, _ = multipletests(ps, alpha=alpha, method="fdr_bh")
    return [bool(r) for r in reject], [float(x) for x in q]


def spearman(ranks_a: dict[str, float], ranks_b: dict[str, float]) -> tuple[float | None, int]:
    """Rank agreement between two stages over the conditions both ranked (None if n < 3)."""
    common = sorted(set(ranks_a) & set(ranks_b))
    pairs = [(clean(ranks_a[c]), clean(ranks_b[c])) for c in common]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    n = len(pairs)
    if n < 3:
        return None, n
    xs, ys = zip(*pairs, strict=True)
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return None, n
    rho = sps.spearmanr(xs, ys).statistic
    return clean(rho), n


# --------------------------------------------------------------------------- effects


@dataclass
class EffectRow:
    """One model term: effect = 2 * coef = mean(+) - mean(-) for an orthogonal design."""

    term: str
    effect: float | None
    coef: float | None
    se: float | None
    t: float | None
    p: float | None
    q: float | None = None

    def to_dict(self) -> dict:
        return {
            "term": self.term,
            "effect": clean(self.effect),
            "coef": clean(self.coef),
            "se": clean(self.se),
            "t": clean(self.t),
            "p": clean(self.p),
            "q": clean(self.q),
        }


@dataclass
class EffectsResult:
    """Estimated effects. method "ols" (residual df > 0) or "lenth" (saturated)."""

    effects: list[EffectRow]
    method: str
    df_resid: float
    n: int
    pse: float | None = None
    me: float | None = None
    sme: float | None = None
    block: str | None = None
    dropped: list[str] = field(default_factory=list)  # terms aliased with earlier ones

    def get(self, term: str) -> EffectRow | None:
        return next((e for e in self.effects if e.term == term), None)

    def to_dict(self) -> dict:
        return {
            "effects": [e.to_dict() for e in self.effects],
            "method": self.method,
            "df_resid": clean(self.df_resid),
            "n": self.n,
            "pse": clean(self.pse),
            "me": clean(self.me),
            "sme": clean(self.sme),
            "block": self.block,
            "dropped": list(self.dropped),
        }


def _joiner(factors: Sequence[str]) -> str:
    return "" if all(len(f) == 1 for f in factors) else ":"


def _term_factors(term: str, factors: Sequence[str]) -> tuple[str, ...]:
    """Split a term name into its factors ("AB" -> A, B; "x:y" -> x, y)."""
    if term in factors:
        return (term,)
    parts = term.split(":") if ":" in term or _joiner(factors) else list(term)
    unknown = [p for p in parts if p not in factors]
    if unknown or len(set(parts)) != len(parts) or not parts:
        raise LedgerError(f"effects: term {term!r} is not a product of the factors {list(factors)}")
    order = {f: i for i, f in enumerate(factors)}
    return tuple(sorted(parts, key=order.__getitem__))


def _candidate_terms(terms: str | Sequence[str], factors: Sequence[str]) -> list[tuple[str, ...]]:
    if terms == "main":
        return [(f,) for f in factors]
    if terms == "all":
        return [c for r in range(1, len(factors) + 1) for c in combinations(factors, r)]
    if isinstance(terms, str):
        raise LedgerError(f"effects: terms {terms!r} must be 'main', 'all' or a list of terms")
    out = [_term_factors(str(t), factors) for t in terms]
    dup = [t for i, t in enumerate(out) if t in out[:i]]
    if dup:
        raise LedgerError(f"effects: term {_joiner(factors).join(dup[0])!r} listed twice")
    return out


def lenth(effects: Sequence[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """Lenth's (1989) pseudo standard error for unreplicated saturated designs.

    s0 = 1.5 * median|c|; PSE = 1.5 * median(|c| : |c| < 2.5 s0); d = m/3;
    ME = t_{(1+level)/2, d} * PSE; SME = t_{gamma, d} * PSE, gamma = (1 + level^(1/m)) / 2.
    Returns (pse, me, sme, d).
    """
    a = np.abs(np.asarray(effects, dtype=float))
    m = len(a)
    if m == 0:
        raise LedgerError("effects: Lenth's method needs at least one effect")
    s0 = 1.5 * float(np.median(a))
    trimmed = a[a < 2.5 * s0]
    pse = 1.5 * float(np.median(trimmed)) if len(trimmed) else 0.0
    d = m / 3
    me = float(sps.t.ppf((1 + level) / 2, d)) * pse
    gamma = (1 + level ** (1 / m)) / 2
    sme = float(sps.t.ppf(gamma, d)) * pse
    return pse, me, sme, d


def _two_sided_q(rows: list[EffectRow], main: set[str]) -> None:
    """BH q-values: main effects are one family (DESIGN §7), interactions a second one."""
    for family in (
        [r for r in rows if r.term in main],
        [r for r in rows if r.term not in main],
    ):
        usable = [r for r in family if clean(r.p) is not None]
        if usable:
            _, q = bh([float(r.p) for r in usable], 0.05)  # type: ignore[arg-type]
            for r, qv in zip(usable, q, strict=True):
                r.q = qv


def _snap(values: np.ndarray, tol: float) -> np.ndarray:
    return np.where(np.abs(values) < tol, 0.0, values)


def _t_and_p(effect: float, se: float, df: float) -> tuple[float | None, float | None]:
    """Two-sided t test; with zero error a nonzero effect gets p = 0 (t infinite -> None)."""
    if se > 0:
        t = effect / se
        return float(t), float(2 * sps.t.sf(abs(t), df))
    return None, (0.0 if effect != 0 else None)


def estimate_effects(
    rows: Iterable[dict],
    factors: Sequence[str],
    response: str = "value",
    terms: str | Sequence[str] = "main",
    block: str | None = None,
) -> EffectsResult:
    """Estimate factorial effects by OLS on -1/+1 coded factors, host-style block optional.

    Rows whose response is None or not finite (failed runs) are left out. `terms="all"` fits
    every interaction the data can separate: candidate terms are taken by order (main effects,
    then 2FIs...) and a term aliased with earlier ones (or with the block) is dropped and listed
    in `dropped`. With residual df = 0 (saturated, unreplicated) standard errors do not exist, so
    Lenth's PSE replaces them (method "lenth"; se = PSE, t = effect / PSE, p from t with m/3
    df). Round-off below 1e-10 * max|y| is snapped to 0, and with zero error a nonzero effect
    has t None (infinite) and p = 0. q: BH over the main effects as one family and
    over the interaction terms as a second family, so adding interactions never changes the
    main-effect q-values that gates use.
    """
    import statsmodels.api as sm

    factors = [str(f) for f in factors]
    if not factors:
        raise LedgerError("effects: no factor columns")
    data = []
    for i, r in enumerate(rows):
        y = clean(r.get(response))
        if y is None:
            continue
        x = {}
        for f in factors:
            if f not in r:
                raise LedgerError(f"effects: row {i} has no factor column {f!r}")
            v = r[f]
            if isinstance(v, bool) or v not in (-1, 1):
                raise LedgerError(f"effects: row {i}, column {f!r}: level {v!r} is not -1/+1")
            x[f] = int(v)
        b = None
        if block is not None:
            if block not in r:
                raise LedgerError(f"effects: row {i} has no block column {block!r}")
            b = str(r[block])
        data.append((x, y, b))
    if not data:
        raise LedgerError(f"effects: no rows with a finite {response!r}")

    y = np.array([d[1] for d in data])
    cols = [np.ones(len(data))]
    block_levels = sorted({d[2] for d in data}) if block is not None else []
    use_block = len(block_levels) > 1
    if use_block:
        for lev in block_levels[1:]:
            cols.append(np.array([1.0 if d[2] == lev else 0.0 for d in data]))
    n_fixed = len(cols)

    joiner = _joiner(factors)
    kept: list[str] = []
    dropped: list[str] = []
    explicit = terms not in ("main", "all")
    for combo in _candidate_terms(terms, factors):
        name = joiner.join(combo)
        col = np.prod([[d[0][f] for d in data] for f in combo], axis=0).astype(float)
        trial = np.column_stack([*cols, col])
        if np.linalg.matrix_rank(trial) < trial.shape[1]:
            if explicit:
                raise LedgerError(
                    f"effects: term {name!r} is aliased with other terms or the block "
                    "(not estimable from these rows)"
                )
            dropped.append(name)
            continue
        cols.append(col)
        kept.append(name)
    if not kept:
        raise LedgerError("effects: no estimable term")

    X = np.column_stack(cols)
    fit = sm.OLS(y, X).fit()
    # Round-off (~1e-16 * |y|) must not pass for signal in exact data: snap it to zero.
    tol = 1e-10 * max(float(np.max(np.abs(y))), 1e-300)
    coefs = _snap(np.asarray(fit.params)[n_fixed:], tol)
    df_resid = float(fit.df_resid)
    main = set(factors)
    result_rows: list[EffectRow] = []
    if df_resid > 0:
        bse = _snap(np.asarray(fit.bse)[n_fixed:], tol)
        for name, c, s in zip(kept, coefs, bse, strict=True):
            t, p = _t_and_p(2 * c, 2 * s, df_resid)
            result_rows.append(EffectRow(name, float(2 * c), float(c), float(2 * s), t, p))
        _two_sided_q(result_rows, main)
        return EffectsResult(
            result_rows,
            "ols",
            df_resid,
            len(data),
            block=block if use_block else None,
            dropped=dropped,
        )
    effects = 2 * coefs
    pse, me, sme, d = lenth(effects)
    for name, c, e in zip(kept, coefs, effects, strict=True):
        t, p = _t_and_p(e, pse, d)
        result_rows.append(EffectRow(name, float(e), float(c), pse if pse > 0 else None, t, p))
    _two_sided_q(result_rows, main)
    return EffectsResult(
        result_rows,
        "lenth",
        0.0,
        len(data),
        pse=pse,
        me=me,
        sme=sme,
        block=block if use_block else None,
        dropped=dropped,
    )


# --------------------------------------------------------------------------- variance


@dataclass
class VarianceDecomposition:
    """Share of the total sum of squares per component (sequential, type I)."""

    n: int
    total_ss: float | None
    ss: dict[str, float | None]
    shares: dict[str, float | None]
    components: list[str]  # the components that entered the model (>1 level)

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "total_ss": clean(self.total_ss),
            "ss": {k: clean(v) for k, v in self.ss.items()},
            "shares": {k: clean(v) for k, v in self.shares.items()},
            "components": list(self.components),
        }


def variance_decomposition(
    rows: Iterable[dict],
    components: Sequence[str] = ("budget", "condition", "host", "seed"),
    response: str = "value",
) -> VarianceDecomposition:
    """Sequential (type I) ANOVA of the response on categorical main effects, in the given order.

    Why sequential: the order budget -> condition -> host -> seed says what is attributed
    first; with unbalanced data the shares depend on it, so the order is part of the result.
    Components missing from the rows or with a single level get share 0.0 and are not fitted;
    "residual" holds the rest. Rows with a None/non-finite response are left out.
    """
    import pandas as pd
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    data = [r for r in rows if clean(r.get(response)) is not None]
    n = len(data)
    if n < 2:
        raise LedgerError(
            f"variance decomposition: needs at least 2 rows with a finite {response!r}"
        )
    df = pd.DataFrame(
        {
            "y": [float(r[response]) for r in data],
            **{c: [str(r.get(c)) for r in data] for c in components},
        }
    )
    used = [c for c in components if df[c].nunique() > 1 and any(c in r for r in data)]
    total = float(((df["y"] - df["y"].mean()) ** 2).sum())
    ss: dict[str, float | None] = {c: 0.0 for c in components}
    if used:
        formula = "y ~ " + " + ".join(f"C(Q('{c}'))" for c in used)
        table = anova_lm(smf.ols(formula, data=df).fit(), typ=1)
        for c in used:
            ss[c] = float(table.loc[f"C(Q('{c}'))", "sum_sq"])
        resid = float(table.loc["Residual", "sum_sq"]) if "Residual" in table.index else 0.0
    else:
        resid = total
    ss["residual"] = max(resid, 0.0)
    shares = {k: (v / total if total > 0 else None) for k, v in ss.items()}
    return VarianceDecomposition(n, total, ss, shares, used)
