"""Per-condition summaries, factorial effects, FDR control, rank agreement, variance shares.

Why: `decide` and `audit` must reach the same numbers from the same records, so everything
here is a pure function of plain dicts, deterministic, and returns JSON-friendly results
(NaN and infinities become None: they may never enter canonical JSON).
"""

from __future__ import annotations

import functools
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy import special

from ledger.decision_model import FactorFailures, Failures, Flag, LevelFailures
from ledger.errors import AnalysisError, LedgerError
from ledger.plan_model import FactorSpec
from stages.designs import constant_words


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
    """An observation's value if it counts (`status` is required; a failed run may carry
    no `value` at all)."""
    if obs["status"] != "ok":
        return None
    return clean(obs.get("value"))


# --------------------------------------------------------------------------- summaries


@dataclass
class ConditionSummary:
    """One condition at one stage: how good (mean, CI, rank), how consistent (wins, hosts),
    and which of its runs failed (a failure is data about the recipe, never dropped silently).
    """

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
    n_runs: int = 0  # recorded runs, failed ones included
    failed: list[dict] = field(default_factory=list)  # {"seed", "host", "status"}
    by_host: dict[str, float] = field(default_factory=dict)  # mean of ok values per host

    @property
    def n_failed(self) -> int:
        return len(self.failed)

    def to_dict(self) -> dict:
        return {
            "condition": self.condition,
            "n": self.n,
            "n_runs": self.n_runs,
            "n_failed": self.n_failed,
            "failed": [dict(f) for f in self.failed],
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
            "by_host": {h: clean(v) for h, v in sorted(self.by_host.items())},
        }


@functools.lru_cache(maxsize=4096)
def t_ppf(q: float, df: float) -> float:
    """Student-t quantile: `scipy.stats.t.ppf(q, df)` for 0 < q < 1, df > 0, the same number,
    remembered (`ledger evaluate` asks for the same few thousands of times).

    Why not `scipy.stats.t`: importing scipy.stats costs ~0.8 s of every command's start,
    and `t.ppf` is exactly `scipy.special.stdtrit(df, q) * 1 + 0` on those arguments.
    """
    return float(special.stdtrit(df, q))


