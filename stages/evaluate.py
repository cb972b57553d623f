"""`ledger evaluate`: what a protocol buys, before it is frozen.

Runs the campaign's whole protocol many times in memory (`stages.protocol_walk`: the plan
builder `freeze` signs the output of, the `derive_decision` that `decide` and the audit
run), each trial with fresh noise (the simulator) or freshly dealt recorded replicates (a
replay table); then the baselines (`stages.hpo_baselines`) over the same candidate pool,
each capped at the protocol's mean GPU-hours, under the same cost model. Nothing is written,
nothing is signed.

Definitions (docs/evaluate.md):

* pool: every condition the protocol could run: each designed stage's design points, the
  named conditions stages carry, and the full factorial when a rule may `reduce`;
* truth: a condition's noise-free value at the final budget (sim: the surface without host
  offset or noise; replay: the mean of its replicates there);
* `p_pick_best`: the final pick (the protocol's last rank-1 condition, a baseline's winner)
  is a true best (ties count); `p_best_in_set`: a true best is in the protocol's final
  promoted set; `p_top3`: the pick is among the three truly best;
* regret: truth of the pick minus truth of the best; GPU-hours: what the cost model charges.
"""

from __future__ import annotations

import platform
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from statistics import fmean
from typing import Any

from ledger.canonical import sha256_hex
from ledger.errors import ConfigError, NothingToDo
from stages import evaluation_stats as st
from stages.campaign import Campaign, budget_label
from stages.conditions import Condition, design_conditions, named_condition, point_condition
from stages.designs import full_factorial, point_name
from stages.evaluation_model import (
    BaselineResult,
    BracketPlan,
    Comparison,
    Evaluation,
    Gate,
    Inputs,
    ProtocolResult,
    RecordedWalk,
    Screen,
    Truth,
    TruthRow,
    Uncertainty,
    WalkSummary,
)
from stages.evaluation_sources import (
    RECORDED,
    MissingReplicate,
    ReplaySource,
    SimSource,
    Source,
    TrialDraws,
    World,
)
from stages.hpo_baselines import (
    DEFAULT_AGAINST,
    DESCRIPTIONS,
    LABELS,
    METHODS,
    BaselineRun,
    Point,
    Setup,
    run_baseline,
)
from stages.plan import carried_names
from stages.protocol_walk import GateResult, ProtocolWalker, Walk
from stages.stats import bh

_TIE = 1e-12
COST_MODELS = ("restart", "continue")


def candidate_pool(campaign: Campaign) -> list[Condition]:
    """Every condition the protocol could run (see the module docstring), in a fixed order."""
    pool: dict[str, Condition] = {}
    for stage in campaign.stages:
        if stage.design:
            for cond in design_conditions(campaign, stage):
                pool.setdefault(cond.id, cond)
    if any(s.rule.reduce for s in campaign.stages) and campaign.factors:
        for coded in full_factorial(len(campaign.factors)):
            cond = point_condition(
                campaign.base, campaign.factors, coded, point_name(coded), "reduce"
            )
            pool.setdefault(cond.id, cond)
    for stage in campaign.stages:
        for name in carried_names(campaign, stage):
            cond = named_condition(campaign, name)
            pool[cond.id] = cond  # the user's name wins, as in a stage's candidates
    return list(pool.values())


# --------------------------------------------------------------------------- truth


@dataclass
class TruthValues:
    """Each known candidate's true final value, in one world (recorded or resampled)."""

    values: dict[str, float]

    @property
    def best_value(self) -> float:
        return min(self.values.values())

    @property
    def best(self) -> set[str]:
        b = self.best_value
        return {c for c, v in self.values.items() if v <= b + _TIE}

    @property
    def top3(self) -> set[str]:
        third = sorted(self.values.values())[min(2, len(self.values) - 1)]
        return {c for c, v in self.values.items() if v <= third + _TIE}

    @property
    def flat(self) -> bool:
        return len(self.values) > 1 and len(self.best) == len(self.values)


def _truth_values(
    source: Source, infos: dict[str, Condition], budget_s: float, world: World
) -> TruthValues:
    values = {}
    for cid, info in infos.items():
        v = source.truth(info, budget_s, world)
        if v is not None:
            values[cid] = v
    return TruthValues(values)


