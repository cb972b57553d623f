"""`ledger evaluate`: what a protocol buys, before it is frozen.

Runs the campaign's whole protocol many times in memory, each trial with fresh noise (the
simulator) or resampled replicates (a replay table), through the same plan builder `freeze`
uses (`stages.plan.stage_plan`) and the same pure `derive_decision` that `decide` and the
audit call; nothing is written, nothing is signed. Against it: Optuna's successive halving and
Hyperband and random search over the same candidate pool, each capped at the protocol's mean
GPU-hours.

Definitions (docs/evaluate.md):

* pool: every condition the protocol could run: each designed stage's design points, the
  named conditions stages carry, and the full factorial when a rule may `reduce`;
* truth: a condition's noise-free value at the final budget (sim: the surface without host
  offset or noise; replay: the mean of its replicates at the final budget);
* `p_best`: the true best (ties included) is in the final gate's promoted set;
  `p_pick_best`, `p_top3`: the final pick (the final gate's rank-1 condition; a baseline's
  winner) is the true best, or among the three truly best;
* `regret`: truth of the pick minus truth of the best; GPU-hours: training seconds x GPUs.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from statistics import NormalDist, fmean
from typing import Any

from ledger.canonical import canonical_bytes, sha256_hex
from ledger.errors import ConfigError, LedgerError
from ledger.fsutil import atomic_write
from stages.campaign import Campaign
from stages.conditions import Condition, design_conditions, named_condition, point_condition
from stages.decide import derive_decision
from stages.designs import full_factorial, point_name
from stages.hpo_baselines import METHODS, Point, optuna_halving, random_search
from stages.lookup import Entry
from stages.plan import (
    carried_names,
    parent_stage,
    runner_identity,
    spec_differences,
    stage_plan,
)
from stages.replay_table import CurveTable, Row, read_table, table_from_store
from stages.sim import SimParams, expected_value, run_outcome
from stages.stats import bh, t_interval

EVALUATION_FORMAT = {"format": "gateledger-evaluation", "version": 1}
_NORMAL = NormalDist()
_TIE = 1e-12


def _z(*key: Any) -> float:
    """A standard-normal draw fixed by its key: the same run in the same trial, same noise."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return _NORMAL.inv_cdf((int.from_bytes(digest, "big") + 0.5) / 2.0**64)


def _uniform_index(n: int, *key: Any) -> int:
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


def _info(cond: Condition) -> dict[str, Any]:
    return {"id": cond.id, **cond.to_dict()}


@dataclass(frozen=True)
class Answer:
    """A protocol run's outcome as the source gives it."""

    status: str
    value: float | None
    cost_gpu_s: float


# --------------------------------------------------------------------------- sources


class SimSource:
    """The campaign's `[sim]` surface; noise drawn per (evaluation seed, trial, run)."""

    kind = "sim"

    def __init__(self, params: SimParams, seed: int) -> None:
        self.params = params
        self.seed = seed

    def answer(
        self, trial: int | None, cond: dict, budget_s: float, seed: int, host: str, gpus: int
    ) -> Answer:
        z = (
            0.0
            if trial is None
            else _z(self.seed, "protocol", trial, cond["id"], budget_s, seed, host)
        )
        out = run_outcome(
            self.params,
            name=cond["name"],
            coded=cond.get("coded", {}),
            budget_s=budget_s,
            host=host,
            z=z,
        )
        return Answer(out.status, out.val_bpb, out.training_seconds * gpus)

    def truth(self, cond: dict, budget_s: float) -> float | None:
        if cond["name"] in self.params.diverge:
            return None
        return expected_value(self.params, cond.get("coded", {}), budget_s)

    def point(
        self, trial: int, method: str, cond: dict, rep: int, budget_s: float, host: str, gpus: int
    ) -> Point:
        # one run continued along its curve: its noise persists from step to step
        z = _z(self.seed, method, trial, cond["id"], rep)
        out = run_outcome(
            self.params,
            name=cond["name"],
            coded=cond.get("coded", {}),
            budget_s=budget_s,
            host=host,
            z=z,
        )
        return Point(out.val_bpb, out.training_seconds * gpus)

    def can_answer(self, cond: dict, budget_s: float) -> bool:
        return True

    def fidelity(self, cond: dict, budget_s: float) -> float:
        return budget_s

    def true_effects(self, budget_s: float, letters: Sequence[str]) -> dict[str, float]:
        p = self.params
        shrink = (p.ref_budget / budget_s) ** p.penalty_decay
        return {f: p.effects.get(f, 0.0) + p.penalties.get(f, 0.0) * shrink for f in letters}

    def describe(self) -> dict[str, Any]:
        return {"executor": "sim", "sim": self.params.to_dict()}


