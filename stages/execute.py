"""`ledger run STAGE`: execute a frozen manifest's declared runs, resumably, as the one writer.

Order of evidence: the start of each run is journaled before the runner launches, the runner
writes the manifest id into its log header before training, and the end is journaled after
ingest. Runs already recorded are skipped, so an interrupted `run` finishes what is left.
Every attempt ends on record: recorded, or interrupted (a log ingest refused, Ctrl-C, or an
orchestrator that died, closed by the next `run`), and no cell is attempted more often than
its plan's `max_attempts` allows (`stages.claims`).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.attempts import record_interruption
from ledger.documents import RunRecord
from ledger.errors import ConfigError, LedgerError, SigningKeyError
from ledger.ingest import ingest, recorded_runs
from ledger.keys import SigningKey
from ledger.manifest import max_attempts, signs_records
from ledger.plan_model import Manifest, Plan
from ledger.provenance import log_source
from ledger.rawlog import MAX_LOG_BYTES, parse_raw_log
from ledger.rawlog import failure_reason as rawlog_failure_reason
from ledger.seeds import effective_seed, needs_witness, seed_rule
from ledger.store import Store, read_document
from ledger.witness_seed import store_witness
from stages.campaign import Campaign
from stages.claims import ExhaustedRun, RunClaims, close_dead_attempts, partial_logs
from stages.executors.base import Executor, RunResult, RunTask
from stages.lookup import Entry
from stages.plan import frozen_manifest


@dataclass(frozen=True)
class RefusedRun:
    """A run whose log ingest refused: not recorded, an interrupted attempt (re-runnable
    within the plan's `max_attempts`)."""

    run: str  # condition/seed/host
    name: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "name": self.name, "reason": self.reason}


@dataclass(frozen=True)
class RunFailure:
    """A recorded run that did not finish ok: its status, and why (its own error, else
    stderr's last line; '' when neither says)."""

    run: str | None  # condition/seed/host
    name: str
    status: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "name": self.name, "status": self.status, "reason": self.reason}


@dataclass
class RunReport:
    """What one `ledger run` did."""

    manifest: str
    stage: str
    declared: int
    already: int
    executed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    training_gpu_hours: float = 0.0
    records: list[str] = field(default_factory=list)
    skipped_hosts: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # held by another `ledger run` meanwhile
    refused: list[RefusedRun] = field(default_factory=list)  # ingest said no: interrupted
    failures: list[RunFailure] = field(default_factory=list)  # recorded, not ok: why
    exhausted: list[ExhaustedRun] = field(default_factory=list)  # max_attempts reached
    closed: list[str] = field(default_factory=list)  # dead attempts closed as interrupted

    @property
    def all_crashed(self) -> bool:
        """Every run this call executed crashed (or was refused): something is broken."""
        attempted = self.executed + len(self.refused)
        return attempted > 0 and self.statuses["crashed"] + len(self.refused) == attempted

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "stage": self.stage,
            "declared": self.declared,
            "already_recorded": self.already,
            "executed": self.executed,
            "statuses": dict(self.statuses),
            "training_gpu_hours": self.training_gpu_hours,
            "records": self.records,
            "skipped_hosts": self.skipped_hosts,
            "busy": self.busy,
            "refused": [r.to_dict() for r in self.refused],
            "failures": [f.to_dict() for f in self.failures],
            "exhausted": [e.to_dict() for e in self.exhausted],
            "closed_attempts": self.closed,
            "all_crashed": self.all_crashed,
        }


def manifest_tasks(manifest_id: str, plan: Plan, witness: str | None = None) -> list[RunTask]:
    """Every declared run of a manifest as an executor task (sorted as frozen); `witness`
    is the freeze token's digest a witness-bound seed rule needs."""
    return [
        RunTask(
            manifest=manifest_id,
            stage=plan.stage,
            condition=run.condition,
            name=plan.conditions[run.condition].name,
            # the builtin runner gets the config it was frozen with, defaults written out
            config=plan.conditions[run.condition].run_config,
            coded=dict(plan.conditions[run.condition].coded),
            seed=run.seed,
            host=run.host,
            budget_s=plan.budget_s,
            gpus=plan.gpus,
            runner=plan.runner,
            effective_seed=effective_seed(manifest_id, plan, run.condition, run.seed, witness),
            witness=witness,
        )
        for run in plan.runs
    ]


