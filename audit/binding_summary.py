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
from typing import Any

from audit.gates import StageAudit
from ledger.binding_level import BUILTIN, weakest


def binding_summary(stages: Sequence[StageAudit]) -> dict[str, Any]:
    """The weakest level of the stages in force and each stage's level (the caveats they
    call for are `audit.caveats`', with every other caveat)."""
    live = [s for s in stages if not s.superseded]
    rows = [
        {"stage": s.stage, "campaign": s.campaign, "manifest": s.manifest, **s.binding.to_dict()}
        for s in live
    ]
    low = weakest([s.binding for s in live])
    return {"weakest": low.level if low else None, "stages": rows}


__all__ = ["BUILTIN", "binding_summary"]