class ReplaySource:
    """Recorded curves: each run looks up its condition's rows at the nearest fidelity <= budget.

    Trials draw one replicate (seed, host) per run, from the replicates recorded on the run's
    host when there are any, else from all; the noise-free answer is the replicates' mean.
    """

    kind = "replay"

    def __init__(self, table: CurveTable, seed: int, description: dict[str, Any]) -> None:
        self.table = table
        self.seed = seed
        self.description = description
        self.exact = False  # True: take the run's own (seed, host) row when recorded

    @staticmethod
    def _mean(rows: list[Row]) -> Answer:
        ok = [r.value for r in rows if r.value is not None]
        cost = fmean(r.cost_gpu_s for r in rows)
        if not ok:
            return Answer(rows[0].status, None, cost)
        return Answer("ok", fmean(ok), cost)

    def answer(
        self, trial: int | None, cond: dict, budget_s: float, seed: int, host: str, gpus: int
    ) -> Answer:
        _, rows = self.table.rows_at(cond, budget_s)
        if self.exact:
            mine = [r for r in rows if r.replicate == (str(seed), str(host))]
            return self._mean(mine or rows)
        if trial is None:
            return self._mean(rows)
        pool = [r for r in rows if r.host == host] or rows
        row = pool[
            _uniform_index(
                len(pool), self.seed, "protocol", trial, cond["id"], budget_s, seed, host
            )
        ]
        return Answer(row.status, row.value, row.cost_gpu_s)

    def truth(self, cond: dict, budget_s: float) -> float | None:
        if not self.table.has(cond):
            return None
        try:
            _, rows = self.table.rows_at(cond, budget_s)
        except LedgerError:
            return None
        return self._mean(rows).value

    def point(
        self, trial: int, method: str, cond: dict, rep: int, budget_s: float, host: str, gpus: int
    ) -> Point:
        replicates = self.table.replicates(cond)
        mine = replicates[
            _uniform_index(len(replicates), self.seed, method, trial, cond["id"], rep)
        ]
        _, rows = self.table.rows_at(cond, budget_s)
        row = next((r for r in rows if r.replicate == mine), rows[0])
        return Point(row.value, row.cost_gpu_s)

    def can_answer(self, cond: dict, budget_s: float) -> bool:
        try:
            self.table.fidelity_at(cond, budget_s)
        except LedgerError:
            return False
        return True

    def fidelity(self, cond: dict, budget_s: float) -> float:
        return self.table.fidelity_at(cond, budget_s)

    def true_effects(self, budget_s: float, letters: Sequence[str]) -> None:
        return None  # recorded curves carry no planted truth

    def describe(self) -> dict[str, Any]:
        return dict(self.description)


def sim_source(campaign: Campaign, seed: int) -> SimSource:
    """The simulator of the campaign's `[sim]` table (errors name the key)."""
    letters = "".join(f.letter for f in campaign.factors)
    return SimSource(SimParams.from_table(campaign.sim, letters, f"{campaign.path}: [sim]"), seed)


def replay_csv_source(path, campaign: Campaign, seed: int) -> ReplaySource:
    """Replay a curves CSV (`stages.replay_table`); the inputs record its SHA-256."""
    table = read_table(path, campaign.metric)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return ReplaySource(
        table,
        seed,
        {
            "executor": "replay",
            "table": str(path),
            "table_sha256": digest,
            "table_rows": table.n_rows,
        },
    )