def _truth_model(
    tv: TruthValues, names: dict[str, str], unknown: list[str], final_s: float, below: list[str]
) -> Truth:
    ranked = sorted(tv.values.items(), key=lambda cv: (cv[1], cv[0]))
    best_id = ranked[0][0]
    return Truth(
        best=names[best_id],
        best_id=best_id,
        value=ranked[0][1],
        ties=sorted(names[c] for c in tv.best if c != best_id),
        flat=tv.flat,
        final_budget_s=final_s,
        pool=len(tv.values) + len(unknown),
        unknown=sorted(names[c] for c in unknown),
        below_final_budget=sorted(names[c] for c in below),
        top=[TruthRow(name=names[c], id=c, value=v) for c, v in ranked[:5]],
    )


# --------------------------------------------------------------------------- trial outcomes


@dataclass(frozen=True)
class Outcome:
    """What one trial of one method ended with."""

    pick: str | None
    final_set: frozenset[str] | None  # methods that end with a set (the protocol)
    gpu_s: float


@dataclass
class Scores:
    """Per-trial figures of one method against one truth."""

    hit: list[bool]
    in_set: list[bool] | None
    top3: list[bool]
    regret: list[float | None]
    gpu_h: list[float]

    def means(self) -> dict[str, float | None]:
        regrets = [r for r in self.regret if r is not None]
        return {
            "hit": fmean(self.hit) if self.hit else None,
            "in_set": fmean(self.in_set) if self.in_set else None,
            "regret": fmean(regrets) if regrets else None,
            "gpu_h": fmean(self.gpu_h) if self.gpu_h else None,
        }


def _scores(outcomes: Sequence[Outcome], tv: TruthValues) -> Scores:
    best, top3, low = tv.best, tv.top3, tv.best_value
    sets = [o.final_set for o in outcomes]
    return Scores(
        hit=[o.pick in best for o in outcomes],
        in_set=None
        if any(s is None for s in sets)
        else [bool(s & best) for s in sets if s is not None],
        top3=[o.pick in top3 for o in outcomes],
        regret=[tv.values[o.pick] - low if o.pick in tv.values else None for o in outcomes],
        gpu_h=[o.gpu_s / 3600.0 for o in outcomes],
    )


# --------------------------------------------------------------------------- the methods


@dataclass
class Context:
    """Everything a trial of any method needs, fixed for the whole evaluation."""

    campaign: Campaign
    source: Source
    walker: ProtocolWalker
    seed: int
    cost_model: str
    usable: list[Condition]
    setup: Setup | None
    host: str
    gpus: int
    seeds_per_evaluation: int

    def draws(self, trial: int, world: World, mode: str = "draw") -> TrialDraws:
        return TrialDraws(
            self.source,
            trial,
            self.cost_model,
            world,
            final_budget_s=self.campaign.stages[-1].budget_s,
            mode=mode,
        )

    def protocol(self, trial: int, world: World = RECORDED) -> tuple[Walk, TrialDraws]:
        draws = self.draws(trial, world)
        return self.walker.walk(draws), draws

    def baseline(
        self, method: str, trial: int, world: World = RECORDED
    ) -> tuple[BaselineRun, TrialDraws]:
        assert self.setup is not None
        usable, k = self.usable, self.seeds_per_evaluation
        last: list[TrialDraws] = []

        def fresh() -> Any:
            """An `evaluate` over fresh draws of this trial (the same random numbers)."""
            draws = self.draws(trial, world)
            last[:] = [draws]

            def evaluate(run_id: Any, idx: int, budget_s: float) -> Point:
                values, charge, failed = [], 0.0, False
                for j in range(k):
                    got, paid = draws.run(
                        ("baseline", run_id, j), usable[idx], budget_s, self.host, self.gpus
                    )
                    charge += paid
                    if got.value is None:
                        failed = True
                    else:
                        values.append(got.value)
                return Point(None if failed else fmean(values), charge)

            return evaluate

        order = list(range(len(usable)))
        random.Random(f"{self.seed}/{method}/{trial}").shuffle(order)
        run = run_baseline(method, self.setup, fresh, order, self.seed * 100003 + trial)
        draws = last[0] if last else self.draws(trial, world)
        return run, draws


def _protocol_outcome(walk: Walk) -> Outcome:
    return Outcome(walk.pick, frozenset(walk.final_promoted), walk.gpu_s)


def _baseline_outcome(ctx: Context, run: BaselineRun) -> Outcome:
    pick = ctx.usable[run.pick].id if run.pick is not None else None
    return Outcome(pick, None, run.spent_gpu_s)


