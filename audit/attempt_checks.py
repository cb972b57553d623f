"""Every attempt on record, per cell: how often each run was started, how each attempt
ended, whether the plan's `max_attempts` held, and what interrupted attempts cost.

Why from the journals: a `run_started` event is the only evidence that an attempt
happened, and the journal (a hash chain with a signed head) is the one source that fixes
how many there were; records and interruptions close them (`ledger.attempts`). A cell
attempted more often than its plan allows, or a decided stage with an attempt that never
ended, is a finding naming the stage, condition, seed and host.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from audit.costs import CostRow
from audit.evidence import Evidence
from audit.locate import cell_place
from audit.runs import run_problem
from ledger.attempts import count_attempts
from ledger.documents import Interruption
from ledger.errors import LedgerError
from ledger.manifest import max_attempts
from ledger.plan_model import Manifest
from ledger.problems import Problem
from ledger.provenance import log_source, run_gpus
from ledger.verify import Event, seconds_between

ATTEMPT_EVENTS = ("run_started", "run_recorded", "run_interrupted")
# An attempt's wall time is bounded by when it was closed, and at most this horizon after
# its start (the point from which `ledger status` calls an unclosed start dead).
HORIZON_FACTOR, HORIZON_SLACK_S = 2.0, 300.0


@dataclass(frozen=True)
class RetriedRun:
    """A cell attempted more than once, or interrupted: how often, and how it ended."""

    run: str
    name: str | None
    attempts: int
    interrupted: int
    recorded: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "name": self.name,
            "attempts": self.attempts,
            "interrupted": self.interrupted,
            "recorded": self.recorded,
        }


@dataclass
class AttemptSummary:
    """A stage's attempts counted from the journals: the frozen bound (None: frozen before
    attempts were bounded), starts, outcomes, open ones, and the cells tried again."""

    max: int | None
    started: int
    recorded: int
    interrupted: int
    open: int
    retried: list[RetriedRun] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max": self.max,
            "started": self.started,
            "recorded": self.recorded,
            "interrupted": self.interrupted,
            "open": self.open,
            "retried": [r.to_dict() for r in self.retried],
        }


@dataclass
class AttemptAudit:
    """One manifest's attempts: the summary for the report and the findings by check."""

    summary: AttemptSummary
    over_max: list[Problem] = field(default_factory=list)
    unended: list[Problem] = field(default_factory=list)


def _cell(run: str) -> tuple[str, int | None, str]:
    """A `condition/seed/host` key as written in the journal (seed None when not a number)."""
    condition, _, rest = run.partition("/")
    seed_text, _, host = rest.partition("/")
    try:
        seed: int | None = int(seed_text)
    except ValueError:
        seed = None
    return condition, seed, host


def audit_attempts(ev: Evidence, mid: str, manifest: Manifest, decided: bool) -> AttemptAudit:
    """Count each cell's attempts and outcomes; check them against the frozen bound."""
    events = [(e.host, e.record) for kind in ATTEMPT_EVENTS for e in ev.for_manifest(kind, mid)]
    cells = count_attempts(events, mid)
    bound = max_attempts(manifest)
    out = AttemptAudit(
        AttemptSummary(
            max=bound,
            started=sum(c.started for c in cells.values()),
            recorded=sum(c.recorded for c in cells.values()),
            interrupted=sum(c.interrupted for c in cells.values()),
            open=sum(c.open for c in cells.values()),
        )
    )
    for run, cell in sorted(cells.items()):
        place = cell_place(manifest, *_cell(run))
        name = place.condition_name
        if cell.started > 1 or cell.interrupted:
            out.summary.retried.append(
                RetriedRun(run, name, cell.started, cell.interrupted, cell.recorded)
            )
        if bound is not None and cell.started > bound:
            out.over_max.append(
                run_problem(
                    mid,
                    f"run {name or run} ({run}) was attempted {cell.started} times; the plan "
                    f"allows {bound} (max_attempts)",
                    place,
                    check="attempts within max_attempts",
                    recorded=bound,
                    found=cell.started,
                )
            )
        if cell.recorded + cell.interrupted > cell.started:
            out.unended.append(
                run_problem(
                    mid,
                    f"run {run} has {cell.recorded + cell.interrupted} outcome(s) for "
                    f"{cell.started} journaled start(s)",
                    place,
                    check="every attempt has an outcome",
                )
            )
        elif cell.open and decided and bound is not None:
            out.unended.append(
                run_problem(
                    mid,
                    f"{cell.open} attempt(s) of run {run} (started {cell.starts[-1]}) have no "
                    f"outcome, and the stage is decided: close them with `ledger run` on "
                    f"host {', '.join(sorted(cell.hosts))}",
                    place,
                    check="every attempt has an outcome",
                )
            )
    return out


def interrupted_rows(ev: Evidence, manifests: dict[str, Manifest]) -> list[CostRow]:
    """One cost row (`audit.costs.cost_breakdown`) per accepted interrupted attempt: its
    wall seconds from its journaled start to its interruption (capped at the horizon), the
    training seconds its partial log reports, and the manifest's GPUs."""
    rows = []
    starts = _starts(ev)
    for oid, stop in sorted(ev.interruptions.items()):
        manifest = manifests.get(stop.manifest)
        closed = ev.event("run_interrupted", oid)
        if manifest is None or closed is None:
            continue
        start = _start_before(starts[(closed.host, stop.run)], closed)
        wall = seconds_between(start.at, closed.at) if start is not None else None
        horizon = HORIZON_FACTOR * float(manifest.budget_s) + HORIZON_SLACK_S
        place = cell_place(manifest, *_cell(stop.run))
        condition = place.condition or "?"
        rows.append(
            CostRow(
                stage=manifest.stage,
                condition=condition,
                name=place.condition_name or condition[:8],
                host=place.host or "?",
                status="interrupted",
                training_seconds=_partial_training(ev, stop, manifest),
                wall_seconds=min(max(wall or 0.0, 0.0), horizon),
                gpus=run_gpus(manifest),
            )
        )
    return rows


def _starts(ev: Evidence) -> dict[tuple[str, str], list[Event]]:
    out: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in ev.events:
        if event.kind == "run_started" and event.run is not None:
            out[(event.host, event.run)].append(event)
    return out


def _start_before(starts: list[Event], closed: Event) -> Event | None:
    earlier = [e for e in starts if e.index < closed.index]
    return earlier[-1] if earlier else None


def _partial_training(ev: Evidence, stop: Interruption, manifest: Manifest) -> float:
    """Training seconds the partial log shows (its last step's), 0 without a log."""
    if stop.raw_log is None:
        return 0.0
    try:
        parsed = ev.parse_log(stop.raw_log, log_source(manifest).fmt)
    except LedgerError:
        return 0.0
    seconds = parsed.metrics["training_seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return 0.0
    return float(seconds) if math.isfinite(seconds) and seconds >= 0 else 0.0


__all__ = ["AttemptSummary", "RetriedRun", "AttemptAudit", "audit_attempts", "interrupted_rows"]