def replay_store_source(store, campaign: Campaign, seed: int) -> ReplaySource:
    """Replay every run a finished store recorded ("what would this rule have decided?")."""
    table = table_from_store(store, campaign.metric)
    return ReplaySource(
        table,
        seed,
        {"executor": "replay", "from_store": str(store.root), "table_rows": table.n_rows},
    )


# --------------------------------------------------------------------------- the pool


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


# --------------------------------------------------------------------------- protocol walk


@dataclass
class GateResult:
    stage: str
    budget_s: float
    candidates: list[str]
    promoted: list[str]
    best: str | None
    effects: dict[str, Any] | None
    gpu_s: float


@dataclass
class Walk:
    """One in-memory pass through the protocol."""

    gates: list[GateResult] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    stopped: str | None = None

    @property
    def gpu_s(self) -> float:
        return math.fsum(g.gpu_s for g in self.gates)

    @property
    def final_promoted(self) -> list[str]:
        return self.gates[-1].promoted if self.gates and self.stopped is None else []

    @property
    def pick(self) -> str | None:
        return self.gates[-1].best if self.gates and self.stopped is None else None


AnswerFn = Callable[[dict, float, int, str, int], Answer]


class ProtocolWalker:
    """Walks the campaign's stages in file order; plans are cached by (stage, parent)."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self.runner = runner_identity(campaign)
        self._plans: dict[tuple[str, str | None], tuple[str, dict[str, Any]]] = {}

    def _plan(self, stage, parent: Entry | None) -> tuple[str, dict[str, Any]] | None:
        key = (stage.name, parent.id if parent else None)
        if key not in self._plans:
            try:
                plan = stage_plan(
                    self.campaign, stage, parent, runner=self.runner, data_sha256=None
                )
            except LedgerError:
                if parent is not None and not parent.body.get("promoted"):
                    return None  # the previous gate promoted nothing: the protocol ends there
                raise
            self._plans[key] = (sha256_hex(canonical_bytes(plan)), plan)
        return self._plans[key]

    def walk(self, answer: AnswerFn) -> Walk:
        out = Walk()
        decisions: dict[str, Entry] = {}
        for stage in self.campaign.stages:
            parent_spec = parent_stage(self.campaign, stage)
            parent = decisions.get(parent_spec.name) if parent_spec else None
            planned = self._plan(stage, parent)
            if planned is None:
                out.stopped = stage.name
                break
            manifest_id, plan = planned
            runs, gpu_s = [], 0.0
            for i, run in enumerate(plan["runs"]):
                info = {"id": run["condition"], **plan["conditions"][run["condition"]]}
                got = answer(info, plan["budget_s"], run["seed"], run["host"], plan["gpus"])
                gpu_s += got.cost_gpu_s
                runs.append(
                    (
                        f"{i:08d}",
                        {
                            "manifest": manifest_id,
                            "condition": run["condition"],
                            "seed": run["seed"],
                            "host": run["host"],
                            "status": got.status,
                            "gpus": plan["gpus"],
                            "metrics": {
                                plan["analysis"]["metric"]: got.value,
                                "training_seconds": got.cost_gpu_s / plan["gpus"],
                            },
                            "recorded_at": "",
                        },
                    )
                )
            body = derive_decision(manifest_id, plan, runs)
            for cid, info in {**plan["conditions"], **body["conditions"]}.items():
                out.names.setdefault(cid, info["name"])
            decision_id = sha256_hex(json.dumps([manifest_id, body["promoted"]]).encode())
            decisions[stage.name] = Entry(decision_id, body, "evaluate", -1, "")
            out.gates.append(
                GateResult(
                    stage.name,
                    plan["budget_s"],
                    list(plan["conditions"]),
                    list(body["promoted"]),
                    body["outcome"].get("best"),
                    body["statistics"].get("effects"),
                    gpu_s,
                )
            )
        return out


# --------------------------------------------------------------------------- summaries


def wilson(successes: int, n: int, level: float = 0.95) -> list[float] | None:
    """Wilson score interval for a proportion (None without trials)."""
    if n <= 0:
        return None
    z = _NORMAL.inv_cdf((1 + level) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _mean_ci(values: Sequence[float]) -> tuple[float | None, list[float] | None]:
    if not values:
        return None, None
    lo, hi = t_interval(list(values))
    return fmean(values), (None if lo is None else [float(lo), float(hi)])


@dataclass
class Truth:
    values: dict[str, float]  # condition id -> noise-free final value (known ones)
    names: dict[str, str]
    unknown: list[str]
    final_budget_s: float
    below_final: list[str] = field(default_factory=list)  # truth read at a lower fidelity

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

    def to_dict(self) -> dict[str, Any]:
        ranked = sorted(self.values.items(), key=lambda cv: (cv[1], cv[0]))
        best_id = ranked[0][0]
        return {
            "best": self.names[best_id],
            "best_id": best_id,
            "value": ranked[0][1],
            "ties": sorted(self.names[c] for c in self.best if c != best_id),
            "final_budget_s": self.final_budget_s,
            "pool": len(self.values) + len(self.unknown),
            "unknown": sorted(self.names[c] for c in self.unknown),
            "below_final_budget": sorted(self.names[c] for c in self.below_final),
            "top": [{"name": self.names[c], "id": c, "value": v} for c, v in ranked[:5]],
        }


def _outcome_stats(
    picks: list[str | None], sets: list[set[str]], gpu_h: list[float], truth: Truth
) -> dict[str, Any]:
    n = len(picks)
    best, top3 = truth.best, truth.top3
    hit = sum(1 for s in sets if s & best)
    pick_best = sum(1 for p in picks if p in best)
    pick_top3 = sum(1 for p in picks if p in top3)
    regrets = [truth.values[p] - truth.best_value for p in picks if p in truth.values]
    regret, regret_ci = _mean_ci(regrets)
    hours, hours_ci = _mean_ci(gpu_h)
    counts = Counter(truth.names.get(p, str(p)[:8]) if p else "none" for p in picks)
    return {
        "p_best": hit / n,
        "p_best_ci": wilson(hit, n),
        "p_pick_best": pick_best / n,
        "p_pick_best_ci": wilson(pick_best, n),
        "p_top3": pick_top3 / n,
        "p_top3_ci": wilson(pick_top3, n),
        "regret_mean": regret,
        "regret_ci": regret_ci,
        "regret_trials": len(regrets),
        "gpu_hours_mean": hours,
        "gpu_hours_ci": hours_ci,
        "picks": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:8]),
    }


def _screen(
    gates: list[GateResult | None], level: float, active: set[str], letters: list[str]
) -> dict[str, Any]:
    fdp, power, with_effects = [], [], 0
    for gate in gates:
        if gate is None or not gate.effects:
            continue
        rows = [
            e
            for e in gate.effects.get("effects", [])
            if e.get("term") in letters and e.get("p") is not None
        ]
        with_effects += 1
        significant: set[str] = set()
        if rows:
            reject, _ = bh([e["p"] for e in rows], level)
            significant = {e["term"] for e, r in zip(rows, reject, strict=True) if r}
        false = len(significant - active)
        fdp.append(false / len(significant) if significant else 0.0)
        if active:
            power.append(len(significant & active) / len(active))
    return {
        "level": level,
        "active": sorted(active),
        "trials_with_effects": with_effects,
        "fdr": fmean(fdp) if fdp else None,
        "power": fmean(power) if power else None,
    }


# --------------------------------------------------------------------------- evaluate


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("gateledger", "optuna", "numpy", "scipy", "statsmodels"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def parse_against(text: str | Sequence[str] | None) -> list[str]:
    """`successive-halving,hyperband,random` -> a list; '' or 'none' -> no baselines."""
    if text is None:
        return list(METHODS)
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text)]
    items = [t for t in items if t and t != "none"]
    for item in items:
        if item not in METHODS:
            raise ConfigError(f"--against: unknown method {item!r} (known: {', '.join(METHODS)})")
    return list(dict.fromkeys(items))


def evaluate(
    campaign: Campaign,
    source: SimSource | ReplaySource,
    *,
    trials: int = 200,
    seed: int = 0,
    against: Sequence[str] = METHODS,
    eta: int = 3,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the protocol `trials` times in memory, then the baselines at its mean GPU-hours.

    Args:
        campaign: the parsed campaign (its stages are the protocol).
        source: `sim_source(...)` or `replay_source(...)`: who answers each run.
        trials: independent repetitions (fresh noise or resampled replicates each).
        seed: the evaluation seed; the same seed gives the same numbers.
        against: baseline methods among `successive-halving`, `hyperband`, `random`.
        eta: reduction factor of successive halving and Hyperband.
        progress: show a progress bar (stderr).

    Returns:
        The evaluation dict documented in docs/evaluate.md (`trials`, `truth`, `protocol`,
        `baselines`, `reference`, `inputs`...).

    Raises:
        LedgerError: bad arguments, a bad `[sim]` table, a replay row that is missing, or
        Optuna missing for an Optuna baseline.
    """
    if not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"--trials must be a positive integer, not {trials!r}")
    against = parse_against(list(against))
    final = campaign.stages[-1]
    pool = candidate_pool(campaign)
    infos = {c.id: _info(c) for c in pool}
    names = {c.id: c.name for c in pool}
    values, unknown = _final_values(campaign, source, infos)
    walker = ProtocolWalker(campaign)
    bar = _bar(trials * (1 + len(against)), progress)
    reference, walks = _walk_trials(walker, source, trials, bar)
    for w in [reference, *walks]:
        names.update({k: v for k, v in w.names.items() if k not in names})
    below = [
        cid
        for cid in values
        if source.fidelity(infos[cid], final.budget_s) < final.budget_s * (1 - 1e-12)
    ]
    truth = Truth(values, names, unknown, final.budget_s, below)
    protocol = _protocol_outcome(campaign, source, walks, reference, names, truth)
    target_h = protocol["gpu_hours_mean"]

    baselines = [
        _baseline(
            method, campaign, source, pool, infos, truth, trials, seed, target_h * 3600.0, eta, bar
        )
        for method in against
    ]
    if bar is not None:
        bar.close()

    result = {
        **EVALUATION_FORMAT,
        "campaign": campaign.name,
        "trials": trials,
        "seed": seed,
        "truth": truth.to_dict(),
        "protocol": protocol,
        "baselines": baselines,
        "reference": {
            "promoted": {g.stage: [names[c] for c in g.promoted] for g in reference.gates},
            "pick": names.get(reference.pick) if reference.pick else None,
            "gpu_hours": reference.gpu_s / 3600.0,
        },
        "inputs": {
            "campaign_path": str(campaign.path),
            "campaign_sha256": sha256_hex(campaign.text.encode()),
            "trials": trials,
            "seed": seed,
            "against": against,
            "eta": eta,
            **source.describe(),
        },
        "versions": _versions(),
    }
    if isinstance(source, ReplaySource):
        result["recorded"] = _recorded_walk(walker, source, names)
    return result


