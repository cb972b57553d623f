"""Where a campaign stands while it runs: per stage runs done and left, running now, ETA,
GPU-hours so far, decided or not. `ledger status --watch` redraws this at an interval.

Why from the journals alone: they are append-only and every host's `ledger run` writes its
starts and records there before anything else, so a reader in another process (or on a
reviewer's copy) sees progress without touching the runner or the index. Run records are
immutable objects, so the numbers read from one are kept for the life of a `Progress`.

An attempt with no outcome yet is running only while the `ledger run` that claimed it
lives: on this machine its owner file names the process (`stages.claims.attempt_alive`);
elsewhere, a start older than twice the budget plus five minutes cannot be running. A dead
attempt is shown as dead, never with an ETA; the next `ledger run` closes it on record.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.decision_model import Decision
from ledger.document import parse
from ledger.documents import RunRecord
from ledger.errors import IntegrityError, UnknownStage
from ledger.ingest import open_attempts, recorded_runs, seconds_between, started_runs
from ledger.plan_model import Manifest
from ledger.provenance import run_gpus
from ledger.store import Store
from stages.campaign import Campaign
from stages.claims import attempt_alive
from stages.lookup import Entry, all_decisions, all_manifests

STALE_FACTOR = 2.0  # a start older than this many budgets (+ STALE_SLACK_S) is not running
STALE_SLACK_S = 300.0


@dataclass
class StageProgress:
    """One stage (or baseline step) as a progress view shows it."""

    stage: str
    campaign: str
    kind: str  # gate | baseline
    budget_s: float | None
    manifest: str | None = None
    declared: int | None = None  # None: not frozen yet
    recorded: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    running: list[dict[str, Any]] = field(default_factory=list)  # {run, condition, since_s}
    dead: list[dict[str, Any]] = field(default_factory=list)  # attempts no process runs
    gpu_hours: float = 0.0
    mean_run_s: float | None = None  # journaled start to record, over recorded runs
    decision: str | None = None
    promoted: list[str] = field(default_factory=list)

    @property
    def left(self) -> int | None:
        return None if self.declared is None else max(self.declared - self.recorded, 0)

    @property
    def eta_s(self) -> float | None:
        """Seconds until the last declared run is recorded, at the pace seen so far: runs
        left x mean start-to-record seconds / runs in flight (None without a pace)."""
        left = self.left
        if not left:
            return 0.0 if left == 0 else None
        if self.mean_run_s is None or not self.running:
            return None
        return left * self.mean_run_s / len(self.running)

    @property
    def finished(self) -> bool:
        """Every declared run recorded and nothing in flight."""
        return self.declared is not None and self.left == 0 and not self.running

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "campaign": self.campaign,
            "kind": self.kind,
            "budget_s": self.budget_s,
            "manifest": self.manifest,
            "declared": self.declared,
            "recorded": self.recorded,
            "left": self.left,
            "statuses": dict(sorted(self.statuses.items())),
            "running": self.running,
            "dead": self.dead,
            "gpu_hours": self.gpu_hours,
            "mean_run_s": self.mean_run_s,
            "eta_s": self.eta_s,
            "finished": self.finished,
            "decision": self.decision,
            "promoted": self.promoted,
        }


class Progress:
    """Reads progress from a store, keeping what it read of immutable run records."""

    def __init__(
        self,
        store: Store,
        campaign: Campaign | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.campaign, self._now = store, campaign, now
        self._records: dict[str, RunRecord] = {}

    def _record(self, record_id: str) -> RunRecord:
        if record_id not in self._records:
            body = self.store.get_json(record_id)["body"]
            self._records[record_id] = parse(RunRecord, body, f"run {record_id}", IntegrityError)
        return self._records[record_id]

    def stages(self) -> list[StageProgress]:
        """Every stage in force (baselines too), in freeze order; with a campaign, its
        stages in file order (those not frozen yet included) and no other campaign's."""
        manifests = all_manifests(self.store)
        superseded = {m.body.amends for m in manifests}
        live = [m for m in manifests if m.id not in superseded]
        if self.campaign is not None:
            live = [m for m in live if m.body.campaign == self.campaign.name]
        decisions = {d.body.manifest: d for d in all_decisions(self.store)}
        by_stage = {m.body.stage: m for m in live}
        out = [self._one(m, decisions.get(m.id)) for m in live]
        if self.campaign is not None:
            ordered = []
            for spec in self.campaign.stages:
                entry = by_stage.get(spec.name)
                ordered.append(
                    next(p for p in out if p.manifest == entry.id)
                    if entry
                    else StageProgress(spec.name, self.campaign.name, "gate", spec.budget_s)
                )
            ordered += [p for p in out if p.stage not in {s.name for s in self.campaign.stages}]
            out = ordered
        return out

    def _unended(self, manifest: str, candidates: set[str]) -> set[str]:
        """Runs among `candidates` with an attempt that has no outcome: on this host, per
        its journal's counts (an interrupted attempt is over); elsewhere, a start without
        a record."""
        mine = open_attempts(self.store, manifest)
        host = self.store.host
        return {run for run in candidates if run in mine or not run.endswith(f"/{host}")}

    def _one(self, manifest: Entry[Manifest], decision: Entry[Decision] | None) -> StageProgress:
        body = manifest.body
        kind = "baseline" if "baseline" in body.spec else "gate"
        budget = float(body.budget_s)
        row = StageProgress(body.stage, body.campaign, kind, budget, manifest.id, len(body.runs))
        names = {cid: info.name for cid, info in body.conditions.items()}
        recorded = recorded_runs(self.store, manifest.id)
        starts = started_runs(self.store, manifest.id)
        row.recorded = len(recorded)
        durations = []
        for run, record_id in recorded.items():
            record = self._record(record_id)
            row.statuses[record.status] += 1
            seconds = record.metrics.training_seconds
            if seconds is not None and math.isfinite(seconds):
                row.gpu_hours += float(seconds) * run_gpus(body) / 3600.0
            if run in starts:
                span = seconds_between(starts[run], record.recorded_at)
                if span is not None and span >= 0:
                    durations.append(span)
        row.mean_run_s = sum(durations) / len(durations) if durations else None
        now = self._now().isoformat()
        unended = self._unended(manifest.id, set(starts) - set(recorded))
        for run in sorted(unended):
            age = seconds_between(starts[run], now)
            cid, _, cell = run.partition("/")
            attempt = {
                "run": run,
                "condition": names.get(cid, cid[:8]),
                "cell": cell,
                "since_s": age,
            }
            alive = attempt_alive(self.store, manifest.id, run)
            too_old = age is not None and age > STALE_FACTOR * budget + STALE_SLACK_S
            if alive is False or (alive is None and too_old):
                why = "its `ledger run` is gone" if alive is False else "older than it could run"
                row.dead.append({**attempt, "why": why})
            else:
                row.running.append(attempt)
        if decision is not None:
            row.decision = decision.id
            row.promoted = [decision.body.name(c) for c in decision.body.promoted]
        return row


def campaign_done(
    rows: list[StageProgress], campaign: Campaign | None, stage: str | None = None
) -> bool:
    """When a watch stops: the named stage finished; else, with a campaign, every stage
    decided; else every frozen stage finished (runs all recorded, none in flight)."""
    if stage is not None:
        match = [r for r in rows if r.stage == stage]
        if not match:
            raise UnknownStage(
                f"no stage {stage!r} to watch "
                f"(stages: {', '.join(r.stage for r in rows) or 'none frozen'})"
            )
        return all(r.finished for r in match)
    if campaign is not None:
        return all(r.decision is not None for r in rows if r.kind == "gate")
    frozen = [r for r in rows if r.declared is not None]
    return bool(frozen) and all(r.finished for r in frozen)


__all__ = ["Progress", "StageProgress", "campaign_done"]
