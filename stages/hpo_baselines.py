"""Baselines at a GPU-hour cap, each named for the algorithm it runs.

* `successive-halving`: synchronous successive halving (Jamieson and Talwalkar 2016), the
  most aggressive Hyperband bracket, with as many starting configurations as the cap pays
  for (`stages.halving`).
* `hyperband`: synchronous Hyperband (Li et al. 2018): its brackets in the paper's order,
  repeated while the cap pays for the next one (a bracket that no longer fits gives way to a
  cheaper one).
* `asha`, `asha-hyperband`: Optuna's `SuccessiveHalvingPruner` and `HyperbandPruner` driven
  one trial at a time through ask-and-tell: asynchronous successive halving (Li et al. 2020)
  run sequentially. A step whose cost would pass the cap is not taken.
* `random`: candidates trained straight to the final budget in a random order while the
  cap allows.

Every method draws candidates from the same pool in a random order (the pool once, then
again as new replicates); an evaluation trains a candidate in `seeds` runs and takes their
mean (any failed run fails it, as the protocol's default `failed = exclude` does). The cost
model (restart or continue) is applied by whoever answers `evaluate`; synchronous methods
are sized by the cost they plan (the pool's mean cost per rung), sequential ones stop at the
cap; each reports what it spent.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field

from ledger.errors import ConfigError, LedgerError
from stages.halving import (
    Bracket,
    halving_bracket,
    hyperband_brackets,
    largest_bracket,
    planned_cost,
    run_bracket,
)

METHODS = ("successive-halving", "hyperband", "asha", "asha-hyperband", "random")
DEFAULT_AGAINST = ("successive-halving", "hyperband", "random")
DESCRIPTIONS = {
    "protocol": "the campaign's stages and frozen rules",
    "successive-halving": "synchronous successive halving (Jamieson & Talwalkar 2016)",
    "hyperband": "synchronous Hyperband (Li et al. 2018)",
    "asha": "asynchronous successive halving: Optuna SuccessiveHalvingPruner, sequential",
    "asha-hyperband": "asynchronous Hyperband: Optuna HyperbandPruner, sequential",
    "random": "random search, each candidate trained to the final budget",
}
LABELS = {
    "successive-halving": "successive halving",
    "hyperband": "Hyperband",
    "asha": "ASHA",
    "asha-hyperband": "ASHA-Hyperband",
    "random": "random search",
}


@dataclass(frozen=True)
class Point:
    """An evaluation's outcome: its value (None: failed) and the GPU-seconds it was charged."""

    value: float | None
    cost_gpu_s: float


# evaluate(run id, candidate index, budget seconds) -> Point; the same run id is the same
# run continued (under the continue cost model)
EvaluateFn = Callable[[Hashable, int, float], Point]
# a fresh `evaluate` with the trial's random numbers from the start: a synchronous method
# that must shrink to fit the cap replays the same trial with fewer configurations
EvaluateFactory = Callable[[], EvaluateFn]


@dataclass(frozen=True)
class Setup:
    """What every baseline is given: the budget range, eta, the cap and the planned costs."""

    n_candidates: int
    min_budget_s: float
    final_budget_s: float
    eta: int
    cap_gpu_s: float
    rung_cost: Callable[[int, float], float]  # planned charge of one evaluation at rung i

    @property
    def R(self) -> float:
        return self.final_budget_s / self.min_budget_s

    def budget(self, resource: float) -> float:
        return min(self.final_budget_s, resource * self.min_budget_s)


@dataclass
class BaselineRun:
    """One baseline walk: what it picked, what it spent, how many evaluations it made."""

    method: str
    pick: int | None
    pick_value: float | None
    spent_gpu_s: float
    evaluations: int
    brackets: list[Bracket] = field(default_factory=list)
    reached: dict[int, list[int]] = field(default_factory=dict)  # step -> candidates (asha)
    completed: list[int] = field(default_factory=list)
    refused_gpu_s: float | None = None  # the spend a refused bracket would have reached