def _answer_for(source: SimSource | ReplaySource, trial: int | None) -> AnswerFn:
    """The source's answers for one trial (None: the noise-free reference walk)."""
    return lambda info, b, s, h, g: source.answer(trial, info, b, s, h, g)


def _walk_trials(
    walker: ProtocolWalker, source: SimSource | ReplaySource, trials: int, bar: Any
) -> tuple[Walk, list[Walk]]:
    """The noise-free reference walk, then one walk per trial (each ticks the bar)."""
    reference = walker.walk(_answer_for(source, None))
    walks: list[Walk] = []
    for t in range(trials):
        walks.append(walker.walk(_answer_for(source, t)))
        _tick(bar)
    return reference, walks


def _final_values(
    campaign: Campaign, source: SimSource | ReplaySource, infos: dict[str, Any]
) -> tuple[dict[str, float], list[str]]:
    """Each candidate's true value at the final budget, and those the source cannot know."""
    final = campaign.stages[-1]
    values, unknown = {}, []
    for cid, info in infos.items():
        v = source.truth(info, final.budget_s)
        (unknown.append(cid) if v is None else values.__setitem__(cid, v))
    if not values:
        raise LedgerError(
            f"{campaign.path}: no candidate has a known value at the final budget "
            f"({final.name}); nothing to evaluate against"
        )
    return values, unknown


