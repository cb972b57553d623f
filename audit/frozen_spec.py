"""The `spec` a manifest froze, read as models: a campaign stage's or a baseline step's.

Why here: a plan keeps its spec as written (`Plan.spec`: freeze compares it with the
campaign file key by key), so the plan model holds it as a mapping. The audit re-derives a
stage from it, and reads it through these models: a campaign stage's spec is the part of
the campaign file the stage used (`stages.plan.stage_spec`), a baseline step's says how
its search drew it (`stages.baselines`). One that does not fit is said, naming the key.
"""

from __future__ import annotations

from typing import Any

from ledger.document import Document
from ledger.plan_model import Plan

Number = int | float


class FrozenStage(Document):
    """A campaign stage's spec: its `[[stages]]` table and the campaign's base, factors,
    named conditions, metric and runner, each as the campaign file wrote it."""

    stage: dict[str, Any]
    base: dict[str, Any] | None = None
    factors: dict[str, Any] | None = None
    named: dict[str, Any] | None = None
    metric: str = "val_bpb"
    runner: dict[str, Any] | None = None


class BaselineSpec(Document):
    """A baseline step's `spec.baseline`: the search (`kind`), the budget label, and a
    random sample's seed and matched GPU-hours, or a greedy walk's step, flip and start."""

    kind: str | None = None
    budget: str | None = None
    seed: int | None = None
    match: str | None = None
    match_gpu_hours: Number | None = None
    affordable: int | None = None
    sampled: int | None = None
    step: int | None = None
    flip: str | None = None
    start: str | None = None


def stage_from(plan: Plan) -> str | None:
    """The stage a campaign stage's spec says it continues (its table's `from`), if any."""
    table = plan.spec.get("stage")
    parent = table.get("from") if isinstance(table, dict) else None
    return parent if isinstance(parent, str) and parent else None


def baseline_spec(plan: Plan) -> BaselineSpec:
    """The plan's `spec.baseline` (ValidationError when it does not fit; empty when none)."""
    return BaselineSpec.model_validate(plan.spec.get("baseline", {}))


__all__ = ["BaselineSpec", "FrozenStage", "baseline_spec", "stage_from"]
