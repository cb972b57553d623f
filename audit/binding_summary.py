"""What a clean audit proves about each stage's logs, said next to the verdict.

Why: every check passing means something different for a builtin runner's logs (code, data,
config, seed and budget bound by the header) than for autoresearch summary blocks, which
carry no header: the audit can only check that each status has its evidence and each number
is what the log prints. The level comes from each frozen manifest (`ledger.binding_level`);
this module sums it up for the JSON and metrics.json; `audit.caveats` words what it does not
prove, with every other caveat, for the terminal, the JSON, the HTML banner and metrics.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from audit.gates import StageAudit
from ledger.binding_level import BUILTIN, BindingLevel, weakest


@dataclass(frozen=True)
class StageBinding:
    """One stage in force and the level its manifest gives its logs."""

    stage: str
    campaign: str
    manifest: str
    binding: BindingLevel

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "campaign": self.campaign,
            "manifest": self.manifest,
            **self.binding.to_dict(),
        }


@dataclass(frozen=True)
class BindingSummary:
    """The weakest level of the stages in force (None: no stage), and each stage's."""

    weakest: str | None
    stages: tuple[StageBinding, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"weakest": self.weakest, "stages": [s.to_dict() for s in self.stages]}


def binding_summary(stages: Sequence[StageAudit]) -> BindingSummary:
    """The weakest level of the stages in force and each stage's level (the caveats they
    call for are `audit.caveats`', with every other caveat)."""
    live = [s for s in stages if not s.superseded]
    low = weakest([s.binding for s in live])
    return BindingSummary(
        low.level if low else None,
        tuple(StageBinding(s.stage, s.campaign, s.manifest, s.binding) for s in live),
    )


__all__ = ["BUILTIN", "BindingSummary", "StageBinding", "binding_summary"]