def _protocol_outcome(
    campaign: Campaign,
    source: SimSource | ReplaySource,
    walks: list[Walk],
    reference: Walk,
    names: dict[str, str],
    truth: Truth,
) -> dict[str, Any]:
    """What the protocol's trials picked and spent, judged against the truth, gate by gate."""
    protocol = {
        "method": "protocol",
        **_outcome_stats(
            [w.pick for w in walks],
            [set(w.final_promoted) for w in walks],
            [w.gpu_s / 3600.0 for w in walks],
            truth,
        ),
    }
    protocol["stopped_early"] = sum(1 for w in walks if w.stopped)
    protocol["gates"] = _gates(campaign, source, walks, reference, names)
    return protocol


def _recorded_walk(
    walker: ProtocolWalker, source: ReplaySource, names: dict[str, str]
) -> dict[str, Any]:
    """The walk on the recorded values themselves (no resampling): what the store decided."""
    source.exact = True
    try:
        recorded = walker.walk(_answer_for(source, None))
    finally:
        source.exact = False
    return {
        "promoted": {g.stage: [names.get(c, c[:8]) for c in g.promoted] for g in recorded.gates},
        "pick": names.get(recorded.pick) if recorded.pick else None,
        "gpu_hours": recorded.gpu_s / 3600.0,
    }