def seed_witness(store: Store, manifest: Entry) -> str | None:
    """The token digest a witness-bound manifest's seeds need (None under other rules).

    Raises:
        LedgerError: the rule needs a token and none is journaled yet.
    """
    if not needs_witness(seed_rule(manifest.body)):
        return None
    found = store_witness(store, manifest.id)
    if found is None:
        raise LedgerError(
            f"manifest {manifest.id[:12]}'s seeds are bound to its timestamp token, and none "
            f"is journaled yet: run `ledger timestamp {manifest.id[:12]} --tsa URL` first"
        )
    return found.digest


def check_executor(manifest: Entry, executor: Executor) -> None:
    """The executor must be able to answer the plan's runner kind (refused before any start:
    a simulated log cannot stand for a real-data plan, nor a trainer for a preview plan)."""
    source = log_source(manifest.body)
    where = f"stage {manifest.body.stage!r} (manifest {manifest.id[:12]})"
    if executor.name == "sim" and not source.simulated:
        raise ConfigError(
            f"{where} was frozen for the {source.kind} runner: the simulator cannot answer it "
            f"(freeze a preview with --sim-only, in another store)"
        )
    if executor.name != "sim" and source.simulated:
        raise ConfigError(
            f"{where} was frozen for the simulator (no data set): run it with --executor sim, "
            f"or freeze the stage with its data set"
        )


def select_host_block(
    tasks: list[RunTask], host: str | None, executor: str
) -> tuple[list[RunTask], list[str]]:
    """Restrict to one host block; a real executor on a multi-host stage needs `--host`."""
    hosts = sorted({t.host for t in tasks})
    if host is not None:
        if host not in hosts:
            raise ConfigError(
                f"host {host!r} has no runs in this stage (hosts: {', '.join(hosts)})"
            )
        return [t for t in tasks if t.host == host], [h for h in hosts if h != host]
    if executor != "sim" and len(hosts) > 1:
        raise ConfigError(
            f"this stage runs on hosts {', '.join(hosts)}: pass --host NAME to run one host "
            f"block here (each host runs its own block and writes its own journal)"
        )
    return tasks, []