# --------------------------------------------------------------------------- progress


class _Bars:
    """One progress bar per phase (stderr), each counting what that phase really does."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def start(self, desc: str, total: int, unit: str = "trial") -> None:
        self.close()
        if self.enabled:
            from tqdm import tqdm  # tqdm: ~0.1 s measured, paid only when a bar is drawn

            self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False)

    def tick(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# --------------------------------------------------------------------------- evaluate


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("gateledger", "optuna", "numpy", "scipy", "statsmodels", "pydantic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def parse_against(text: str | Sequence[str] | None) -> list[str]:
    """`successive-halving,hyperband,random` -> a list; 'all' -> every method; '' or 'none'
    -> no baselines; None -> the default set."""
    if text is None:
        return list(DEFAULT_AGAINST)
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text)]
    items = [t for t in items if t and t != "none"]
    if items == ["all"]:
        return list(METHODS)
    for item in items:
        if item not in METHODS:
            raise ConfigError(
                f"--against: unknown method {item!r} (known: {', '.join(METHODS)}, all, none)"
            )
    return list(dict.fromkeys(items))


def _check_arguments(
    campaign: Campaign,
    trials: int,
    eta: int,
    min_budget_s: float | None,
    seeds_per_evaluation: int,
    cost_model: str,
    bootstrap: int,
    bootstrap_trials: int | None,
) -> None:
    if not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"--trials must be a positive integer, not {trials!r}")
    if not isinstance(eta, int) or eta < 2:
        raise ConfigError(f"--eta must be an integer >= 2, not {eta!r}")
    if cost_model not in COST_MODELS:
        raise ConfigError(
            f"--cost-model must be one of {', '.join(COST_MODELS)}, not {cost_model!r}"
        )
    if not isinstance(seeds_per_evaluation, int) or seeds_per_evaluation < 1:
        raise ConfigError(
            f"--baseline-seeds must be a positive integer, not {seeds_per_evaluation!r}"
        )
    if not isinstance(bootstrap, int) or bootstrap < 0 or bootstrap == 1:
        raise ConfigError(f"--bootstrap must be 0 (off) or at least 2 worlds, not {bootstrap!r}")
    if bootstrap_trials is not None and (
        not isinstance(bootstrap_trials, int) or bootstrap_trials < 1
    ):
        raise ConfigError(
            f"--bootstrap-trials must be a positive integer, not {bootstrap_trials!r}"
        )
    final = campaign.stages[-1].budget_s
    if min_budget_s is not None and not 0 < min_budget_s <= final:
        raise ConfigError(
            f"--min-budget {budget_label(min_budget_s)} must be positive and at most the final "
            f"budget ({budget_label(final)})"
        )


def evaluate(
    campaign: Campaign,
    source: Source,
    *,
    trials: int = 200,
    seed: int = 0,
    against: Sequence[str] = DEFAULT_AGAINST,
    eta: int = 3,
    min_budget_s: float | None = None,
    seeds_per_evaluation: int = 1,
    cost_model: str = "restart",
    bootstrap: int = 20,
    bootstrap_trials: int | None = None,
    progress: bool = False,
) -> Evaluation:
    """Run the protocol `trials` times in memory, then the baselines at its mean GPU-hours.

    Args:
        campaign: the parsed campaign (its stages are the protocol).
        source: `sim_source(...)` or a replay source: who answers each run.
        trials: independent repetitions (fresh noise or freshly dealt replicates each).
        seed: the evaluation seed; the same seed gives the same numbers.
        against: baselines among `stages.hpo_baselines.METHODS`.
        eta: the reduction factor of every halving baseline.
        min_budget_s: the baselines' minimum budget (default: the smallest stage budget).
        seeds_per_evaluation: runs (seeds) a baseline averages per evaluation.
        cost_model: `restart` (every stage or rung trains anew) or `continue`.
        bootstrap: bootstrap worlds for the data interval (replay tables with replicates).
        bootstrap_trials: trials per world (default: min(trials, 10)).
        progress: show progress bars (stderr).

    Raises:
        LedgerError: bad arguments, a bad `[sim]` table, a replay row that is missing, or
        Optuna missing for an ASHA baseline.
    """
    _check_arguments(
        campaign,
        trials,
        eta,
        min_budget_s,
        seeds_per_evaluation,
        cost_model,
        bootstrap,
        bootstrap_trials,
    )
    against = parse_against(list(against))
    if (
        cost_model == "continue"
        and isinstance(source, ReplaySource)
        and not source.table.cumulative
    ):
        raise ConfigError(
            f"--cost-model continue needs curves (each run's cumulative cost along its "
            f"fidelities); {source.table.source} holds runs each trained from scratch"
        )
    final = campaign.stages[-1]
    pool = candidate_pool(campaign)
    infos = {c.id: c for c in pool}
    names = {c.id: c.name for c in pool}
    truth_tv = _truth_values(source, infos, final.budget_s, RECORDED)
    unknown = [cid for cid in infos if cid not in truth_tv.values]
    if not truth_tv.values:
        raise NothingToDo(
            f"{campaign.path}: no candidate has a known value at the final budget "
            f"({final.name}); nothing to evaluate against"
        )
    below = [
        cid
        for cid in truth_tv.values
        if source.fidelity(infos[cid], final.budget_s) < final.budget_s * (1 - 1e-12)
    ]
    walker = ProtocolWalker(campaign, resolve_configs=isinstance(source, SimSource))
    min_s = min_budget_s or min(s.budget_s for s in campaign.stages)
    usable = [info for info in infos.values() if source.can_answer(info, min_s)]
    ctx = Context(
        campaign,
        source,
        walker,
        seed,
        cost_model,
        usable,
        None,
        final.cells[0][1],
        final.gpus,
        seeds_per_evaluation,
    )
    bars = _Bars(progress)

    # the protocol: a noise-free reference walk, then the trials
    reference = walker.walk(ctx.draws(-1, RECORDED, mode="mean"))
    bars.start("protocol", trials)
    walks, proto_draws = [], []
    for t in range(trials):
        walk, draws = ctx.protocol(t)
        walks.append(walk)
        proto_draws.append(draws)
        bars.tick()
    for w in [reference, *walks]:
        names.update({k: v for k, v in w.names.items() if k not in names})
    outcomes: dict[str, list[Outcome]] = {"protocol": [_protocol_outcome(w) for w in walks]}
    draw_log: dict[str, list[TrialDraws]] = {"protocol": proto_draws}
    runs: dict[str, list[BaselineRun]] = {}
    cap_gpu_s = fmean(o.gpu_s for o in outcomes["protocol"])

    if against:
        if not usable:
            raise NothingToDo(
                f"baselines: no candidate can be answered at the minimum budget {budget_label(min_s)}"
            )
        ctx.setup = _setup(ctx, min_s, final.budget_s, eta, cap_gpu_s)
    for method in against:
        bars.start(method, trials)
        runs[method], draw_log[method] = [], []
        for t in range(trials):
            run, draws = ctx.baseline(method, t)
            runs[method].append(run)
            draw_log[method].append(draws)
            bars.tick()
        outcomes[method] = [_baseline_outcome(ctx, r) for r in runs[method]]

    uncertainty, deltas = _bootstrap(
        ctx,
        infos,
        against,
        outcomes,
        truth_tv,
        final.budget_s,
        bootstrap,
        bootstrap_trials,
        trials,
        bars,
    )
    bars.close()
    scores = {m: _scores(o, truth_tv) for m, o in outcomes.items()}
    deterministic = {
        m: sum(d.choices for d in draw_log[m]) == 0 and len(set(outcomes[m])) == 1 for m in outcomes
    }
    protocol = _protocol_result(
        ctx,
        scores["protocol"],
        outcomes["protocol"],
        deltas,
        deterministic["protocol"],
        walks,
        reference,
        names,
        truth_tv,
    )
    baselines = [
        _baseline_result(
            ctx,
            m,
            scores[m],
            outcomes[m],
            runs[m],
            deltas,
            deterministic[m],
            cap_gpu_s,
            names,
            truth_tv,
        )
        for m in against
    ]
    comparisons = [
        _comparison(m, scores, deltas, protocol, b, truth_tv.flat)
        for m, b in zip(against, baselines, strict=True)
    ]
    truth = _truth_model(truth_tv, names, unknown, final.budget_s, below)
    verdict = st.headline(
        [
            (LABELS[c.baseline], c.verdict, c.p_pick_best_diff, c.gpu_hours_ratio)
            for c in comparisons
        ],
        flat=truth_tv.flat,
        best=truth.best,
    )
    return Evaluation(
        campaign=campaign.name,
        trials=trials,
        seed=seed,
        cost_model=cost_model,
        truth=truth,
        protocol=protocol,
        baselines=baselines,
        comparisons=comparisons,
        verdict=verdict,
        warnings=_warnings(ctx, truth, draw_log, protocol, baselines),
        uncertainty=uncertainty,
        reference=_walk_summary(reference, names),
        recorded=_recorded_walk(ctx, names) if isinstance(source, ReplaySource) else None,
        inputs=Inputs(
            campaign_path=str(Path(campaign.path).resolve()),
            campaign_sha256=sha256_hex(campaign.text.encode()),
            trials=trials,
            seed=seed,
            against=against,
            eta=eta,
            min_budget_s=min_budget_s,
            seeds_per_evaluation=seeds_per_evaluation,
            cost_model=cost_model,
            bootstrap=bootstrap,
            bootstrap_trials=uncertainty.bootstrap_trials,
            **source.describe(),
        ),
        versions=_versions(),
    )


def _setup(ctx: Context, min_s: float, final_s: float, eta: int, cap_gpu_s: float) -> Setup:
    """The baselines' budget range and the planned cost of one evaluation per rung (the
    pool's mean cost at the rung's budget; the difference from the rung below when
    continuing)."""
    means: dict[float, float] = {}
    k = ctx.seeds_per_evaluation

    def mean_cost(budget_s: float) -> float:
        if budget_s not in means:
            means[budget_s] = fmean(ctx.source.mean_cost(c, budget_s, ctx.gpus) for c in ctx.usable)
        return means[budget_s]

    def budget(resource: float) -> float:
        return min(final_s, resource * min_s)

    def rung_cost(i: int, resource: float) -> float:
        here = mean_cost(budget(resource))
        if ctx.cost_model == "continue" and i > 0:
            return k * (here - mean_cost(budget(resource / eta)))
        return k * here

    return Setup(len(ctx.usable), min_s, final_s, eta, cap_gpu_s, rung_cost)


# --------------------------------------------------------------------------- bootstrap


def _bootstrap(
    ctx: Context,
    infos: dict[str, Condition],
    against: list[str],
    outcomes: dict[str, list[Outcome]],
    truth_tv: TruthValues,
    final_s: float,
    worlds: int,
    per_world: int | None,
    trials: int,
    bars: _Bars,
) -> tuple[Uncertainty, dict[str, dict[str, list[float]]] | None]:
    """The data interval's raw material: per method and figure, world minus recorded."""
    mc = "Wilson score intervals for proportions, Student-t for means and paired differences, over trials"
    source = ctx.source
    if isinstance(source, SimSource):
        return Uncertainty(
            monte_carlo=mc,
            data="planted",
            bootstrap_worlds=0,
            bootstrap_trials=0,
            note="the simulator's truth is planted: there is no data uncertainty to estimate",
        ), None
    conds = list(infos.values())
    if not source.replicated(conds):
        return Uncertainty(
            monte_carlo=mc,
            data="single-replicate",
            bootstrap_worlds=0,
            bootstrap_trials=0,
            note="every condition has one recorded run: the data's own uncertainty cannot be estimated from this table, and the protocol's walk is the same in every trial",
        ), None
    if worlds == 0:
        return Uncertainty(
            monte_carlo=mc,
            data="off",
            bootstrap_worlds=0,
            bootstrap_trials=0,
            note="the bootstrap over replicates was turned off (--bootstrap 0): intervals are Monte Carlo only and understate the uncertainty",
        ), None
    m = min(trials, per_world if per_world is not None else 10)
    methods = ["protocol", *against]
    recorded = {meth: _scores(outcomes[meth][:m], truth_tv) for meth in methods}
    deltas: dict[str, dict[str, list[float]]] = {meth: {} for meth in methods}
    deltas.update({f"diff:{b}": {} for b in against})
    bars.start("bootstrap", worlds, unit="world")
    for b in range(1, worlds + 1):
        world = source.bootstrap_world(b, conds, ctx.seed)
        tv = _truth_values(source, infos, final_s, world)
        if not tv.values:
            continue
        here: dict[str, Scores] = {}
        for meth in methods:
            if meth == "protocol":
                got = [_protocol_outcome(ctx.protocol(t, world)[0]) for t in range(m)]
            else:
                got = [_baseline_outcome(ctx, ctx.baseline(meth, t, world)[0]) for t in range(m)]
            here[meth] = _scores(got, tv)
            _add_deltas(deltas[meth], here[meth].means(), recorded[meth].means())
        for base in against:
            _add_deltas(
                deltas[f"diff:{base}"],
                _diff_means(here["protocol"], here[base]),
                _diff_means(recorded["protocol"], recorded[base]),
            )
        bars.tick()
    note = (
        f"data intervals: {worlds} bootstrap worlds, each resampling every condition's recorded "
        f"runs with replacement and recomputing the truth, {m} trials per world with the random "
        f"numbers of the first {m} trials on the recorded table; value +- 1.96 sd of the "
        "world-minus-recorded differences (conservative: residual Monte Carlo error widens it); "
        "conditions are not resampled: the campaign names them"
    )
    return Uncertainty(
        monte_carlo=mc, data="bootstrap", bootstrap_worlds=worlds, bootstrap_trials=m, note=note
    ), deltas