def _gates(campaign, source, walks: list[Walk], reference: Walk, names) -> list[dict[str, Any]]:
    letters = [f.letter for f in campaign.factors]
    ref = {g.stage: set(g.promoted) for g in reference.gates}
    out = []
    for stage in campaign.stages:
        per_trial = [next((g for g in w.gates if g.stage == stage.name), None) for w in walks]
        seen = [g for g in per_trial if g is not None]
        promoted_sets = [frozenset(g.promoted) for g in seen]
        modal = Counter(promoted_sets).most_common(1)
        changed = sum(1 for g in per_trial if g is None or set(g.promoted) != ref.get(stage.name))
        row: dict[str, Any] = {
            "stage": stage.name,
            "budget_s": stage.budget_s,
            "reached": len(seen) / len(walks),
            "candidates_mean": fmean(len(g.candidates) for g in seen) if seen else None,
            "promoted_mean": fmean(len(g.promoted) for g in seen) if seen else None,
            "gpu_hours_mean": fmean(g.gpu_s for g in seen) / 3600.0 if seen else None,
            "decision_changed": changed / len(walks),
            "modal_share": modal[0][1] / len(walks) if modal else None,
            "reference_promoted": [
                names.get(c, c[:8])
                for c in next((g.promoted for g in reference.gates if g.stage == stage.name), [])
            ],
            "screen": None,
        }
        truth_effects = source.true_effects(stage.budget_s, letters) if letters else None
        if truth_effects is not None and any(g.effects for g in seen):
            active = {f for f, e in truth_effects.items() if abs(e) > 1e-9}
            level = stage.rule.fdr if stage.rule.fdr is not None else 0.05
            row["screen"] = {
                **_screen(per_trial, level, active, letters),
                "true_effects": truth_effects,
            }
        out.append(row)
    return out


