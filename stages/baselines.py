"""Baselines through the same ledger: greedy one-factor-at-a-time, and cost-matched random search.

Why in the ledger: a claim like "staged screening beat greedy search at equal GPU-hours" is
only as good as the baseline's own evidence. Every baseline step is a signed manifest frozen
before its runs, with a decision the audit re-derives like any gate.

* greedy: evaluate a start condition, then flip one factor at a time (A, B, ...); keep the flip
  when its mean beats the incumbent's (ties keep the incumbent). One manifest per step, each
  citing the previous step's decision as parent.
* random: sample distinct points of the full 2^k space (seeded, recorded) as many as the
  named protocol's executed training GPU-hours buy at the given budget and cells; promote the
  best mean.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from ledger.decision_model import Decision
from ledger.errors import CampaignError, ConfigError
from ledger.keys import SigningKey
from ledger.manifest import freeze
from ledger.plan_model import Manifest
from ledger.provenance import run_gpus
from ledger.seeds import seed_plan
from ledger.store import Store, read_document
from stages.campaign import Campaign, budget_label
from stages.conditions import Condition, named_condition, point_condition
from stages.decide import decide_manifest
from stages.designs import full_factorial, point_name
from stages.execute import run_manifest
from stages.executors.base import Executor
from stages.lookup import Entry, current_manifest, manifest_decision, manifest_runs
from stages.plan import data_fingerprint, runner_identity

Say = Callable[[str], None]


def _plan(
    campaign: Campaign,
    stage: str,
    budget_s: float,
    cells: Sequence[tuple[int, str]],
    run_conditions: list[Condition],
    extra_conditions: list[Condition],
    rule: dict[str, Any],
    parent: str | None,
    spec: dict[str, Any],
    data: Any,
    simulated: bool,
) -> dict[str, Any]:
    conds = {c.id: c.to_dict() for c in [*run_conditions, *extra_conditions]}
    return {
        "campaign": campaign.name,
        "stage": stage,
        "budget_s": budget_s,
        "gpus": 1,
        "cells": [[s, h] for s, h in cells],
        "runs": [
            {"condition": c.id, "seed": s, "host": h} for c in run_conditions for s, h in cells
        ],
        "conditions": conds,
        "rule": rule,
        "checks": [],
        "analysis": {
            "metric": campaign.metric,
            "factors": campaign.factor_table,
            "terms": "main",
            "block": None,
            "fdr": None,
        },
        "runner": runner_identity(campaign, simulated=simulated),
        "data_sha256": None if simulated else data_fingerprint(data),
        "parent": parent,
        "spec": {"baseline": spec, "base": campaign.base},
        "seeds": seed_plan(),
    }


def _run_and_decide(
    store: Store,
    manifest: Entry[Manifest],
    key: SigningKey,
    executor: Executor,
    host: str | None,
    progress: bool,
) -> tuple[str, Decision]:
    decided = manifest_decision(store, manifest.id)
    if decided is not None:
        return decided.id, decided.body
    run_manifest(store, manifest, executor, key=key, host=host, progress=progress)
    return decide_manifest(store, manifest, key)


def _freeze_or_resume(
    store: Store, campaign: Campaign, plan: dict[str, Any], key: SigningKey
) -> Entry[Manifest]:
    existing = current_manifest(store, campaign.name, plan["stage"])
    if existing is not None:
        return existing
    mid = freeze(store, plan, key)
    return Entry(mid, read_document(store, mid, "manifest", Manifest), store.host, -1, "")


def greedy_search(
    store: Store,
    campaign: Campaign,
    key: SigningKey,
    executor: Executor,
    *,
    budget_s: float,
    cells: Sequence[tuple[int, str]],
    start: str | None = None,
    host: str | None = None,
    data: Any = None,
    progress: bool = True,
    say: Say = lambda _line: None,
) -> dict[str, Any]:
    """Greedy one-factor-at-a-time search, one audited manifest per step (resumable)."""
    if not campaign.factors:
        raise CampaignError(f"{campaign.path}: greedy search needs [factors]")
    label = budget_label(budget_s)
    if start:
        incumbent = named_condition(campaign, start)
    else:
        low = {f.letter: -1 for f in campaign.factors}
        incumbent = point_condition(campaign.base, campaign.factors, low, "(1)", "baseline")
    parent, incumbent_mean, steps = None, None, []
    simulated = executor.name == "sim"
    order = [None] + [f.letter for f in campaign.factors]
    for i, letter in enumerate(order):
        challenger = incumbent if letter is None else flipped(campaign, incumbent, letter)
        rule = {
            "baseline": "greedy",
            "incumbent": incumbent.id if letter else None,
            "incumbent_mean": incumbent_mean if letter else None,
        }
        spec = {
            "kind": "greedy",
            "step": i,
            "flip": letter,
            "budget": label,
            "start": start or "(1)",
        }
        extra = [incumbent] if letter and incumbent.id != challenger.id else []
        plan = _plan(
            campaign,
            f"greedy-{label}-{i:02d}",
            budget_s,
            cells,
            [challenger],
            extra,
            rule,
            parent,
            spec,
            data,
            simulated,
        )
        manifest = _freeze_or_resume(store, campaign, plan, key)
        decision_id, decision = _run_and_decide(store, manifest, key, executor, host, progress)
        incumbent, incumbent_mean = _next_incumbent(decision, incumbent, incumbent_mean)
        parent = decision_id
        steps.append(
            {
                "stage": plan["stage"],
                "flip": letter,
                "decision": decision_id,
                "incumbent": incumbent.name,
                "mean": incumbent_mean,
            }
        )
        shown = "no ok run yet" if incumbent_mean is None else incumbent_mean
        say(
            f"{plan['stage']}: {'start' if letter is None else 'flip ' + letter} -> "
            f"incumbent {incumbent.name} ({shown})"
        )
    return {
        "baseline": "greedy",
        "best": incumbent.name if incumbent_mean is not None else None,
        "best_id": incumbent.id if incumbent_mean is not None else None,
        "best_mean": incumbent_mean,
        "steps": steps,
        "training_gpu_hours": _gpu_hours(store, [s["stage"] for s in steps], campaign.name),
    }


def flipped(campaign: Campaign, incumbent: Condition, letter: str) -> Condition:
    """The greedy challenger: the incumbent with factor `letter` at its other level."""
    coded = {k: int(v) for k, v in incumbent.coded.items() if v in (-1, 1)}
    if set(coded) != {f.letter for f in campaign.factors}:
        raise CampaignError(f"greedy start {incumbent.name!r} is not at factor levels")
    coded[letter] = -coded[letter]
    return point_condition(campaign.base, campaign.factors, coded, point_name(coded), "baseline")


def _next_incumbent(
    decision: Decision, incumbent: Condition, mean: float | None
) -> tuple[Condition, float | None]:
    """The incumbent after a step: what its decision promoted, or the same one (mean still
    unknown) when the step promoted nothing (a start whose every run failed: the first
    flip with an ok run then takes over, see `stages.baseline_rule`)."""
    if not decision.promoted:
        return incumbent, mean
    winner = decision.promoted[0]
    info = decision.conditions[winner]
    found = Condition(winner, info.name, info.config, dict(info.coded), "baseline")
    return found, decision.outcome.best_mean


def protocol_gpu_hours(store: Store, campaign: Campaign) -> float:
    """Training GPU-hours the campaign's own stages (in force) executed, from run records."""
    return _gpu_hours(store, [s.name for s in campaign.stages], campaign.name)