def _add_deltas(
    into: dict[str, list[float]], world: dict[str, float | None], recorded: dict[str, float | None]
) -> None:
    """Append world-minus-recorded for each metric both have (same keys: one `means()`)."""
    for key, value in world.items():
        if value is not None and recorded[key] is not None:
            into.setdefault(key, []).append(value - recorded[key])  # type: ignore[operator]


def _paired(a: Scores, b: Scores) -> tuple[list[float], list[float]]:
    hits = [float(x) - float(y) for x, y in zip(a.hit, b.hit, strict=True)]
    regrets = [
        x - y for x, y in zip(a.regret, b.regret, strict=True) if x is not None and y is not None
    ]
    return hits, regrets


def _diff_means(a: Scores, b: Scores) -> dict[str, float | None]:
    hits, regrets = _paired(a, b)
    return {"hit": fmean(hits) if hits else None, "regret": fmean(regrets) if regrets else None}


# --------------------------------------------------------------------------- results


def _d(
    deltas: dict[str, dict[str, list[float]]] | None, method: str, key: str
) -> list[float] | None:
    if deltas is None:
        return None
    return deltas[method].get(key)  # every method has its row; a metric no world gave, none


Deltas = dict[str, dict[str, list[float]]] | None  # bootstrap: method -> metric -> deltas