def _cycle(order: Sequence[int]) -> Iterator[int]:
    """The order once, then again (new replicates), and so on."""
    if not order:
        raise LedgerError("a baseline needs a non-empty candidate pool")
    while True:
        yield from order


def _max_evaluations(n: int) -> int:
    return 200 * n + 1000  # a guard against zero-cost tables, far above any real walk


def run_baseline(
    method: str, setup: Setup, fresh: EvaluateFactory, order: Sequence[int], seed: int
) -> BaselineRun:
    """Run one baseline once (one trial)."""
    if method == "successive-halving":
        return successive_halving(setup, fresh, order)
    if method == "hyperband":
        return hyperband(setup, fresh(), order)
    if method in ("asha", "asha-hyperband"):
        return optuna_asha(method, setup, fresh(), order, seed)
    if method == "random":
        return random_search(setup, fresh(), order)
    raise ConfigError(f"unknown baseline {method!r} (known: {', '.join(METHODS)})")


def _run_brackets(
    method: str,
    setup: Setup,
    evaluate: EvaluateFn,
    order: Sequence[int],
    next_bracket: Callable[[BaselineRun], Bracket | None],
) -> BaselineRun:
    """Run brackets while `next_bracket` (shown the spend so far) gives one; each bracket
    draws fresh configurations from the pool's order; the pick is the best last-rung value.
    A bracket whose actual cost takes the spend past the cap ends the run and is not
    counted (brackets are planned at the pool's mean cost; the promoted few may cost more)."""
    run = BaselineRun(method, None, None, 0.0, 0)
    source = _cycle(order)
    while (bracket := next_bracket(run)) is not None:
        before = (run.pick, run.pick_value, run.spent_gpu_s, run.evaluations)
        number = len(run.brackets)
        slots = [next(source) for _ in range(bracket.n)]

        def one(slot: int, rung: int, resource: float, number=number, slots=slots) -> float | None:
            point = evaluate((number, slot), slots[slot], setup.budget(resource))
            run.spent_gpu_s += point.cost_gpu_s
            run.evaluations += 1
            return point.value

        result = run_bracket(bracket, one)
        if run.spent_gpu_s > setup.cap_gpu_s * (1 + 1e-9):
            run.refused_gpu_s = run.spent_gpu_s
            run.pick, run.pick_value, run.spent_gpu_s, run.evaluations = before
            break
        run.brackets.append(bracket)
        value, slot = result.best_value, result.best_slot
        better = run.pick_value is None or (value is not None and value < run.pick_value)
        if slot is not None and value is not None and better:
            run.pick, run.pick_value = slots[slot], value
    return run


def successive_halving(setup: Setup, fresh: EvaluateFactory, order: Sequence[int]) -> BaselineRun:
    """One synchronous successive-halving bracket, as large as the cap pays for: n is first
    planned at the pool's mean cost per rung; when the configurations it promotes cost more
    than that, the trial is replayed with n scaled down until its actual cost fits."""
    bracket = largest_bracket(setup.cap_gpu_s, setup.R, setup.eta, setup.rung_cost)
    while bracket is not None:
        chosen = bracket
        run = _run_brackets(
            "successive-halving",
            setup,
            fresh(),
            order,
            lambda run, chosen=chosen: chosen if not run.brackets else None,
        )
        if run.brackets or chosen.n == 1 or not run.refused_gpu_s:
            return run
        scaled = math.floor(chosen.n * setup.cap_gpu_s / run.refused_gpu_s)
        n = max(1, min(chosen.n - 1, scaled))
        bracket = halving_bracket(n, setup.R, setup.eta)
    return BaselineRun("successive-halving", None, None, 0.0, 0)


def hyperband(setup: Setup, evaluate: EvaluateFn, order: Sequence[int]) -> BaselineRun:
    """Hyperband's brackets (s_max first), cycled while the remaining cap pays for one; a
    bracket that does not fit gives way to the next that does."""
    plan = hyperband_brackets(setup.R, setup.eta)
    costs = [planned_cost(b, setup.rung_cost) for b in plan]
    cursor = [0]

    def next_bracket(run: BaselineRun) -> Bracket | None:
        left = setup.cap_gpu_s - run.spent_gpu_s
        for step in range(len(plan)):
            i = (cursor[0] + step) % len(plan)
            if costs[i] <= left:
                cursor[0] = i + 1
                return plan[i]
        return None

    return _run_brackets("hyperband", setup, evaluate, order, next_bracket)


