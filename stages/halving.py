"""Synchronous successive halving and Hyperband, as Li et al. (2018) define them.

Li, Jamieson, DeSalvo, Rostamizadeh, Talwalkar, "Hyperband: A Novel Bandit-Based Approach
to Hyperparameter Optimization", JMLR 18(185), 2018, Algorithm 1. With resources counted in
units of the minimum budget, R the maximum resource (the final budget / the minimum budget)
and eta the reduction factor:

* ``s_max = floor(log_eta R)``, ``B = (s_max + 1) R``;
* bracket ``s`` (s_max down to 0) starts ``n = ceil(B / R * eta**s / (s + 1))``
  configurations at ``r = R * eta**-s``; rung ``i`` (0..s) trains ``n_i = floor(n * eta**-i)``
  of them to ``r_i = r * eta**i`` and keeps the best ``floor(n_i / eta)`` for the next rung.

Successive halving alone (Jamieson and Talwalkar, 2016) is the most aggressive bracket,
``s = s_max``, with n chosen by the caller (here: the most the GPU-hour cap pays for), and
``n_i = max(1, floor(n * eta**-i))`` so that a small n still reaches the final rung.

Why our own code: no maintained PyPI package implements the synchronous algorithms in a form
that answers runs by table lookup. Optuna's pruners are asynchronous (ASHA); Ray Tune's
`HyperBandScheduler` and syne-tune's synchronous Hyperband schedule live trials through their
own runners; scikit-learn's halving search is tied to estimators and cross-validation and
keeps ``ceil(n / eta)``; HpBandSter has been unmaintained since 2019. The brackets are checked
against the paper's own table (tests/stages/test_halving.py).

Whole rungs are synchronous: every configuration of a rung is evaluated before any is
promoted. Failed evaluations (no value) are never promoted: a diverged run cannot be
continued, and retraining it would diverge again. Ties go to the earlier configuration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.errors import ConfigError

_EPS = 1e-9


@dataclass(frozen=True)
class Rung:
    """`n` configurations trained to `resource` (in units of the minimum budget)."""

    n: int
    resource: float


@dataclass(frozen=True)
class Bracket:
    """One successive-halving run: its index `s` and its rungs, first to last."""

    s: int
    rungs: tuple[Rung, ...]

    @property
    def n(self) -> int:
        return self.rungs[0].n


def s_max(R: float, eta: int) -> int:
    """floor(log_eta R), computed in integers so that R = eta**k gives exactly k."""
    if eta < 2:
        raise ConfigError(f"reduction factor (eta) {eta} must be >= 2")
    if R < 1 - _EPS:
        raise ConfigError(f"maximum resource R = {R:g} must be >= 1 (the minimum budget)")
    s = 0
    while eta ** (s + 1) <= R * (1 + _EPS):
        s += 1
    return s


def hyperband_brackets(R: float, eta: int) -> list[Bracket]:
    """The brackets of one Hyperband iteration, s = s_max first (Li et al. 2018, Alg. 1)."""
    top = s_max(R, eta)
    budget = (top + 1) * R
    out = []
    for s in range(top, -1, -1):
        n = math.ceil(budget / R * eta**s / (s + 1) - _EPS)
        r = R * eta**-s
        rungs = tuple(Rung(math.floor(n * eta**-i + _EPS), r * eta**i) for i in range(s + 1))
        out.append(Bracket(s, rungs))
    return out


def halving_bracket(n: int, R: float, eta: int) -> Bracket:
    """Successive halving from `n` configurations at resource R * eta**-s_max up to R."""
    if n < 1:
        raise ConfigError(f"successive halving needs at least one configuration, not {n}")
    top = s_max(R, eta)
    r = R * eta**-top
    rungs = tuple(Rung(max(1, math.floor(n * eta**-i + _EPS)), r * eta**i) for i in range(top + 1))
    return Bracket(top, rungs)


def planned_cost(bracket: Bracket, rung_cost: Callable[[int, float], float]) -> float:
    """What a bracket costs if every evaluation at rung i costs `rung_cost(i, resource)`."""
    return math.fsum(r.n * rung_cost(i, r.resource) for i, r in enumerate(bracket.rungs))


def largest_bracket(
    cap: float, R: float, eta: int, rung_cost: Callable[[int, float], float]
) -> Bracket | None:
    """The successive-halving bracket with the most configurations whose planned cost fits
    `cap` (None: not even one configuration fits). The cost grows with n, so bisect."""
    if planned_cost(halving_bracket(1, R, eta), rung_cost) > cap:
        return None
    low, high = 1, 2
    while planned_cost(halving_bracket(high, R, eta), rung_cost) <= cap:
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        if planned_cost(halving_bracket(mid, R, eta), rung_cost) <= cap:
            low = mid
        else:
            high = mid
    return halving_bracket(low, R, eta)


# evaluate(slot, rung index, resource) -> the value (None: failed); `slot` is the
# configuration's position in the bracket (the caller maps it to a candidate and replicate)
EvaluateFn = Callable[[int, int, float], float | None]


@dataclass
class BracketRun:
    """What one bracket did: how many it evaluated per rung, and the best at its last rung."""

    evaluated: list[list[int]]  # per rung: the slots evaluated there
    best_slot: int | None
    best_value: float | None


def run_bracket(bracket: Bracket, evaluate: EvaluateFn) -> BracketRun:
    """Synchronous successive halving: evaluate a whole rung, keep the best floor(n_i/eta)
    (the next rung's n), repeat; the best value at the last rung is the bracket's answer."""
    alive: Sequence[int] = range(bracket.n)
    evaluated: list[list[int]] = []
    scores: list[tuple[float, int]] = []
    for i, rung in enumerate(bracket.rungs):
        slots = list(alive)
        evaluated.append(slots)
        scores = []
        for slot in slots:
            value = evaluate(slot, i, rung.resource)
            if value is not None and math.isfinite(value):
                scores.append((value, slot))
        scores.sort()
        if i + 1 < len(bracket.rungs):
            alive = [slot for _, slot in scores[: bracket.rungs[i + 1].n]]
            if not alive:
                break
    if not scores or len(evaluated) < len(bracket.rungs):
        return BracketRun(evaluated, None, None)
    value, slot = scores[0]
    return BracketRun(evaluated, slot, value)