def _method_fields(
    method: str,
    s: Scores,
    outcomes: list[Outcome],
    deltas: Deltas,
    deterministic: bool,
    names: dict[str, str],
) -> dict[str, Any]:
    regrets = [r for r in s.regret if r is not None]
    # a pick is a candidate of the pool (baselines) or of a walk: `names` holds both
    counts = Counter(names[o.pick] if o.pick else "none" for o in outcomes)
    return {
        "method": method,
        "description": DESCRIPTIONS[method],
        "deterministic": deterministic,
        "p_pick_best": st.proportion(s.hit, _d(deltas, method, "hit"), deterministic=deterministic),
        "p_best_in_set": None
        if s.in_set is None
        else st.proportion(s.in_set, _d(deltas, method, "in_set"), deterministic=deterministic),
        "p_top3": st.proportion(s.top3, None, deterministic=deterministic),
        "regret": st.mean_estimate(
            regrets, _d(deltas, method, "regret"), deterministic=deterministic, low=0.0
        ),
        "regret_trials": len(regrets),
        "gpu_hours": st.mean_estimate(
            s.gpu_h, _d(deltas, method, "gpu_h"), deterministic=deterministic, low=0.0
        ),
        "picks": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:8]),
    }


def _protocol_result(
    ctx: Context,
    s: Scores,
    outcomes: list[Outcome],
    deltas: Deltas,
    deterministic: bool,
    walks: list[Walk],
    reference: Walk,
    names: dict[str, str],
    tv: TruthValues,
) -> ProtocolResult:
    return ProtocolResult(
        **_method_fields("protocol", s, outcomes, deltas, deterministic, names),
        stopped_early=sum(1 for w in walks if w.stopped),
        gates=_gates(ctx, walks, reference, names),
    )