def t_sf(x: float, df: float) -> float:
    """Student-t survival function: `scipy.stats.t.sf(x, df)` for df > 0, the same number
    (`scipy.special.stdtr(df, -x)`, as scipy.stats computes it)."""
    return float(special.stdtr(df, -x))


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float | None, float | None]:
    """Student-t interval for the mean (None when n < 2: no spread to estimate)."""
    n = len(values)
    if n < 2:
        return None, None
    m = statistics.fmean(values)
    half = t_ppf((1 + level) / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return m - half, m + half


def failed_run(obs: dict) -> dict:
    """How a failed run is named everywhere: its cell and what its status was."""
    status = obs["status"]
    if status == "ok":
        status = "ok without a finite metric"
    return {"seed": obs["seed"], "host": obs["host"], "status": status}


@dataclass
class _Gathered:
    """A stage's observations sorted into what the summaries need."""

    values: dict[str, list[float]] = field(default_factory=dict)
    runs: Counter[str] = field(default_factory=Counter)
    failed: dict[str, list[dict]] = field(default_factory=dict)
    per_cell: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    per_host: dict[str, dict[str, list[float]]] = field(default_factory=dict)


def _gather(obs: list[dict]) -> _Gathered:
    """Every condition seen gets an entry in `values`, `failed` and `per_host` (maybe empty)."""
    g = _Gathered()
    for o in obs:
        cond = str(o["condition"])
        g.values.setdefault(cond, [])
        g.failed.setdefault(cond, [])
        g.per_host.setdefault(cond, {})
        g.runs[cond] += 1
        v = _ok_value(o)
        if v is None:
            g.failed.setdefault(cond, []).append(failed_run(o))
            continue
        g.values[cond].append(v)
        g.per_cell.setdefault(cell_key(o["seed"], o["host"]), {}).setdefault(cond, []).append(v)
        g.per_host.setdefault(cond, {}).setdefault(str(o["host"]), []).append(v)
    return g


def _cell_ranks(g: _Gathered) -> dict[str, dict[str, int]]:
    """Condition -> cell -> rank of its mean in that cell (ties by condition id)."""
    ranks: dict[str, dict[str, int]] = {c: {} for c in g.values}
    for ck, conds in g.per_cell.items():
        order = sorted(conds, key=lambda c: (statistics.fmean(conds[c]), c))
        for r, c in enumerate(order, start=1):
            ranks[c][ck] = r
    return ranks


def summarize(
    observations: Iterable[dict], cells: Iterable[tuple[object, object]] | None = None
) -> list[ConditionSummary]:
    """Summarize each condition; only status "ok" with a finite value counts as a value.

    `cells` is the planned list of (seed, host) pairs; by default, every cell seen in the
    observations. Ranks: 1 = lowest mean (the metric is minimized), ties by condition id;
    conditions without any ok value get rank None. Within a cell, each condition's value is
    the mean of its ok values there; cell ranks break ties by condition id, and a win is a
    cell where the condition ranks first. Every other run is listed in `failed`.
    """
    obs = list(observations)
    for i, o in enumerate(obs):
        for key in ("condition", "seed", "host", "status"):
            if key not in o:
                raise AnalysisError(f"observation {i}: missing key {key!r}")
    if cells is None:
        expected = sorted(
            {(o["seed"], o["host"]) for o in obs}, key=lambda c: (str(c[1]), str(c[0]))
        )
    else:
        expected = list(dict.fromkeys((s, h) for s, h in cells))
    expected_keys = {cell_key(s, h) for s, h in expected}
    g = _gather(obs)
    cell_ranks = _cell_ranks(g)
    means = {c: statistics.fmean(v) for c, v in g.values.items() if v}
    rank: dict[str, int | None] = dict.fromkeys(g.values)  # None: no ok value to rank by
    rank.update((c, i) for i, c in enumerate(sorted(means, key=lambda c: (means[c], c)), start=1))
    out = []
    for c in sorted(g.values):
        v = g.values[c]
        lo, hi = t_interval(v)
        in_plan = {k: r for k, r in cell_ranks[c].items() if k in expected_keys}
        out.append(
            ConditionSummary(
                condition=c,
                n=len(v),
                mean=means[c] if v else None,
                sd=statistics.stdev(v) if len(v) >= 2 else None,
                ci_low=lo,
                ci_high=hi,
                rank=rank[c],
                n_cells_expected=len(expected),
                complete=bool(expected) and len(in_plan) == len(expected),
                wins=sum(1 for r in in_plan.values() if r == 1),
                ranks_per_cell=dict(sorted(cell_ranks[c].items())),
                n_cells=len(cell_ranks[c]),
                n_runs=g.runs[c],
                failed=sorted(g.failed[c], key=lambda f: (str(f["host"]), str(f["seed"]))),
                by_host={h: statistics.fmean(x) for h, x in g.per_host[c].items()},
            )
        )
    out.sort(key=lambda s: (s.rank is None, s.rank or 0, s.condition))
    return out


# --------------------------------------------------------------------------- failures

FAILURE_ALPHA = 0.05  # Fisher's exact test level at which unequal failure rates are flagged


def failures_by_level(
    observations: Iterable[dict],
    coded: dict[str, dict[str, int]],
    factors: dict[str, FactorSpec],
) -> Failures:
    """Failure rate at each level of each factor, over the runs of the points in `coded`.

    Why: failures are not missing at random; a factor whose high level makes runs diverge is
    itself an effect, invisible to a model fitted on the surviving runs. Only the design
    points (`coded`, by condition id, each with a level of every factor) are counted, so
    both levels of a factor are balanced over the others. A factor is flagged when Fisher's
    exact test on its 2x2 table (level x failed) gives two-sided p <= FAILURE_ALPHA.
    """
    rows = [
        (coded[o["condition"]], _ok_value(o) is None)
        for o in observations
        if o["condition"] in coded
    ]
    table: dict[str, FactorFailures] = {}
    flagged = []
    for letter in sorted(factors):
        levels: dict[str, LevelFailures] = {}
        for name, level in (("low", -1), ("high", 1)):
            at = [failed for point, failed in rows if point[letter] == level]
            levels[name] = LevelFailures(
                runs=len(at), failed=sum(at), rate=clean(sum(at) / len(at)) if at else None
            )
        low, high = levels["low"], levels["high"]
        p = None
        if low.runs and high.runs and (low.failed or high.failed):
            # scipy.stats: ~0.8 s measured; only a gate with failed runs needs Fisher's test
            from scipy.stats import fisher_exact

            p = float(
                fisher_exact(
                    [[low.failed, low.runs - low.failed], [high.failed, high.runs - high.failed]]
                ).pvalue
            )
        unequal = p is not None and p <= FAILURE_ALPHA
        table[letter] = FactorFailures(
            key=factors[letter].key, low=low, high=high, p=clean(p), unequal=unequal
        )
        if unequal:
            flagged.append(letter)
    return Failures(
        n_runs=len(rows), n_failed=sum(f for _, f in rows), factors=table, flagged=flagged
    )


def label(cid: str, names: dict[str, str]) -> str:
    """`name [8-hex id]`: readable, and still unambiguous next to the full ids (the id alone
    for a condition without a name of its own)."""
    name = names.get(cid)
    return f"{name} [{cid[:8]}]" if name and name != cid else cid


def _fmt4(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def gate_flags(
    summaries: Sequence[ConditionSummary],
    ranking: Sequence[str],
    promoted: Iterable[str],
    names: dict[str, str],
    failures: Failures | None = None,
) -> list[Flag]:
    """What a reviewer must not miss at a gate, each a `Flag` (kind, detail).

    * `winner_overlaps_runner_up`: the 95% intervals of the gate's first and second overlap
      (the order of the two is not resolved by the data);
    * `host_reverses_order`: on some host the runner-up has the lower mean, or, at the
      boundary of the ranking's promoted top block (when it holds 2 or more), the first
      condition left out beats the last one in;
    * `failures_by_level`: a factor whose levels fail unequally (see `failures_by_level`).
    """
    by_id = {s.condition: s for s in summaries}
    flags: list[Flag] = []
    ranked = [by_id[c] for c in ranking if c in by_id and by_id[c].mean is not None]
    if len(ranked) >= 2:
        first, second = ranked[0], ranked[1]
        if (
            first.ci_high is not None
            and second.ci_low is not None
            and first.ci_high >= second.ci_low
        ):
            flags.append(
                Flag(
                    kind="winner_overlaps_runner_up",
                    detail=(
                        f"winner {label(first.condition, names)} [{_fmt4(first.ci_low)}, "
                        f"{_fmt4(first.ci_high)}] overlaps runner-up {label(second.condition, names)} "
                        f"[{_fmt4(second.ci_low)}, {_fmt4(second.ci_high)}]"
                    ),
                )
            )
        pairs = [(first, second)]
        chosen = set(promoted)
        cut = next((i for i, s in enumerate(ranked) if s.condition not in chosen), None)
        if cut is not None and cut >= 2:  # the top block's boundary: last in, first left out
            pairs.append((ranked[cut - 1], ranked[cut]))
        for a, b in pairs:
            for host in sorted(set(a.by_host) & set(b.by_host)):
                if b.by_host[host] < a.by_host[host]:
                    flags.append(
                        Flag(
                            kind="host_reverses_order",
                            detail=(
                                f"on host {host}, {label(b.condition, names)} "
                                f"({_fmt4(b.by_host[host])}) beats {label(a.condition, names)} "
                                f"({_fmt4(a.by_host[host])}), against the gate's order"
                            ),
                        )
                    )
    flagged = [] if failures is None else [(x, failures.factors[x]) for x in failures.flagged]
    for letter, row in flagged:
        what = f"{letter} ({row.key})" if row.key else letter
        flags.append(
            Flag(
                kind="failures_by_level",
                detail=(
                    f"{what}: {row.high.failed} of {row.high.runs} runs failed at +1, "
                    f"{row.low.failed} of {row.low.runs} at -1 (Fisher exact p {_fmt4(row.p)})"
                ),
            )
        )
    return flags


# --------------------------------------------------------------------------- BH, Spearman


def bh(pvalues: Sequence[float], alpha: float) -> tuple[list[bool], list[float]]:
    """Benjamini-Hochberg step-up: which hypotheses to reject at FDR `alpha`, and q-values."""
    # statsmodels: ~1 s measured; only an FDR rule needs it
    from statsmodels.stats.multitest import multipletests

    if not 0 < alpha <= 1:
        raise AnalysisError(f"fdr level {alpha!r} must be in (0, 1]")
    ps = [float(p) for p in pvalues]
    if not ps:
        return [], []
    if any(not (0 <= p <= 1) for p in ps):
        raise AnalysisError(f"p-values must lie in [0, 1], got {ps}")
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
    # scipy.stats: ~0.8 s measured; only rank agreement between stages needs it
    from scipy.stats import spearmanr

    rho = spearmanr(xs, ys).statistic
    return clean(rho), n


# --------------------------------------------------------------------------- effects

METHODS = ("ols", "lenth")


@dataclass
class EffectRow:
    """One model term: effect = 2 * coef = mean(+) - mean(-) for an orthogonal design.

    `ci_low`/`ci_high`: 95% interval, effect ± t(0.975, t_df) x se (Lenth: effect ± ME).
    `aliases`: the other words of the term's alias chain in these rows ("-CDE": AB's column
    is minus CDE's), so an estimate is never read as one word's alone.
    """

    term: str
    effect: float | None
    coef: float | None
    se: float | None
    t: float | None
    p: float | None
    q: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    aliases: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "term": self.term,
            "effect": clean(self.effect),
            "coef": clean(self.coef),
            "se": clean(self.se),
            "t": clean(self.t),
            "p": clean(self.p),
            "q": clean(self.q),
            "ci_low": clean(self.ci_low),
            "ci_high": clean(self.ci_high),
            "aliases": list(self.aliases),
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
    dropped: list[str] = field(default_factory=list)  # candidate terms not estimated
    dropped_reasons: dict[str, str] = field(default_factory=dict)
    t_df: float | None = None  # df of the t reference: df_resid (OLS) or m/3 (Lenth)
    post_selection: bool = False  # not an orthogonal design: descriptive, no q-values
    n_points: int = 0  # distinct factor-level combinations in the rows
    notes: list[str] = field(default_factory=list)

    def term(self, name: str) -> EffectRow | None:
        """The row of model term `name` (None when it was not estimated)."""
        return next((e for e in self.effects if e.term == name), None)

    def to_dict(self) -> dict:
        return {
            "effects": [e.to_dict() for e in self.effects],
            "method": self.method,
            "df_resid": clean(self.df_resid),
            "t_df": clean(self.t_df),
            "n": self.n,
            "n_points": self.n_points,
            "pse": clean(self.pse),
            "me": clean(self.me),
            "sme": clean(self.sme),
            "block": self.block,
            "dropped": list(self.dropped),
            "dropped_reasons": dict(self.dropped_reasons),
            "post_selection": self.post_selection,
            "notes": list(self.notes),
        }


def t_quantile(df: float | None, level: float = 0.95) -> float | None:
    """Two-sided Student-t quantile t((1 + level)/2, df); None without positive df."""
    if df is None or not math.isfinite(df) or df <= 0:
        return None
    return t_ppf((1 + level) / 2, df)


def _joiner(factors: Sequence[str]) -> str:
    return "" if all(len(f) == 1 for f in factors) else ":"


def _term_factors(term: str, factors: Sequence[str]) -> tuple[str, ...]:
    """Split a term name into its factors ("AB" -> A, B; "x:y" -> x, y)."""
    if term in factors:
        return (term,)
    parts = term.split(":") if ":" in term or _joiner(factors) else list(term)
    unknown = [p for p in parts if p not in factors]
    if unknown or len(set(parts)) != len(parts) or not parts:
        raise AnalysisError(
            f"effects: term {term!r} is not a product of the factors {list(factors)}"
        )
    order = {f: i for i, f in enumerate(factors)}
    return tuple(sorted(parts, key=order.__getitem__))


def _candidate_terms(terms: str | Sequence[str], factors: Sequence[str]) -> list[tuple[str, ...]]:
    if terms == "main":
        return [(f,) for f in factors]
    if terms == "all":
        return [c for r in range(1, len(factors) + 1) for c in combinations(factors, r)]
    if isinstance(terms, str):
        raise AnalysisError(f"effects: terms {terms!r} must be 'main', 'all' or a list of terms")
    out = [_term_factors(str(t), factors) for t in terms]
    dup = [t for i, t in enumerate(out) if t in out[:i]]
    if dup:
        raise AnalysisError(f"effects: term {_joiner(factors).join(dup[0])!r} listed twice")
    return out


def lenth(
    effects: Sequence[float] | np.ndarray, level: float = 0.95
) -> tuple[float, float, float, float]:
    """Lenth's (1989) pseudo standard error for unreplicated saturated designs.

    s0 = 1.5 * median|c|; PSE = 1.5 * median(|c| : |c| < 2.5 s0); d = m/3;
    ME = t_{(1+level)/2, d} * PSE; SME = t_{gamma, d} * PSE, gamma = (1 + level^(1/m)) / 2.
    Returns (pse, me, sme, d).
    """
    a = np.abs(np.asarray(effects, dtype=float))
    m = len(a)
    if m == 0:
        raise AnalysisError("effects: Lenth's method needs at least one effect")
    s0 = 1.5 * float(np.median(a))
    trimmed = a[a < 2.5 * s0]
    pse = 1.5 * float(np.median(trimmed)) if len(trimmed) else 0.0
    d = m / 3
    me = float(t_ppf((1 + level) / 2, d)) * pse
    gamma = (1 + level ** (1 / m)) / 2
    sme = float(t_ppf(gamma, d)) * pse
    return pse, me, sme, d


def _bh_families(rows: list[EffectRow], main: set[str]) -> None:
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
        return float(t), float(2 * t_sf(abs(t), df))
    return None, (0.0 if effect != 0 else None)


@dataclass
class _EffectData:
    """Rows that enter an effect model: coded levels (n x k), response, block labels."""

    levels: np.ndarray
    y: np.ndarray
    blocks: list[str | None]


def _effect_data(
    rows: Iterable[dict], factors: list[str], response: str, block: str | None
) -> _EffectData:
    """Validated rows with a finite response (failed runs have none and are left out)."""
    levels, ys, blocks = [], [], []
    for i, r in enumerate(rows):
        if response not in r:
            raise AnalysisError(f"effects: row {i} has no response column {response!r}")
        y = clean(r[response])  # None for a failed run: left out
        if y is None:
            continue
        x = []
        for f in factors:
            if f not in r:
                raise AnalysisError(f"effects: row {i} has no factor column {f!r}")
            v = r[f]
            if isinstance(v, bool) or v not in (-1, 1):
                raise AnalysisError(f"effects: row {i}, column {f!r}: level {v!r} is not -1/+1")
            x.append(int(v))
        b = None
        if block is not None:
            if block not in r:
                raise AnalysisError(f"effects: row {i} has no block column {block!r}")
            b = str(r[block])
        levels.append(x)
        ys.append(y)
        blocks.append(b)
    if not ys:
        raise AnalysisError(f"effects: no rows with a finite {response!r}")
    return _EffectData(
        np.array(levels, dtype=float).reshape(len(ys), len(factors)), np.array(ys), blocks
    )


def _orthonormal_add(basis: list[np.ndarray], col: np.ndarray) -> np.ndarray:
    """Residual of `col` after projection onto the orthonormal `basis` (twice, for accuracy)."""
    r = col.astype(float).copy()
    for _ in range(2):
        for q in basis:
            r -= (q @ r) * q
    return r


@dataclass
class TermSelection:
    """The terms kept (with their columns) and those dropped, with the reason for each."""

    kept: list[str]
    columns: list[np.ndarray]
    dropped: list[str]
    reasons: dict[str, str]


def _why_dependent(
    col: np.ndarray, kept: list[str], columns: list[np.ndarray], fixed_basis: list[np.ndarray]
) -> str:
    for other, c in zip(kept, columns, strict=True):
        if np.array_equal(col, c):
            return f"aliased with {other}"
        if np.array_equal(col, -c):
            return f"aliased with -{other}"
    if np.all(col == col[0]):
        return "aliased with the intercept (a word of the defining relation)"
    if np.linalg.norm(_orthonormal_add(fixed_basis, col)) <= 1e-9 * np.linalg.norm(col):
        return "confounded with the block"
    return (
        "not estimable from these rows (a linear combination of the intercept, the block "
        "and the terms kept before it)"
    )


def select_terms(
    candidates: Sequence[tuple[str, ...]],
    levels: np.ndarray,
    factors: Sequence[str],
    fixed: Sequence[np.ndarray] = (),
    *,
    strict: bool = False,
) -> TermSelection:
    """Keep candidate terms in order while their columns are linearly independent.

    Why greedy by order: a term aliased with an earlier one (or constant, or confounded with
    the block in `fixed`) cannot be told apart from it, so the earlier, lower-order word
    represents the chain and the later one is dropped with the reason. With `strict`, a
    dependent term is an error naming it (an explicit term list asked for it).
    """
    n = levels.shape[0]
    joiner = _joiner(factors)
    index = {f: j for j, f in enumerate(factors)}
    constant = {f for f in factors if len(set(levels[:, index[f]])) < 2}
    basis: list[np.ndarray] = []
    for col in [np.ones(n), *fixed]:
        r = _orthonormal_add(basis, col)
        if np.linalg.norm(r) > 1e-9 * max(float(np.linalg.norm(col)), 1e-300):
            basis.append(r / np.linalg.norm(r))
    fixed_basis = list(basis)
    out = TermSelection([], [], [], {})
    for combo in candidates:
        name = joiner.join(combo)
        const = [f for f in combo if f in constant]
        col = np.prod(levels[:, [index[f] for f in combo]], axis=1)
        reason = None
        if const:
            reason = f"factor {const[0]} is constant in these rows"
        else:
            r = _orthonormal_add(basis, col)
            if np.linalg.norm(r) <= 1e-9 * np.linalg.norm(col):
                reason = _why_dependent(col, out.kept, out.columns, fixed_basis)
            else:
                basis.append(r / np.linalg.norm(r))
        if reason is None:
            out.kept.append(name)
            out.columns.append(col)
            continue
        if strict:
            raise AnalysisError(
                f"effects: term {name!r} is not estimable from these rows: {reason}"
            )
        out.dropped.append(name)
        out.reasons[name] = reason
    return out


MAX_ALIASES = 1024  # defining words beyond which alias chains are not listed (say so)


def alias_chains(
    levels: np.ndarray, factors: Sequence[str], terms: Sequence[str]
) -> tuple[dict[str, list[str]], str | None]:
    """For each term, the other signed words equal to it (±) on the distinct rows, and a note
    when there are too many to list (a few rows of many factors).

    Words use the factors that vary in the rows (a constant factor's words are not listed;
    the term list says the factor was dropped). Sorted by length, then factor order.
    """
    joiner = _joiner(factors)
    varying = [j for j in range(len(factors)) if len(set(levels[:, j])) > 1]
    distinct = np.unique(levels[:, varying], axis=0) if varying else levels[:1, :0]
    try:
        words = constant_words(distinct, max_words=MAX_ALIASES)[1:]
    except LedgerError as exc:
        return {t: [] for t in terms}, f"alias chains not listed: {exc}"
    pos = {factors[j]: i for i, j in enumerate(varying)}
    out: dict[str, list[str]] = {}
    for term in terms:
        parts = _term_factors(term, factors)
        if any(p not in pos for p in parts):
            out[term] = []
            continue
        mask = sum(1 << pos[p] for p in parts)
        chain = []
        for word, sign in words:
            other = mask ^ word
            bits = [i for i in range(len(varying)) if other >> i & 1]
            name = joiner.join(factors[varying[i]] for i in bits)
            chain.append((len(bits), bits, ("-" if sign < 0 else "") + name))
        out[term] = [w for _, _, w in sorted(chain)]
    return out, None


def _block_columns(blocks: list[str | None], block: str | None) -> tuple[list[np.ndarray], bool]:
    levels = sorted({b for b in blocks if b is not None}) if block is not None else []
    if len(levels) < 2:
        return [], False
    return [np.array([1.0 if b == lev else 0.0 for b in blocks]) for lev in levels[1:]], True


def _interval(effect: float, half: float | None) -> tuple[float | None, float | None]:
    return (None, None) if half is None else (effect - half, effect + half)


def estimate_effects(
    rows: Iterable[dict],
    factors: Sequence[str],
    response: str = "value",
    terms: str | Sequence[str] = "main",
    block: str | None = None,
    *,
    method: str | None = None,
    post_selection: bool = False,
    drop_inestimable: bool = False,
) -> EffectsResult:
    """Estimate factorial effects by OLS on -1/+1 coded factors, host-style block optional.

    Rows whose response is None or not finite (failed runs) are left out. `terms`: "main",
    "all" (every interaction the rows can separate, lower orders first) or an explicit list,
    where a term the rows cannot separate is an error unless `drop_inestimable` (a frozen plan
    meeting failed runs). Dropped terms are listed with the reason. `method`: None chooses by
    the residual df (OLS when > 0, else Lenth); "ols" falls back to Lenth, with a note, when
    there is no residual df; "lenth" applies Lenth's PSE to the effects. Round-off below
    1e-10 * max|y| is snapped to 0; with zero error a nonzero effect has t None (infinite) and
    p = 0. q: BH over the main effects and, separately, over the interactions, unless the
    rows are `post_selection` (not an orthogonal design): then no q-values at all.
    """
    # statsmodels: ~1 s measured (its submodule; `statsmodels.api` adds ~0.3 s more)
    from statsmodels.regression.linear_model import OLS

    factors = [str(f) for f in factors]
    if not factors:
        raise AnalysisError("effects: no factor columns")
    if method is not None and method not in METHODS:
        raise AnalysisError(f"effects: method {method!r} must be one of {', '.join(METHODS)}")
    data = _effect_data(rows, factors, response, block)
    block_cols, use_block = _block_columns(data.blocks, block)
    explicit = terms not in ("main", "all")
    selection = select_terms(
        _candidate_terms(terms, factors),
        data.levels,
        factors,
        block_cols,
        strict=explicit and not drop_inestimable,
    )
    if not selection.kept:
        raise AnalysisError("effects: no estimable term")
    fixed = [np.ones(len(data.y)), *block_cols]
    fit = OLS(data.y, np.column_stack([*fixed, *selection.columns])).fit()
    # Round-off (~1e-16 * |y|) must not pass for signal in exact data: snap it to zero.
    tol = 1e-10 * max(float(np.max(np.abs(data.y))), 1e-300)
    coefs = _snap(np.asarray(fit.params)[len(fixed) :], tol)
    df_resid = float(fit.df_resid)
    result = EffectsResult(
        [],
        "ols",
        df_resid,
        len(data.y),
        block=block if use_block else None,
        dropped=selection.dropped,
        dropped_reasons=selection.reasons,
        post_selection=post_selection,
        n_points=len(np.unique(data.levels, axis=0)),
    )
    chains, chains_note = alias_chains(data.levels, factors, selection.kept)
    if chains_note:
        result.notes.append(chains_note)
    use_lenth = method == "lenth" or df_resid <= 0
    if method == "ols" and df_resid <= 0:
        result.notes.append(
            "the plan says OLS but these rows leave no residual degrees of "
            "freedom: Lenth's pseudo standard error is used instead"
        )
    if use_lenth:
        _lenth_rows(result, selection.kept, coefs)
    else:
        _ols_rows(result, selection.kept, coefs, _snap(np.asarray(fit.bse)[len(fixed) :], tol))
    for row in result.effects:
        row.aliases = chains[row.term]  # every kept term has its chain (maybe empty)
    if post_selection:
        result.notes.append(
            "post-selection: these conditions are not an orthogonal design; "
            "effects are descriptive and carry no BH q-values"
        )
    else:
        _bh_families(result.effects, set(factors))
    return result


def _ols_rows(result: EffectsResult, kept: list[str], coefs: np.ndarray, bse: np.ndarray) -> None:
    result.method, result.t_df = "ols", result.df_resid
    t_crit = t_quantile(result.df_resid)
    for name, c, s in zip(kept, coefs, bse, strict=True):
        effect, se = float(2 * c), float(2 * s)
        t, p = _t_and_p(effect, se, result.df_resid)
        lo, hi = _interval(effect, t_crit * se if t_crit is not None else None)
        result.effects.append(EffectRow(name, effect, float(c), se, t, p, ci_low=lo, ci_high=hi))


def _lenth_rows(result: EffectsResult, kept: list[str], coefs: np.ndarray) -> None:
    effects = 2 * coefs
    pse, me, sme, d = lenth(effects)
    result.method, result.t_df = "lenth", d
    result.pse, result.me, result.sme = pse, me, sme
    for name, c, e in zip(kept, coefs, effects, strict=True):
        t, p = _t_and_p(float(e), pse, d)
        lo, hi = _interval(float(e), me if pse > 0 else None)
        result.effects.append(
            EffectRow(
                name, float(e), float(c), pse if pse > 0 else None, t, p, ci_low=lo, ci_high=hi
            )
        )


def default_terms(
    points: Sequence[dict[str, int]], factors: Sequence[str], *, regular: bool
) -> tuple[list[str], list[str], dict[str, str]]:
    """The frozen plan's terms for a set of points: (terms, dropped, reasons).

    A regular fraction gets every alias class it can separate, each named by its shortest
    word (mains, then 2FIs or their chains, then higher chains): the saturated model, so an
    interaction is estimated instead of pooled into the error (resolution V: mains and
    2FIs). Dropped are the mains and 2FIs not estimated separately, with the reason. A set
    that is not a regular fraction (a promoted subset) gets the main effects it can separate.
    """
    factors = list(factors)
    levels = np.array(sorted({tuple(int(p[f]) for f in factors) for p in points}), dtype=float)
    levels = levels.reshape(-1, len(factors))
    candidates = _candidate_terms("all" if regular else "main", factors)
    selection = select_terms(candidates, levels, factors)
    shown = [t for t in selection.dropped if len(_term_factors(t, factors)) <= 2]
    return selection.kept, shown, {t: selection.reasons[t] for t in shown}


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
    Every row names each component and the response (AnalysisError naming the first that
    does not). Components with a single level get share 0.0 and are not fitted; "residual"
    holds the rest. Rows with a None/non-finite response are left out.
    """
    rows = list(rows)
    for i, r in enumerate(rows):
        lacking = [c for c in (*components, response) if c not in r]
        if lacking:
            raise AnalysisError(f"variance decomposition: row {i} has no {lacking[0]!r}")
    # Sorted, so the same runs give the same bits whatever order they finished in.
    data = sorted(
        (r for r in rows if clean(r[response]) is not None),
        key=lambda r: (*(str(r[c]) for c in components), float(r[response])),
    )
    n = len(data)
    if n < 2:
        raise AnalysisError(
            f"variance decomposition: needs at least 2 rows with a finite {response!r}"
        )
    y = np.array([float(r[response]) for r in data])
    levels = {c: [str(r[c]) for r in data] for c in components}
    used = [c for c in components if len(set(levels[c])) > 1]
    total = float(((y - y.mean()) ** 2).sum())
    sums: dict[str, float] = {c: 0.0 for c in components}
    # Type I sums of squares: each component's reduction of the residual sum of squares when
    # its dummies join the model after the ones before it. Dummies are built directly (a
    # store's runs can number 100k) and each nested fit is one least-squares solve, which
    # handles aliased dummies as statsmodels' pseudo-inverse does.
    design = np.ones((n, 1))
    rss_before = total
    for c in used:
        codes = np.unique(np.array(levels[c]), return_inverse=True)[1]
        dummies = np.zeros((n, int(codes.max())))
        rows_with = codes > 0
        dummies[np.nonzero(rows_with)[0], codes[rows_with] - 1] = 1.0
        design = np.hstack([design, dummies])
        beta = np.linalg.lstsq(design, y, rcond=None)[0]
        rss = float(((y - design @ beta) ** 2).sum())
        sums[c] = max(rss_before - rss, 0.0)
        rss_before = rss
    sums["residual"] = max(rss_before, 0.0)
    shares = {k: (v / total if total > 0 else None) for k, v in sums.items()}
    ss: dict[str, float | None] = dict(sums)
    return VarianceDecomposition(n, total, ss, shares, used)
