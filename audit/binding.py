"""What a clean audit proves about each stage's logs, said next to the verdict.

Why: every check passing means something different for a builtin runner's logs (code, data,
config, seed and budget bound by the header) than for autoresearch summary blocks, which
carry no header: the audit can only check that each status has its evidence and each number
is what the log prints. The level comes from each frozen manifest (`ledger.binding_level`);
this module words it once for the terminal, the JSON, the HTML banner and metrics.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from audit.gates import StageAudit
from ledger.binding_level import BUILTIN, HEADER, STATUS_ONLY, weakest


def binding_summary(stages: Sequence[StageAudit]) -> dict[str, Any]:
    """The weakest level of the stages in force, each stage's level, and the caveats."""
    live = [s for s in stages if not s.superseded]
    rows = [
        {"stage": s.stage, "campaign": s.campaign, "manifest": s.manifest, **s.binding.to_dict()}
        for s in live
    ]
    low = weakest([s.binding for s in live])
    return {
        "weakest": low.level if low else None,
        "stages": rows,
        "caveats": binding_caveats(rows),
    }


def _names(rows: Sequence[dict[str, Any]]) -> str:
    return ", ".join(dict.fromkeys(str(r["stage"]) for r in rows))


def binding_caveats(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per binding level below the builtin runner's: which stages, what is not
    proved for their logs."""
    out = []
    status_only = [r for r in rows if r["level"] == STATUS_ONLY]
    if status_only:
        out.append(
            f"Status-only logs ({_names(status_only)}): autoresearch summary blocks without a "
            f"header, so the audit checked each status against its evidence and each number "
            f"against the log, but nothing proves which config, seed or budget a run trained "
            f"with, or that it ran after its manifest was frozen (use the autoresearch adapter "
            f"or a jsonl log with a header; docs/runner.md)."
        )
    header = [r for r in rows if r["level"] == HEADER]
    if header:
        unbound = sorted({u for r in header for u in r["unbound"]})
        out.append(
            f"Foreign runner ({_names(header)}): each log's header binds it to its run "
            f"({', '.join(dict.fromkeys(b for r in header for b in r['bound']))}); "
            f"{' and '.join(unbound)} are not bound by the ledger."
        )
    return out


def is_status_only(summary: dict[str, Any] | None) -> bool:
    """Whether any stage in force has status-only logs (a clean verdict must say so)."""
    return bool(summary) and (summary or {}).get("weakest") == STATUS_ONLY


__all__ = ["BUILTIN", "binding_caveats", "binding_summary", "is_status_only"]