def _gpu_hours(store: Store, stages: list[str], campaign: str) -> float:
    total = 0.0
    for stage in stages:
        manifest = current_manifest(store, campaign, stage)
        if manifest is None:
            continue
        gpus = run_gpus(manifest.body)  # the plan's, never a record's
        for run in manifest_runs(store, manifest.id):
            total += float(run.body.metrics.training_seconds or 0.0) * gpus
    return total / 3600.0


def random_search(
    store: Store,
    campaign: Campaign,
    key: SigningKey,
    executor: Executor,
    *,
    budget_s: float,
    cells: Sequence[tuple[int, str]],
    gpu_hours: float,
    match: str,
    seed: int = 0,
    host: str | None = None,
    data: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Random points of the full factorial, as many as `gpu_hours` buy; best mean wins."""
    per_condition = len(cells) * budget_s / 3600.0
    n = int(math.floor(gpu_hours / per_condition + 1e-9))
    if n < 1:
        raise ConfigError(
            f"{gpu_hours:.4g} GPU-hours do not buy one condition at {budget_s:g} s x "
            f"{len(cells)} cells ({per_condition:.4g} GPU-hours each)"
        )
    points = full_factorial(len(campaign.factors))
    chosen = random.Random(seed).sample(points, min(n, len(points)))
    conds = [
        point_condition(campaign.base, campaign.factors, p, point_name(p), "baseline")
        for p in chosen
    ]
    label = budget_label(budget_s)
    stage = f"random-{label}-s{seed}"
    rule = {"baseline": "random", "top_k": 1}
    spec = {
        "kind": "random",
        "seed": seed,
        "budget": label,
        "match": match,
        "match_gpu_hours": gpu_hours,
        "affordable": n,
        "sampled": len(conds),
    }
    plan = _plan(
        campaign, stage, budget_s, cells, conds, [], rule, None, spec, data, executor.name == "sim"
    )
    manifest = _freeze_or_resume(store, campaign, plan, key)
    decision_id, decision = _run_and_decide(store, manifest, key, executor, host, progress)
    winner = decision.promoted[0] if decision.promoted else None
    return {
        "baseline": "random",
        "stage": stage,
        "decision": decision_id,
        "sampled": len(conds),
        "affordable": n,
        "best": decision.name(winner) if winner else None,
        "best_id": winner,
        "best_mean": decision.outcome.best_mean,
        "matched_gpu_hours": gpu_hours,
        "training_gpu_hours": _gpu_hours(store, [stage], campaign.name),
    }
