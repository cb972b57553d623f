"""Adaptive baselines at a GPU-hour cap: Optuna's successive halving and Hyperband, and random
search, over a fixed candidate pool whose curves something else answers.

Why Optuna and not a copy: "the protocol beats successive halving" must be a claim about the
method everyone uses, so the pruning decisions come from `optuna.pruners.SuccessiveHalvingPruner`
and `HyperbandPruner` driven through the ask-and-tell interface (`study.ask()`,
`trial.report(value, step)`, `trial.should_prune()`, `study.tell(...)`).

The cost model is continuation: a candidate trained to step s has cost `point(...).cost`
(cumulative GPU-seconds), and moving it on to step s' costs the difference. Candidates are
tried one at a time in the order given (Optuna's asynchronous successive halving, run
sequentially); a step whose increment would pass the cap is not taken, the candidate stops
there, and the next candidate starts, until not even a first step fits. So a baseline spends
between `cap - first-step cost` and `cap`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.errors import ConfigError, LedgerError

METHODS = ("successive-halving", "hyperband", "random")


@dataclass(frozen=True)
class Point:
    """A candidate's curve at one step: its metric (None: failed) and cumulative GPU-seconds."""

    value: float | None
    cost_gpu_s: float


# point(candidate index, replicate, step) -> Point
PointFn = Callable[[int, int, int], Point]


@dataclass
class BaselineRun:
    """One baseline walk: what it picked, what it spent, how far each evaluation got."""

    method: str
    pick: int | None
    pick_value: float | None
    spent_gpu_s: float
    evaluations: int
    reached: dict[int, list[int]] = field(default_factory=dict)  # step -> candidate indices
    completed: list[int] = field(default_factory=list)  # candidates that reached the last step

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "pick": self.pick,
            "pick_value": self.pick_value,
            "spent_gpu_s": self.spent_gpu_s,
            "evaluations": self.evaluations,
            "reached": {str(k): v for k, v in sorted(self.reached.items())},
            "completed": list(self.completed),
        }


def rung_steps(max_step: int, eta: int) -> list[int]:
    """Steps a curve reports at: 1, eta, eta^2, ... below `max_step`, then `max_step`.

    Every rung of every Hyperband bracket (min_resource 1) lies on this grid.
    """
    if max_step < 1:
        raise ConfigError(f"max step {max_step} must be >= 1")
    if eta < 2:
        raise ConfigError(f"reduction factor (eta) {eta} must be >= 2")
    steps, s = [], 1
    while s < max_step:
        steps.append(s)
        s *= eta
    return [*steps, max_step]


def _cycle(order: Sequence[int]) -> Iterator[tuple[int, int]]:
    """(candidate, replicate): the order once, then again as new replicates, and so on."""
    if not order:
        raise LedgerError("a baseline needs a non-empty candidate pool")
    rep = 0
    while True:
        for idx in order:
            yield idx, rep
        rep += 1


def _pick(finals: list[tuple[int, int, float]]) -> tuple[int | None, float | None]:
    """Best (lowest) value at the furthest step any evaluation reached; ties by candidate."""
    if not finals:
        return None, None
    top = max(step for step, _, _ in finals)
    value, idx = min((v, i) for s, i, v in finals if s == top)
    return idx, value


def _max_evaluations(n: int) -> int:
    return 200 * n + 1000  # a guard against zero-cost tables, far above any real walk


def optuna_halving(
    method: str,
    n_candidates: int,
    point: PointFn,
    *,
    order: Sequence[int],
    max_step: int,
    cap_gpu_s: float,
    eta: int = 3,
    seed: int = 0,
) -> BaselineRun:
    """Successive halving (`method="successive-halving"`) or Hyperband over the candidates.

    Raises:
        LedgerError: Optuna is not installed, or the pool is empty.
    """
    try:
        import optuna  # optuna: optional extra (`hpo`)
        from optuna.trial import TrialState  # optuna: optional extra (`hpo`)
    except ImportError:
        raise LedgerError(
            f"--against {method} needs Optuna: pip install 'gateledger[hpo]'"
        ) from None
    if method == "successive-halving":
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=1, reduction_factor=eta, min_early_stopping_rate=0
        )
    elif method == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_step, reduction_factor=eta
        )
    else:
        raise ConfigError(f"unknown halving method {method!r}")
    steps = rung_steps(max_step, eta)
    labels = [str(i) for i in range(n_candidates)]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = optuna.create_study(
                direction="minimize",
                study_name=f"{method}-{seed}",
                sampler=optuna.samplers.RandomSampler(seed=seed),
                pruner=pruner,
            )
            return _drive(study, TrialState, method, labels, point, order, steps, cap_gpu_s)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _drive(study, TrialState, method, labels, point, order, steps, cap) -> BaselineRun:
    run = BaselineRun(method, None, None, 0.0, 0)
    finals: list[tuple[int, int, float]] = []
    guard = _max_evaluations(len(labels))
    for idx, rep in _cycle(order):
        first = point(idx, rep, steps[0])
        if run.spent_gpu_s + first.cost_gpu_s > cap or run.evaluations >= guard:
            break
        study.enqueue_trial({"candidate": labels[idx]})
        trial = study.ask()
        trial.suggest_categorical("candidate", labels)
        run.evaluations += 1
        paid = 0.0
        state, final_value = TrialState.PRUNED, None
        for step in steps:
            here = first if step == steps[0] else point(idx, rep, step)
            increment = max(here.cost_gpu_s - paid, 0.0)
            if run.spent_gpu_s + increment > cap:
                break  # the cap stops this candidate here; cheaper first steps may still fit
            run.spent_gpu_s += increment
            paid = max(paid, here.cost_gpu_s)
            run.reached.setdefault(step, []).append(idx)
            if here.value is None:
                state = TrialState.FAIL
                break
            finals.append((step, idx, here.value))
            trial.report(here.value, step)
            if step == steps[-1]:
                state, final_value = TrialState.COMPLETE, here.value
                run.completed.append(idx)
                break
            if trial.should_prune():
                break
        if state == TrialState.COMPLETE:
            study.tell(trial, final_value)
        else:
            study.tell(trial, state=state)
    run.pick, run.pick_value = _pick(finals)
    return run


def random_search(
    n_candidates: int,
    point: PointFn,
    *,
    order: Sequence[int],
    max_step: int,
    cap_gpu_s: float,
) -> BaselineRun:
    """Candidates in the given (random) order, each trained to the last step, while the cap
    allows; one that does not fit is skipped; the lowest final value wins."""
    run = BaselineRun("random", None, None, 0.0, 0)
    finals: list[tuple[int, int, float]] = []
    misses, guard = 0, _max_evaluations(n_candidates)
    for idx, rep in _cycle(order):
        if misses >= len(order) or run.evaluations >= guard:
            break
        here = point(idx, rep, max_step)
        if run.spent_gpu_s + here.cost_gpu_s > cap_gpu_s:
            misses += 1
            continue
        misses = 0
        run.evaluations += 1
        run.spent_gpu_s += here.cost_gpu_s
        run.reached.setdefault(max_step, []).append(idx)
        if here.value is not None and math.isfinite(here.value):
            finals.append((max_step, idx, here.value))
            run.completed.append(idx)
    run.pick, run.pick_value = _pick(finals)
    return run