def _baseline_result(
    ctx: Context,
    method: str,
    s: Scores,
    outcomes: list[Outcome],
    runs: list[BaselineRun],
    deltas: Deltas,
    deterministic: bool,
    cap_gpu_s: float,
    names: dict[str, str],
    tv: TruthValues,
) -> BaselineResult:
    setup = ctx.setup
    assert setup is not None
    target_h = cap_gpu_s / 3600.0
    ratios = [r.spent_gpu_s / cap_gpu_s for r in runs] if cap_gpu_s > 0 else []
    plans: dict[tuple, BracketPlan] = {}
    for run in runs:
        for b in run.brackets:
            key = (b.s, tuple(r.n for r in b.rungs))
            plans.setdefault(
                key,
                BracketPlan(
                    s=b.s,
                    n=[r.n for r in b.rungs],
                    budget_s=[setup.budget(r.resource) for r in b.rungs],
                ),
            )
    note = None
    if method in ("successive-halving", "hyperband") and all(not r.brackets for r in runs):
        note = "the cap (the protocol's mean GPU-hours) pays for no bracket: nothing was run"
    elif all(r.evaluations == 0 for r in runs):
        note = "the cap (the protocol's mean GPU-hours) pays for no evaluation: nothing was run"
    return BaselineResult(
        **_method_fields(method, s, outcomes, deltas, deterministic, names),
        target_gpu_hours=target_h,
        spent_ratio_mean=fmean(ratios) if ratios else None,
        spent_ratio_min=min(ratios) if ratios else None,
        spent_ratio_max=max(ratios) if ratios else None,
        evaluations_mean=fmean(r.evaluations for r in runs),
        pool=len(ctx.usable),
        eta=setup.eta if method != "random" else None,
        min_budget_s=setup.min_budget_s if method != "random" else None,
        max_budget_s=setup.final_budget_s,
        seeds_per_evaluation=ctx.seeds_per_evaluation,
        brackets=sorted(plans.values(), key=lambda p: (-p.s, -p.n[0]))[:12],
        note=note,
    )