def run_stage(
    store: Store,
    campaign: Campaign,
    stage: str,
    executor: Executor,
    *,
    key: SigningKey | None = None,
    host: str | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> RunReport:
    """Run what is left of a stage's frozen run list and ingest every result."""
    manifest = frozen_manifest(store, campaign, stage)
    return run_manifest(
        store, manifest, executor, key=key, host=host, limit=limit, progress=progress
    )


def run_manifest(
    store: Store,
    manifest: Entry[Manifest],
    executor: Executor,
    *,
    key: SigningKey | None = None,
    host: str | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> RunReport:
    """Run what is left of one manifest's declared runs (campaign stages and baselines),
    records signed with `key`; first close this host's dead attempts of the manifest."""
    if key is None and signs_records(manifest.body):
        raise SigningKeyError(
            f"manifest {manifest.id[:12]} records signed runs: running it needs the store's "
            f"signing key"
        )
    stage = manifest.body.stage
    tasks = manifest_tasks(manifest.id, manifest.body, seed_witness(store, manifest))
    block, skipped = select_host_block(tasks, host, executor.name)
    check_executor(manifest, executor)
    fmt = log_source(manifest.body).fmt
    closed = close_dead_attempts(store, manifest.id, key=key, fmt=fmt)
    done = recorded_runs(store, manifest.id)
    todo = [t for t in block if t.key not in done]
    if limit is not None:
        todo = todo[:limit]
    report = RunReport(
        manifest.id,
        stage,
        len(tasks),
        len(block) - len([t for t in block if t.key not in done]),
        skipped_hosts=skipped,
        closed=closed,
    )
    claims = RunClaims(store, manifest.id, key=key, max_attempts=max_attempts(manifest.body))
    bar = _progress(len(todo), stage, progress)
    try:
        for result in executor.execute(todo, claims.start):
            _record(store, manifest.id, result, report, key)
            claims.release(result.task.key)
            if bar is not None:
                bar.set_postfix_str(f"{report.training_gpu_hours:.3f} GPU-h", refresh=False)
                bar.update(1)
    except BaseException as exc:
        _interrupt_held(store, manifest.id, claims, exc, key, fmt)
        raise
    finally:
        claims.release_all()
        if bar is not None:
            bar.close()
    report.busy = sorted(claims.busy)
    report.exhausted = claims.exhausted
    report.already += claims.recorded_meanwhile
    report.training_gpu_hours = round(report.training_gpu_hours, 9)
    return report


def _interrupt_held(
    store: Store,
    manifest: str,
    claims: RunClaims,
    exc: BaseException,
    key: SigningKey | None,
    fmt: str,
) -> None:
    """Close the attempts this process started and will not record (Ctrl-C, an error), with
    whatever partial log their runners left; best effort, the original error goes on."""
    why = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else type(exc).__name__
    suffix = ".stdout" if fmt == "autoresearch" else ".jsonl"
    for run in sorted(claims.held):
        logs = [p for p in partial_logs(store, manifest, run) if p.suffix == suffix]
        raw = _read(logs[-1]) if logs else None
        with contextlib.suppress(LedgerError, OSError):
            record_interruption(
                store,
                manifest,
                run,
                reason=f"interrupted: {why} stopped `ledger run`",
                raw=raw,
                key=key,
            )


def _read(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_LOG_BYTES) or None
    except OSError:
        return None


def _record(
    store: Store, manifest: str, result: RunResult, report: RunReport, key: SigningKey | None
) -> None:
    """Ingest one result; a log that ingest refuses is closed as an interrupted attempt
    (its bytes kept as evidence) and reported, not recorded (re-runnable within the plan's
    `max_attempts`)."""
    task = result.task
    try:
        record_id = ingest(
            store,
            result.raw,
            manifest=manifest,
            condition=task.condition,
            seed=task.seed,
            host=task.host,
            status_override=result.status_override,
            stderr=result.stderr or None,
            deadline_s=result.deadline_s,
            exit_code=result.exit_code,
            key=key,
        )
    except LedgerError as exc:
        report.refused.append(RefusedRun(task.key, task.name, str(exc)))
        with contextlib.suppress(LedgerError):
            record_interruption(
                store,
                manifest,
                task.key,
                reason=f"refused log: {exc}",
                raw=result.raw or None,
                stderr=result.stderr or None,
                key=key,
            )
        return
    record = read_document(store, record_id, "run", RunRecord)
    report.executed += 1
    report.records.append(record_id)
    report.statuses[record.status] += 1
    if record.status != "ok":
        report.failures.append(
            RunFailure(task.key, task.name, record.status, failure_reason(result))
        )
    seconds = record.metrics.training_seconds or 0.0
    report.training_gpu_hours += seconds * record.gpus / 3600.0


def failure_reason(result: RunResult) -> str:
    """Why a run did not finish ok: the runner's own error, else stderr's last line."""
    return rawlog_failure_reason(parse_raw_log(result.raw, result.fmt), result.stderr)


def _progress(total: int, stage: str, enabled: bool) -> Any:
    """A tqdm bar on stderr (runs done/left, ETA), or None when disabled."""
    if not enabled or total == 0:
        return None
    from tqdm import tqdm  # tqdm: ~0.1 s measured, paid only when a bar is drawn

    return tqdm(total=total, desc=f"run {stage}", unit="run", dynamic_ncols=True, leave=True)