def _baseline(
    method,
    campaign,
    source,
    pool,
    infos,
    truth: Truth,
    trials: int,
    seed: int,
    cap_gpu_s: float,
    eta: int,
    bar,
) -> dict[str, Any]:
    first, final = campaign.stages[0], campaign.stages[-1]
    unit = min(s.budget_s for s in campaign.stages)
    max_step = max(1, round(final.budget_s / unit))
    host = final.cells[0][1]
    gpus = final.gpus
    usable = [c for c in pool if source.can_answer(infos[c.id], unit)]
    if not usable:
        raise LedgerError(f"{method}: no candidate can be answered at {first.name}'s budget")

    def budget_of(step: int) -> float:
        return final.budget_s if step >= max_step else step * unit

    picks, spent, evaluations = [], [], []
    for t in range(trials):
        order = list(range(len(usable)))
        random.Random(f"{seed}/{method}/{t}").shuffle(order)

        def point(idx: int, rep: int, step: int, t=t) -> Point:
            return source.point(t, method, infos[usable[idx].id], rep, budget_of(step), host, gpus)

        if method == "random":
            run = random_search(
                len(usable), point, order=order, max_step=max_step, cap_gpu_s=cap_gpu_s
            )
        else:
            run = optuna_halving(
                method,
                len(usable),
                point,
                order=order,
                max_step=max_step,
                cap_gpu_s=cap_gpu_s,
                eta=eta,
                seed=seed * 100003 + t,
            )
        picks.append(usable[run.pick].id if run.pick is not None else None)
        spent.append(run.spent_gpu_s / 3600.0)
        evaluations.append(run.evaluations)
        _tick(bar)
    stats = _outcome_stats(picks, [{p} if p else set() for p in picks], spent, truth)
    target_h = cap_gpu_s / 3600.0
    ratios = [s / target_h for s in spent] if target_h > 0 else []
    return {
        "method": method,
        **stats,
        "target_gpu_hours": target_h,
        "spent_ratio_mean": fmean(ratios) if ratios else None,
        "spent_ratio_min": min(ratios) if ratios else None,
        "spent_ratio_max": max(ratios) if ratios else None,
        "evaluations_mean": fmean(evaluations),
        "pool": len(usable),
        "max_step": max_step,
        "step_budget_s": unit,
        "eta": eta if method != "random" else None,
    }


def _bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm  # tqdm: ~0.1 s measured, paid only when a bar is drawn

    return tqdm(total=total, desc="evaluate", unit="trial", dynamic_ncols=True, leave=False)


def _tick(bar) -> None:
    if bar is not None:
        bar.update(1)


# --------------------------------------------------------------------------- reruns


RESULT_KEYS = ("trials", "seed", "truth", "protocol", "baselines", "reference")


def differences(saved: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """Dotted keys where a rerun's numbers differ from a saved evaluation's."""
    return [
        f"{key}: saved {old!r}, rerun {new!r}"
        for key, old, new in spec_differences(
            {k: saved.get(k) for k in RESULT_KEYS}, {k: fresh.get(k) for k in RESULT_KEYS}
        )
    ]


# --------------------------------------------------------------------------- saved results


EVALUATIONS_DIR = "evaluations"


def evaluation_path(store_root, campaign_name: str):
    """Where `ledger evaluate --save` keeps a campaign's latest evaluation (outside evidence)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", campaign_name).strip("-.")[:48] or "campaign"
    tag = hashlib.sha256(campaign_name.encode()).hexdigest()[:8]
    return Path(store_root) / EVALUATIONS_DIR / f"{slug}-{tag}.json"


def save_evaluation(path, result: dict[str, Any]) -> None:
    """Write an evaluation as JSON, atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(result, indent=2, sort_keys=True) + "\n").encode())


def load_evaluation(path) -> dict[str, Any]:
    """Read a saved evaluation; LedgerError naming the file when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LedgerError(f"evaluation file not found: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LedgerError(f"cannot read evaluation file {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != EVALUATION_FORMAT["format"]:
        raise LedgerError(
            f"{path}: not a gateledger evaluation (no format {EVALUATION_FORMAT['format']!r})"
        )
    for key in ("inputs", *RESULT_KEYS):
        if key not in data:
            raise LedgerError(f"{path}: evaluation lacks key {key!r}")
    return data