def _comparison(
    method: str,
    scores: dict[str, Scores],
    deltas: Deltas,
    protocol: ProtocolResult,
    base: BaselineResult,
    flat: bool,
) -> Comparison:
    hits, regrets = _paired(scores["protocol"], scores[method])
    p_diff = st.paired(hits, _d(deltas, f"diff:{method}", "hit"))
    r_diff = st.paired(regrets, _d(deltas, f"diff:{method}", "regret"))
    ph, bh_ = protocol.gpu_hours.value, base.gpu_hours.value
    ratio = bh_ / ph if ph and bh_ is not None else None
    verdict, sentence = st.compare_sentence(LABELS[method], p_diff, r_diff, ratio, flat=flat)
    return Comparison(
        baseline=method,
        p_pick_best_diff=p_diff,
        regret_diff=r_diff,
        gpu_hours_ratio=ratio,
        verdict=verdict,
        sentence=sentence,
    )


def _walk_summary(walk: Walk, names: dict[str, str]) -> WalkSummary:
    """`names` holds the walk's own (every condition it planned or promoted)."""
    return WalkSummary(
        promoted={g.stage: [names[c] for c in g.promoted] for g in walk.gates},
        pick=names[walk.pick] if walk.pick else None,
        gpu_hours=walk.gpu_s / 3600.0,
    )


def _recorded_walk(ctx: Context, names: dict[str, str]) -> RecordedWalk:
    """The walk on each run's own recorded (seed, host) row: what the store decided."""
    source = ctx.source
    assert isinstance(source, ReplaySource)
    if not source.table.has_seed:
        return RecordedWalk(
            walk=None,
            unavailable="the table has no seed column, so its rows cannot be matched to the campaign's cells",
        )
    try:
        walk = ctx.walker.walk(ctx.draws(-1, RECORDED, mode="exact"))
    except MissingReplicate as exc:
        return RecordedWalk(walk=None, unavailable=str(exc))
    known = {**walk.names, **names}  # the evaluation's names first, as for the trials' walks
    return RecordedWalk(walk=_walk_summary(walk, known), unavailable=None)


