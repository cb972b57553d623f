"""Run a whole campaign in order: for each stage freeze (if not yet), run what is left, decide.

Why: the main job (`dvc repro`) and a user with one machine want one resumable command that
walks the protocol gate by gate; each step is still the same `freeze`/`run`/`decide` function,
so the ledger looks exactly as if they had been typed one by one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.documents import RunRecord
from ledger.errors import LedgerError, RunsFailed
from ledger.ingest import recorded_runs
from ledger.keys import SigningKey
from ledger.rawlog import failure_reason, parse_raw_log
from ledger.store import Store, read_document
from stages.campaign import Campaign
from stages.decide import decide_stage
from stages.execute import RunFailure, RunReport, run_stage
from stages.executors.base import Executor
from stages.lookup import current_manifest, manifest_decision
from stages.plan import freeze_stage


@dataclass
class StepLog:
    """What the campaign walk did at each stage."""

    steps: list[dict[str, Any]] = field(default_factory=list)

    def add(self, stage: str, action: str, **detail: Any) -> None:
        self.steps.append({"stage": stage, "action": action, **detail})


def run_campaign(
    store: Store,
    campaign: Campaign,
    key: SigningKey,
    executor: Executor,
    *,
    until: str | None = None,
    host: str | None = None,
    progress: bool = True,
    say: Callable[[str], None] = lambda _line: None,
    on_signed: Callable[[str, str], None] | None = None,
    witnessed: bool = False,
) -> StepLog:
    """Freeze, run and decide every stage in file order (up to `until`), resuming as needed.

    `on_signed(object_id, kind)` is called after each new manifest ("freeze") and decision
    ("decision"): the command line timestamps them there (`ledger.timestamp`); `witnessed`
    says it will, so manifests bind their seeds to the freeze's token (`ledger.seeds`).
    """
    if until is not None:
        campaign.stage(until)  # an unknown name is an error before anything runs
    log = StepLog()
    for spec in campaign.stages:
        manifest = current_manifest(store, campaign.name, spec.name)
        if manifest is None:
            manifest_id = freeze_stage(
                store,
                campaign,
                spec.name,
                key,
                for_simulation=executor.name == "sim",
                witnessed=witnessed,
            )
            log.add(spec.name, "froze", manifest=manifest_id)
            say(f"{spec.name}: froze manifest {manifest_id[:12]}")
            if on_signed is not None:
                on_signed(manifest_id, "freeze")
        else:
            manifest_id = manifest.id
        if manifest_decision(store, manifest_id) is None:
            report = run_stage(
                store, campaign, spec.name, executor, key=key, host=host, progress=progress
            )
            detail = {k: v for k, v in report.to_dict().items() if k != "stage"}
            log.add(spec.name, "ran", **detail)
            say(
                f"{spec.name}: {report.executed} run(s) executed, {report.already} already recorded"
            )
            stop_on_failure(spec.name, report)
            refuse_all_failed(store, manifest_id, spec.name)
            decision_id, decision = decide_stage(store, campaign, spec.name, key)
            names = [decision.name(c) for c in decision.promoted]
            log.add(spec.name, "decided", decision=decision_id, promoted=names)
            say(f"{spec.name}: decision {decision_id[:12]} promotes {', '.join(names) or 'none'}")
            if on_signed is not None:
                on_signed(decision_id, "decision")
        else:
            log.add(spec.name, "already decided")
        if spec.name == until:
            break
    return log


def stop_on_failure(stage: str, report: RunReport) -> None:
    """Do not decide a gate on runs that could not be recorded or all crashed: say why."""
    if report.refused:
        first = report.refused[0]
        raise RunsFailed(
            f"{stage}: {len(report.refused)} run(s) refused at ingest, not recorded "
            f"(first: {first.reason}); fix the runner and run the stage again"
        )
    if report.all_crashed:
        reasons = [f.reason for f in report.failures if f.reason]
        why = f" (first: {reasons[0]})" if reasons else ""
        raise RunsFailed(f"{stage}: all {report.executed} run(s) crashed{why}; not deciding")


def refuse_all_failed(store: Store, manifest_id: str, stage: str) -> None:
    """Do not sign a gate none of whose recorded runs finished ok: say why they failed."""
    bodies = [
        read_document(store, rid, "run", RunRecord)
        for rid in recorded_runs(store, manifest_id).values()
    ]
    if bodies and not any(b.status == "ok" for b in bodies):
        reasons = [r for r in (run_failure_reason(store, b) for b in bodies) if r]
        why = f" (first: {reasons[0]})" if reasons else ""
        raise RunsFailed(
            f"{stage}: none of its {len(bodies)} recorded run(s) finished ok{why}; "
            f"not deciding (fix the runs, or `ledger decide {stage}` to sign an "
            f"empty promotion on purpose)"
        )


def run_failure_reason(store: Store, body: RunRecord) -> str:
    """A recorded run's failure reason from its stored log and stderr tail."""
    try:
        parsed = parse_raw_log(store.get_bytes(body.raw_log), body.format)
    except LedgerError:
        parsed = None
    try:
        stderr = store.get_bytes(body.stderr) if body.stderr else None
    except LedgerError:
        stderr = None
    return failure_reason(parsed, stderr)


@dataclass
class StageStanding:
    """Where one campaign stage stands: frozen (its manifest, runs declared), runs recorded
    (by status, the failed ones named with why), decided (what it promoted)."""

    stage: str
    budget_s: float
    manifest: str | None = None
    declared: int | None = None
    recorded: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    decision: str | None = None
    promoted: list[str] = field(default_factory=list)
    failures: list[RunFailure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """What `ledger status --campaign --json` prints for the stage."""
        return {
            "stage": self.stage,
            "budget_s": self.budget_s,
            "manifest": self.manifest,
            "declared": self.declared,
            "recorded": self.recorded,
            "statuses": dict(self.statuses),
            "decision": self.decision,
            "promoted": self.promoted,
            "failures": [f.to_dict() for f in self.failures],
        }


def campaign_progress(store: Store, campaign: Campaign) -> list[StageStanding]:
    """Where each stage stands: frozen?, runs recorded of declared (by status), decided?"""
    out = []
    for spec in campaign.stages:
        manifest = current_manifest(store, campaign.name, spec.name)
        row = StageStanding(spec.name, spec.budget_s)
        if manifest is not None:
            row.manifest = manifest.id
            row.declared = len(manifest.body.runs)
            recorded = recorded_runs(store, manifest.id)
            row.recorded = len(recorded)
            conditions = manifest.body.conditions
            for record_id in recorded.values():
                body = read_document(store, record_id, "run", RunRecord)
                row.statuses[body.status] += 1
                if body.status != "ok":
                    info = conditions.get(body.condition or "")
                    name = info.name if info is not None else "?"
                    reason = run_failure_reason(store, body)
                    row.failures.append(RunFailure(body.run, name, body.status, reason))
            decision = manifest_decision(store, manifest.id)
            if decision is not None:
                row.decision = decision.id
                row.promoted = [decision.body.name(c) for c in decision.body.promoted]
        out.append(row)
    return out
