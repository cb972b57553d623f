"""One in-memory pass through a campaign's protocol, with the code `freeze` and `decide` run.

Each stage's plan comes from `stages.plan.stage_plan` (what `freeze` signs), given the
previous gate's in-memory decision; its runs are answered by a `TrialDraws`; the decision
comes from `stages.decide.derive_decision` (what `decide` and the audit run). Manifest and
decision ids are SHA-256 of the unsigned plan and of the promoted set: synthetic, since
nothing is frozen.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from ledger.errors import LedgerError
from ledger.plan_model import Plan, PlannedCondition
from stages.campaign import Campaign, StageSpec
from stages.conditions import Condition
from stages.decide import derive_decision
from stages.evaluation_sources import TrialDraws
from stages.observations import RecordedRun
from stages.plan import ParentGate, parent_stage, runner_identity, stage_plan


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
    """One pass: each gate's outcome, the names it met, where it stopped (if early)."""

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


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class WalkedRun:
    """One run answered in memory, with the fields a decision reads
    (`stages.observations.RecordedRun`)."""

    manifest: str
    condition: str
    seed: int
    host: str
    status: str
    val: float | None
    metric: str
    recorded_at: str = ""

    def value(self, metric: str) -> float | None:
        return self.val if metric == self.metric else None


class ProtocolWalker:
    """Walks the campaign's stages in file order; plans are cached by (stage, parent)."""

    def __init__(self, campaign: Campaign, *, resolve_configs: bool = True) -> None:
        self.campaign = campaign
        self.runner = runner_identity(campaign)
        self.resolve_configs = resolve_configs
        self._plans: dict[tuple[str, str | None], tuple[str, Plan]] = {}
        self._infos: dict[str, dict[str, Condition]] = {}  # plan id -> its candidates

    def _plan(self, stage: StageSpec, parent: ParentGate | None) -> tuple[str, Plan] | None:
        key = (stage.name, parent.id if parent else None)
        if key not in self._plans:
            try:
                plan = stage_plan(
                    self.campaign,
                    stage,
                    parent,
                    runner=self.runner,
                    data_sha256=None,
                    resolve_configs=self.resolve_configs,
                )
            except LedgerError:
                if parent is not None and not parent.promoted:
                    return None  # the previous gate promoted nothing: the protocol ends there
                raise
            plan_id = _digest(plan)
            typed = Plan.model_validate(plan)
            self._plans[key] = (plan_id, typed)
            self._infos[plan_id] = {
                cid: Condition(cid, info.name, info.config, dict(info.coded), info.origin or "")
                for cid, info in typed.conditions.items()
            }
        return self._plans[key]

    def walk(self, draws: TrialDraws) -> Walk:
        out = Walk()
        decisions: dict[str, ParentGate] = {}
        for stage in self.campaign.stages:
            parent_spec = parent_stage(self.campaign, stage)
            # a parent is an earlier stage, decided above (a walk that stopped broke out)
            parent = decisions[parent_spec.name] if parent_spec else None
            planned = self._plan(stage, parent)
            if planned is None:
                out.stopped = stage.name
                break
            manifest_id, plan = planned
            runs: list[tuple[str, RecordedRun]] = []
            gpu_s = 0.0
            metric, budget, gpus = plan.metric, plan.budget_s, plan.gpus
            infos = self._infos[manifest_id]
            for i, run in enumerate(plan.runs):
                cid, seed, host = run.condition, run.seed, run.host
                got, charge = draws.run(
                    (cid, seed, host), infos[cid], budget, host, gpus, seed=seed
                )
                gpu_s += charge
                status, value = got.status, got.value
                runs.append(
                    (f"{i:08d}", WalkedRun(manifest_id, cid, seed, host, status, value, metric))
                )
            body = derive_decision(manifest_id, plan, runs)
            promoted_conditions = {
                cid: PlannedCondition.model_validate(info)
                for cid, info in body["conditions"].items()
            }
            for cid, condition in {**plan.conditions, **promoted_conditions}.items():
                out.names.setdefault(cid, condition.name)
            decision_id = _digest([manifest_id, body["promoted"]])
            decisions[stage.name] = ParentGate(
                decision_id, list(body["promoted"]), promoted_conditions
            )
            out.gates.append(
                GateResult(
                    stage.name,
                    budget,
                    list(plan.conditions),
                    list(body["promoted"]),
                    body["outcome"]["best"],  # a campaign stage's gate: `apply_rule` says it
                    body["statistics"]["effects"],
                    gpu_s,
                )
            )
        return out
