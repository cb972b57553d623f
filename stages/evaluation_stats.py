"""The intervals and the verdict of `ledger evaluate`: pure functions of per-trial outcomes.

Two sources of uncertainty, kept apart and labelled:

* Monte Carlo: a finite number of trials. Proportions get Wilson score intervals, means
  and paired differences Student-t intervals over trials.
* Data: the recorded replicates are themselves a sample. Each bootstrap world resamples
  every condition's replicates (whole runs, with replacement), recomputes the truth, and
  replays m trials with the same random numbers as the first m trials on the recorded table
  (common random numbers), so the world-minus-recorded difference d_b is mostly the data's
  doing. The data interval is value +- z * sd(d_b); the total interval adds the two
  variances. Residual Monte Carlo error in d_b makes the data interval err on the wide side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist, fmean, stdev

from stages.evaluation_model import Estimate, Interval
from stages.stats import t_quantile

_NORMAL = NormalDist()
Z95 = _NORMAL.inv_cdf(0.975)


def wilson(successes: int, n: int, level: float = 0.95) -> Interval | None:
    """Wilson score interval for a proportion (None without trials)."""
    if n <= 0:
        return None
    z = _NORMAL.inv_cdf((1 + level) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_se(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and its standard error (None for the error with fewer than two values)."""
    if not values:
        return None, None
    if len(values) < 2:
        return fmean(values), None
    return fmean(values), stdev(values) / math.sqrt(len(values))


def t_interval(values: Sequence[float]) -> Interval | None:
    mean, se = mean_se(values)
    if mean is None or se is None:
        return None
    q = t_quantile(len(values) - 1)
    return None if q is None else (mean - q * se, mean + q * se)


def _clip(interval: Interval, low: float | None, high: float | None) -> Interval:
    lo, hi = interval
    if low is not None:
        lo, hi = max(lo, low), max(hi, low)
    if high is not None:
        lo, hi = min(lo, high), min(hi, high)
    return (lo, hi)


def data_sd(deltas: Sequence[float]) -> float | None:
    """The spread the data causes: sd of the bootstrap worlds' differences (None: < 2)."""
    return stdev(deltas) if len(deltas) >= 2 else None


def proportion(
    hits: Sequence[bool], deltas: Sequence[float] | None, *, deterministic: bool
) -> Estimate:
    """A share of trials, its Wilson interval, and the data and total intervals."""
    n = len(hits)
    if n == 0:
        return Estimate(value=None)
    k = sum(1 for h in hits if h)
    p = k / n
    mc = None if deterministic else wilson(k, n)
    sd = data_sd(deltas) if deltas is not None else None
    data = total = None
    if sd is not None:
        data = _clip((p - Z95 * sd, p + Z95 * sd), 0.0, 1.0)
        mc_var = 0.0 if deterministic else p * (1 - p) / n
        half = Z95 * math.sqrt(mc_var + sd * sd)
        total = _clip((p - half, p + half), 0.0, 1.0)
    return Estimate(value=p, mc=mc, data=data, total=total)


def mean_estimate(
    values: Sequence[float],
    deltas: Sequence[float] | None,
    *,
    deterministic: bool,
    low: float | None = None,
) -> Estimate:
    """A mean over trials, its t interval, and the data and total intervals."""
    mean, se = mean_se(values)
    if mean is None:
        return Estimate(value=None)
    mc = None if deterministic else t_interval(values)
    if mc is not None:
        mc = _clip(mc, low, None)
    sd = data_sd(deltas) if deltas is not None else None
    data = total = None
    if sd is not None:
        data = _clip((mean - Z95 * sd, mean + Z95 * sd), low, None)
        mc_var = 0.0 if deterministic or se is None else se * se
        half = Z95 * math.sqrt(mc_var + sd * sd)
        total = _clip((mean - half, mean + half), low, None)
    return Estimate(value=mean, mc=mc, data=data, total=total)


def paired(diffs: Sequence[float], deltas: Sequence[float] | None) -> Estimate:
    """A paired difference over the same trials: t interval, data and total intervals.

    When every trial's difference is the same number there is no Monte Carlo error to
    speak of, and the interval is that number.
    """
    if not diffs:
        return Estimate(value=None)
    mean, se = mean_se(diffs)
    assert mean is not None
    same = all(d == diffs[0] for d in diffs)
    mc = (mean, mean) if same else t_interval(diffs)
    sd = data_sd(deltas) if deltas is not None else None
    data = total = None
    if sd is not None:
        data = (mean - Z95 * sd, mean + Z95 * sd)
        mc_var = 0.0 if same or se is None else se * se
        half = Z95 * math.sqrt(mc_var + sd * sd)
        total = (mean - half, mean + half)
    return Estimate(value=mean, mc=mc, data=data, total=total)