def rung_steps(max_step: int, eta: int) -> list[int]:
    """Steps an ASHA curve reports at: 1, eta, eta^2, ... below `max_step`, then `max_step`."""
    if max_step < 1:
        raise ConfigError(f"max step {max_step} must be >= 1")
    if eta < 2:
        raise ConfigError(f"reduction factor (eta) {eta} must be >= 2")
    steps, s = [], 1
    while s < max_step:
        steps.append(s)
        s *= eta
    return [*steps, max_step]


def optuna_asha(
    method: str, setup: Setup, evaluate: EvaluateFn, order: Sequence[int], seed: int
) -> BaselineRun:
    """ASHA through Optuna's pruners, one trial at a time; steps of the minimum budget."""
    try:
        import optuna  # optuna: optional extra (`hpo`)
        from optuna.trial import TrialState  # optuna: optional extra (`hpo`)
    except ImportError:
        raise LedgerError(
            f"--against {method} needs Optuna: pip install 'gateledger[hpo]'"
        ) from None
    max_step = max(1, round(setup.R))
    if method == "asha":
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=1, reduction_factor=setup.eta, min_early_stopping_rate=0
        )
    else:
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_step, reduction_factor=setup.eta
        )
    steps = rung_steps(max_step, setup.eta)
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
            return _drive(study, TrialState, method, setup, evaluate, order, steps, max_step)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _drive(study, TrialState, method, setup, evaluate, order, steps, max_step) -> BaselineRun:
    """Each candidate in turn: report step by step, stop when pruned or past the cap."""
    run = BaselineRun(method, None, None, 0.0, 0)
    finals: list[tuple[int, float, int]] = []
    guard = _max_evaluations(len(order))

    def budget_of(step: int) -> float:
        return setup.final_budget_s if step >= max_step else step * setup.min_budget_s

    for number, idx in enumerate(_cycle(order)):
        if run.evaluations >= guard:
            break
        first = evaluate(number, idx, budget_of(steps[0]))
        if run.spent_gpu_s + first.cost_gpu_s > setup.cap_gpu_s:
            break
        trial = study.ask()
        run.evaluations += 1
        state, final_value = TrialState.PRUNED, None
        for step in steps:
            here = first if step == steps[0] else evaluate(number, idx, budget_of(step))
            if run.spent_gpu_s + here.cost_gpu_s > setup.cap_gpu_s:
                break  # the cap stops this candidate here
            run.spent_gpu_s += here.cost_gpu_s
            run.reached.setdefault(step, []).append(idx)
            if here.value is None:
                state = TrialState.FAIL
                break
            finals.append((-step, here.value, idx))
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
    if finals:  # the best value among the candidates that got furthest
        _, run.pick_value, run.pick = min(finals)
    return run


def random_search(setup: Setup, evaluate: EvaluateFn, order: Sequence[int]) -> BaselineRun:
    """Candidates in the given (random) order, each trained to the final budget, while the cap
    allows; one that does not fit is skipped; the lowest final value wins."""
    run = BaselineRun("random", None, None, 0.0, 0)
    finals: list[tuple[float, int]] = []
    misses, guard = 0, _max_evaluations(len(order))
    for number, idx in enumerate(_cycle(order)):
        if misses >= len(order) or run.evaluations >= guard:
            break
        here = evaluate(number, idx, setup.final_budget_s)
        if run.spent_gpu_s + here.cost_gpu_s > setup.cap_gpu_s:
            misses += 1
            continue
        misses = 0
        run.evaluations += 1
        run.spent_gpu_s += here.cost_gpu_s
        run.reached.setdefault(0, []).append(idx)
        if here.value is not None and math.isfinite(here.value):
            finals.append((here.value, idx))
            run.completed.append(idx)
    if finals:
        run.pick_value, run.pick = min(finals)
    return run
