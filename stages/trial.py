"""`ledger try STAGE`: run a stage's runner on a few conditions before anything is signed.

Why: once a stage is frozen, every run is evidence, and a mistake (a script that crashes on
one config, a header that does not say what it was given, a seed the script rejects) is
signed and permanent. A trial goes through exactly the code `ledger run` and ingest use:
the plan is built as `freeze` builds it (configs resolved, foreign configs checked), each
run's seed is derived from the plan's id by the frozen seed rule, the executor builds the
same command, and each log is parsed and bound to its run by the same checks ingest
refuses on (`ledger.ingest.run_problems`). Only the budget is the trial's, and the plan is
never signed: its id is the SHA-256 of its canonical bytes, the runs happen in a scratch
folder outside the store, and nothing is journaled or stored.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.binding_level import binding_level
from ledger.canonical import canonical_bytes, sha256_hex
from ledger.errors import CampaignError, ConfigError
from ledger.ingest import grouped_reasons, log_defects, run_problems
from ledger.plan_model import Plan, RunnerIdentity
from ledger.rawlog import failure_reason, parse_raw_log
from ledger.seeds import seed_plan
from stages.campaign import Campaign, StageSpec
from stages.conditions import Condition, design_conditions, make_condition, point_condition
from stages.execute import manifest_tasks
from stages.executors.base import RunResult, RunTask
from stages.executors.local import LocalExecutor
from stages.plan import (
    DEFAULT_DATA,
    carried_names,
    check_foreign_configs,
    data_fingerprint,
    parent_stage,
    runner_config,
    runner_identity,
)
from stages.runner_checks import keys_checked, unchecked_note

TAIL_LINES = 12


@dataclass
class TrialRun:
    """One tried run: what `ledger run` would record for it, or every reason it would refuse."""

    name: str
    condition: str
    config: dict[str, Any]
    seed: int
    effective_seed: int | None
    host: str
    outcome: str  # "ok", "diverged", "crashed", "timeout" (would be recorded so) or "refused"
    metrics: dict[str, Any]
    reasons: list[str] = field(default_factory=list)  # why ingest would refuse it
    failure: str = ""  # why a run that is not ok ended: the runner's error or stderr's last line
    stderr_tail: list[str] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)
    exit_code: int | None = None
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "condition": self.condition,
            "config": self.config,
            "seed": self.seed,
            "effective_seed": self.effective_seed,
            "host": self.host,
            "outcome": self.outcome,
            "would_record": self.outcome != "refused",
            "metrics": self.metrics,
            "reasons": self.reasons,
            "failure": self.failure,
            "stderr_tail": self.stderr_tail,
            "log_tail": self.log_tail,
            "exit_code": self.exit_code,
            "wall_seconds": round(self.wall_seconds, 3),
        }


@dataclass
class TrialReport:
    """What `ledger try` found: one row per tried run, and what it says about the runner."""

    campaign: str
    stage: str
    budget_s: float
    plan_id: str
    runner: RunnerIdentity
    binding: dict[str, Any]
    keys_checked: str | None
    runs: list[TrialRun]
    notes: list[str] = field(default_factory=list)  # e.g. that nothing checks config keys
    metric: str = "val_bpb"  # the campaign's metric, what each ok run is shown by

    @property
    def ok(self) -> bool:
        """Every tried run would be recorded with status ok."""
        return bool(self.runs) and all(r.ok for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "stage": self.stage,
            "budget_s": self.budget_s,
            "plan_id": self.plan_id,
            "runner": self.runner.to_dict(),
            "binding": self.binding,
            "keys_checked": self.keys_checked,
            "metric": self.metric,
            "notes": self.notes,
            "runs": [r.to_dict() for r in self.runs],
            "ok": self.ok,
            "written_to_store": False,
        }


def _distance(a: Condition, b: Condition) -> int:
    keys = set(a.config) | set(b.config)
    return sum(1 for k in keys if a.config.get(k, _ABSENT) != b.config.get(k, _ABSENT))


_ABSENT = object()


def trial_pool(campaign: Campaign, stage: StageSpec) -> list[Condition]:
    """Conditions a trial may pick from: the factorial's all-low and all-high points, the
    stage's design points (else its nearest ancestor's), and the named conditions it
    carries; the base config when there is nothing else. Unique by id, in that order."""
    pool: list[Condition] = []
    if campaign.factors:
        for level, name in ((-1, "all-low"), (1, "all-high")):
            coded = {f.letter: level for f in campaign.factors}
            pool.append(point_condition(campaign.base, campaign.factors, coded, name, "trial"))
    designed: StageSpec | None = stage
    while designed is not None and not designed.design:
        designed = parent_stage(campaign, designed)
    if designed is not None:
        pool += design_conditions(campaign, designed)
    pool += [
        make_condition(campaign.base, campaign.factors, campaign.named[n], n, "named")
        for n in carried_names(campaign, stage)
    ]
    if not pool:
        pool.append(make_condition(campaign.base, campaign.factors, {}, "base", "trial"))
    unique: dict[str, Condition] = {}
    for cond in pool:
        unique.setdefault(cond.id, cond)
    return list(unique.values())


def pick_conditions(pool: list[Condition], n: int) -> list[Condition]:
    """`n` conditions as different as possible: first the pair that differs in the most
    config keys, then each time the one farthest from those chosen (ties: pool order)."""
    if n < 1:
        raise ConfigError(f"--conditions must be at least 1, not {n}")
    if len(pool) <= n:
        return list(pool)
    chosen = [pool[0]]
    if n >= 2:
        best = max(
            ((i, j) for i in range(len(pool)) for j in range(i + 1, len(pool))),
            key=lambda ij: (_distance(pool[ij[0]], pool[ij[1]]), -ij[0], -ij[1]),
        )
        chosen = [pool[best[0]], pool[best[1]]]
    while len(chosen) < n:
        rest = [c for c in pool if c not in chosen]
        chosen.append(max(rest, key=lambda c: min(_distance(c, d) for d in chosen)))
    return chosen


def trial_plan(
    campaign: Campaign,
    stage: StageSpec,
    conds: list[Condition],
    *,
    budget_s: float,
    data: Path | None,
) -> dict[str, Any]:
    """The plan a trial runs: what `freeze` would sign for these conditions, with the
    trial's budget and the stage's first cell (configs resolved and checked the same way),
    the stage's rule, no parent and no effect set; its spec says it is a trial (it is
    never signed)."""
    runner = runner_identity(campaign)
    data_sha = None
    if campaign.runner is None:
        data_path = data or (Path(campaign.data) if campaign.data else DEFAULT_DATA)
        data_sha = data_fingerprint(data_path)
        if data_sha is None:
            raise CampaignError(
                f"{campaign.path}: the data set {data_path} does not exist or holds no text; "
                f"prepare it with `dvc repro corpus` (or `python -m runner.data prepare --out "
                f"{DEFAULT_DATA}`), or pass --data PATH"
            )
    table = {c.id: c.to_dict() for c in conds}
    if campaign.runner is None:
        for info in table.values():
            info["runner_config"] = runner_config(campaign, info["name"], info["config"])
    check_foreign_configs(campaign, [(c.name, c.config) for c in conds])
    seed, host = stage.cells[0]
    return {
        "campaign": campaign.name,
        "stage": stage.name,
        "budget_s": budget_s,
        "gpus": stage.gpus,
        "cells": [[seed, host]],
        "runs": [{"condition": c.id, "seed": seed, "host": host} for c in conds],
        "conditions": table,
        "rule": stage.written_rule,
        "checks": stage.written_checks,
        "analysis": {"metric": campaign.metric},
        "runner": runner,
        "data_sha256": data_sha,
        "parent": None,
        "spec": {"trial": True},
        "seeds": seed_plan(),
    }


def _tail(data: bytes, lines: int = TAIL_LINES) -> list[str]:
    text = data.decode("utf-8", errors="replace").replace("\r", "\n")
    return [ln for ln in text.splitlines() if ln.strip()][-lines:]


def judge(plan_id: str, plan: dict[str, Any], result: RunResult, wall: float) -> TrialRun:
    """What ingest would do with this result: record it (with which status) or refuse it,
    and why; `wall` is the time from launch to result (the journaled interval's stand-in)."""
    task = result.task
    parsed = parse_raw_log(result.raw, result.fmt)
    status = result.status_override or parsed.status
    reasons = log_defects(parsed) + run_problems(
        plan_id,
        Plan.model_validate(plan),
        task.condition,
        task.seed,
        task.host,
        parsed,
        status=status,
        interval_s=wall,
        deadline_s=result.deadline_s,
    )
    reasons = grouped_reasons(reasons)
    outcome = "refused" if reasons else status
    return TrialRun(
        name=task.name,
        condition=task.condition,
        config=dict(task.config),
        seed=task.seed,
        effective_seed=task.effective_seed,
        host=task.host,
        outcome=outcome,
        metrics=dict(parsed.metrics),
        reasons=reasons,
        failure=failure_reason(parsed, result.stderr) if outcome != "ok" else "",
        stderr_tail=_tail(result.stderr) if outcome != "ok" else [],
        log_tail=_tail(result.raw) if outcome != "ok" else [],
        exit_code=result.exit_code,
        wall_seconds=wall,
    )


def try_stage(
    campaign: Campaign,
    stage_name: str,
    *,
    budget_s: float = 10.0,
    conditions: int = 2,
    data: Path | None = None,
    device: str = "auto",
    jobs: int = 1,
    grace_s: float | None = None,
    progress: bool = False,
) -> TrialReport:
    """Run `conditions` of the stage's conditions for `budget_s` each, in a scratch folder,
    and say what `ledger run` would record for each (nothing is written to any store)."""
    stage = campaign.stage(stage_name)
    chosen = pick_conditions(trial_pool(campaign, stage), conditions)
    plan = trial_plan(campaign, stage, chosen, budget_s=budget_s, data=data)
    plan_id = sha256_hex(canonical_bytes(plan))
    typed = Plan.model_validate(plan)
    tasks = manifest_tasks(plan_id, typed)
    data_path = data or (Path(campaign.data) if campaign.data else None)  # as `ledger run`
    runs = _execute(plan_id, plan, tasks, data_path, device, jobs, grace_s, progress)
    order = {t.condition: i for i, t in enumerate(tasks)}
    runs.sort(key=lambda r: order[r.condition])
    return TrialReport(
        campaign=campaign.name,
        stage=stage.name,
        budget_s=budget_s,
        plan_id=plan_id,
        runner=typed.runner,
        binding=binding_level(plan).to_dict(),
        keys_checked=keys_checked(campaign.runner),
        runs=runs,
        notes=[] if keys_checked(campaign.runner) else [_unchecked(campaign)],
        metric=campaign.metric,
    )


def _unchecked(campaign: Campaign) -> str:
    keys = [f.key for f in campaign.factors] + [k for o in campaign.named.values() for k in o]
    return unchecked_note(campaign.base, keys)


def _execute(
    plan_id: str,
    plan: dict[str, Any],
    tasks: list[RunTask],
    data: Path | None,
    device: str,
    jobs: int,
    grace_s: float | None,
    progress: bool,
) -> list[TrialRun]:
    started: dict[str, float] = {}

    def on_start(task: RunTask) -> bool:
        started[task.key] = time.monotonic()
        return True

    out = []
    bar = _progress(len(tasks), str(plan["stage"]), progress)
    with tempfile.TemporaryDirectory(prefix="ledger-try-") as scratch:
        executor = LocalExecutor(
            workdir=Path(scratch), jobs=jobs, device=device, data=data, grace_s=grace_s
        )
        for result in executor.execute(tasks, on_start):
            wall = time.monotonic() - started[result.task.key]
            out.append(judge(plan_id, plan, result, wall))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return out


def _progress(total: int, stage: str, enabled: bool) -> Any:
    """A tqdm bar on stderr (runs done/left), or None when disabled."""
    if not enabled or total == 0:
        return None
    from tqdm import tqdm  # tqdm: ~0.1 s measured, paid only when a bar is drawn

    return tqdm(total=total, desc=f"try {stage}", unit="run", dynamic_ncols=True, leave=False)


__all__ = ["TrialReport", "TrialRun", "pick_conditions", "trial_plan", "trial_pool", "try_stage"]