def deciding(est: Estimate) -> Interval | None:
    """The interval a verdict rests on: the total one when the data has one, else Monte Carlo."""
    return est.total or est.mc


def signed(x: float, digits: int = 2) -> str:
    return f"{x:+.{digits}f}"


def _ci_text(est: Estimate, digits: int = 2) -> str:
    assert est.value is not None
    ci = deciding(est)
    shown = signed(est.value, digits)
    return shown if ci is None else f"{shown} [{signed(ci[0], digits)}, {signed(ci[1], digits)}]"


def cost_phrase(ratio: float | None) -> str:
    """'at equal GPU-hours' when the baseline spent 90-105% of the protocol's, else the share."""
    if ratio is None:
        return "at an unknown share of the protocol's GPU-hours"
    if 0.9 <= ratio <= 1.05:
        return "at equal GPU-hours"
    return f"at {100 * ratio:.0f}% of the protocol's GPU-hours"


def classify(p_diff: Estimate, *, flat: bool) -> str:
    """better/worse: the deciding interval of the P(best) difference excludes zero;
    identical: every trial's difference is zero; else no detectable difference."""
    if flat or p_diff.value is None:
        return "not comparable"
    ci = deciding(p_diff)
    if ci == (0.0, 0.0) and p_diff.value == 0.0:
        return "identical"
    if ci is not None and ci[0] > 0:
        return "better"
    if ci is not None and ci[1] < 0:
        return "worse"
    return "no detectable difference"


_PHRASE = {
    "better": "finds the true best more often than",
    "worse": "finds the true best less often than",
    "identical": "finds the true best exactly as often as",
    "no detectable difference": "is not detectably better or worse than",
}


def compare_sentence(
    label: str, p_diff: Estimate, regret_diff: Estimate, ratio: float | None, *, flat: bool
) -> tuple[str, str]:
    """(verdict, sentence) for the protocol against one baseline."""
    verdict = classify(p_diff, flat=flat)
    if verdict == "not comparable":
        why = "every candidate ties at the final budget" if flat else "there were no trials"
        return verdict, f"not comparable with {label}: {why}"
    cost = cost_phrase(ratio)
    if verdict == "identical":
        return verdict, f"the protocol {_PHRASE[verdict]} {label} in every trial, {cost}"
    regret = (
        ""
        if regret_diff.value is None
        else f"; regret {_ci_text(regret_diff, 4)} (negative: the protocol's picks are better)"
    )
    if verdict == "no detectable difference" and label == "random search":
        return (
            verdict,
            f"the protocol is no better than random search {cost}: {_ci_text(p_diff)}{regret}",
        )
    return verdict, f"the protocol {_PHRASE[verdict]} {label} {cost}: {_ci_text(p_diff)}{regret}"


def headline(
    rows: Sequence[tuple[str, str, Estimate, float | None]], *, flat: bool, best: str
) -> str:
    """One sentence for the whole evaluation from (label, verdict, P(best) difference,
    GPU-hour ratio) per baseline, grouped by verdict."""
    if flat:
        return (
            f"No verdict: every candidate ties with {best} at the final budget (a flat "
            "truth), so every method's pick is the best and none can be told apart."
        )
    if not rows:
        return "No baselines were run: the figures describe the protocol alone."
    parts = []
    for verdict in ("better", "no detectable difference", "identical", "worse"):
        named = []
        for label, v, diff, ratio in rows:
            if v != verdict:
                continue
            notes = [] if verdict == "identical" else [_ci_text(diff)]
            if cost_phrase(ratio) != "at equal GPU-hours":
                notes.append(cost_phrase(ratio))
            named.append(f"{label} ({', '.join(notes)})" if notes else label)
        if not named:
            continue
        names = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
        if verdict == "no detectable difference" and all(
            label == "random search" for label, v, _, _ in rows if v == verdict
        ):
            parts.append(f"is no better than {names}")
        elif verdict == "identical":
            parts.append(f"{_PHRASE[verdict]} {names} in every trial")
        elif verdict == "no detectable difference":
            parts.append(f"{_PHRASE[verdict]} {names} at finding the true best")
        else:
            parts.append(f"{_PHRASE[verdict]} {names}")
    return (
        "The protocol "
        + "; it ".join(parts)
        + ". (Protocol minus baseline in P(pick best), 95% interval; at equal GPU-hours "
        "unless stated.)"
    )