def _gates(ctx: Context, walks: list[Walk], reference: Walk, names: dict[str, str]) -> list[Gate]:
    campaign, source = ctx.campaign, ctx.source
    letters = [f.letter for f in campaign.factors]
    out = []
    for stage in campaign.stages:
        per_trial = [next((g for g in w.gates if g.stage == stage.name), None) for w in walks]
        seen = [g for g in per_trial if g is not None]
        modal = Counter(frozenset(g.promoted) for g in seen).most_common(1)
        ref_gate = next((g for g in reference.gates if g.stage == stage.name), None)
        ref = set(ref_gate.promoted) if ref_gate is not None else None  # None: it stopped before
        changed = sum(1 for g in per_trial if g is None or set(g.promoted) != ref)
        screen = None
        truth_effects = source.true_effects(stage.budget_s, letters) if letters else None
        if truth_effects is not None and any(g.effects for g in seen):
            level = stage.rule.fdr if stage.rule.fdr is not None else 0.05
            screen = _screen(per_trial, level, truth_effects, letters)
        out.append(
            Gate(
                stage=stage.name,
                budget_s=stage.budget_s,
                reached=len(seen) / len(walks),
                candidates_mean=fmean(len(g.candidates) for g in seen) if seen else None,
                promoted_mean=fmean(len(g.promoted) for g in seen) if seen else None,
                gpu_hours_mean=fmean(g.gpu_s for g in seen) / 3600.0 if seen else None,
                decision_changed=changed / len(walks),
                modal_share=modal[0][1] / len(walks) if modal else None,
                # the reference walk's names are among `names`
                reference_promoted=[names[c] for c in ref_gate.promoted] if ref_gate else [],
                screen=screen,
            )
        )
    return out


def _screen(
    gates: list[GateResult | None],
    level: float,
    truth_effects: dict[str, float],
    letters: list[str],
) -> Screen:
    """The effect screen's false discovery proportion and power per trial, with t intervals;
    a note when the figure cannot be anything else (no null factor, or no active one)."""
    active = {f for f, e in truth_effects.items() if abs(e) > 1e-9}
    fdp, power, with_effects = [], [], 0
    for gate in gates:
        if gate is None or not gate.effects:
            continue
        rows = [
            e
            for e in gate.effects["effects"]  # EffectsResult.to_dict(): every row has term, p
            if e["term"] in letters and e["p"] is not None
        ]
        with_effects += 1
        significant: set[str] = set()
        if rows:
            reject, _ = bh([e["p"] for e in rows], level)
            significant = {e["term"] for e, r in zip(rows, reject, strict=True) if r}
        fdp.append(len(significant - active) / len(significant) if significant else 0.0)
        if active:
            power.append(len(significant & active) / len(active))
    note = None
    if active == set(letters):
        note = "every factor is truly active at this budget: no discovery can be false, so the FDR is 0 by construction"
    elif not active:
        note = "no factor is truly active at this budget: power is undefined, and any discovery is false"
    return Screen(
        level=level,
        active=sorted(active),
        trials_with_effects=with_effects,
        fdr=st.mean_estimate(fdp, None, deterministic=False, low=0.0) if fdp else None,
        power=st.mean_estimate(power, None, deterministic=False, low=0.0) if power else None,
        true_effects=truth_effects,
        note=note,
    )


def _warnings(
    ctx: Context,
    truth: Truth,
    draw_log: dict[str, list[TrialDraws]],
    protocol: ProtocolResult,
    baselines: list[BaselineResult],
) -> list[str]:
    out = []
    if truth.flat:
        out.append(
            f"flat truth: all {truth.pool - len(truth.unknown)} candidates tie at the final budget, so every pick is the best and no method can be told apart"
        )
    elif truth.ties:
        out.append(
            f"{len(truth.ties) + 1} candidates tie for the true best ({', '.join([truth.best, *truth.ties])}): picking any of them counts as finding the best"
        )
    if truth.unknown:
        out.append(
            f"no value at the final budget for: {', '.join(truth.unknown)} (left out of the truth)"
        )
    if truth.below_final_budget:
        out.append(
            f"truth read below the final budget (no row there) for: {', '.join(truth.below_final_budget)}"
        )
    reused = {m: sum(d.reused for d in ds) for m, ds in draw_log.items()}
    if any(reused.values()):
        shown = ", ".join(f"{m} {n}" for m, n in reused.items() if n)
        out.append(f"more runs than recorded replicates: replicates were reused ({shown} draws)")
    other = sum(d.other_host for ds in draw_log.values() for d in ds)
    if other and isinstance(ctx.source, ReplaySource):
        hosts = ", ".join(sorted(ctx.source.table.hosts))
        out.append(
            f"{other} draws found no replicate on the run's host and were drawn across the table's hosts ({hosts})"
        )
    if protocol.stopped_early:
        out.append(f"{protocol.stopped_early} trials stopped early: a gate promoted nothing")
    for b in baselines:
        if b.note:
            out.append(f"{b.method}: {b.note}")
    return out
