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
from stages.campaign import Campaign, StageSpec
from stages.decide import derive_decision
from stages.evaluation_sources import TrialDraws
from stages.lookup import Entry
from stages.plan import parent_stage, runner_identity, stage_plan


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


class ProtocolWalker:
    """Walks the campaign's stages in file order; plans are cached by (stage, parent)."""

    def __init__(self, campaign: Campaign, *, resolve_configs: bool = True) -> None:
        self.campaign = campaign
        self.runner = runner_identity(campaign)
        self.resolve_configs = resolve_configs
        self._plans: dict[tuple[str, str | None], tuple[str, dict[str, Any]]] = {}

    def _plan(self, stage: StageSpec, parent: Entry | None) -> tuple[str, dict[str, Any]] | None:
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
                if parent is not None and not parent.body.get("promoted"):
                    return None  # the previous gate promoted nothing: the protocol ends there
                raise
            self._plans[key] = (_digest(plan), plan)
        return self._plans[key]

    def walk(self, draws: TrialDraws) -> Walk:
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
            metric, budget, gpus = plan["analysis"]["metric"], plan["budget_s"], plan["gpus"]
            for i, run in enumerate(plan["runs"]):
                cid, seed, host = run["condition"], run["seed"], run["host"]
                info = {"id": cid, **plan["conditions"][cid]}
                got, charge = draws.run((cid, seed, host), info, budget, host, gpus, seed=seed)
                gpu_s += charge
                runs.append(
                    (
                        f"{i:08d}",
                        {
                            "manifest": manifest_id,
                            "condition": cid,
                            "seed": seed,
                            "host": host,
                            "status": got.status,
                            "gpus": gpus,
                            "metrics": {metric: got.value, "training_seconds": charge / gpus},
                            "recorded_at": "",
                        },
                    )
                )
            body = derive_decision(manifest_id, plan, runs)
            for cid, info in {**plan["conditions"], **body["conditions"]}.items():
                out.names.setdefault(cid, info["name"])
            decision_id = _digest([manifest_id, body["promoted"]])
            decisions[stage.name] = Entry(decision_id, body, "evaluate", -1, "")
            out.gates.append(
                GateResult(
                    stage.name,
                    budget,
                    list(plan["conditions"]),
                    list(body["promoted"]),
                    body["outcome"].get("best"),
                    body["statistics"].get("effects"),
                    gpu_s,
                )
            )
        return out
