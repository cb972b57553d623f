"""`ledger run STAGE`: execute a frozen manifest's declared runs, resumably, as the one writer.

Order of evidence: the start of each run is journaled before the runner launches, the runner
writes the manifest id into its log header before training, and the end is journaled after
ingest. Runs already recorded are skipped, so an interrupted `run` finishes what is left.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ledger.errors import ConfigError, LedgerError
from ledger.fsutil import ensure_dir
from ledger.ingest import ingest, is_recorded, record_run_start, recorded_runs
from ledger.plan_model import Manifest, Plan
from ledger.rawlog import failure_reason as rawlog_failure_reason
from ledger.rawlog import parse_raw_log
from ledger.seeds import derive_seed
from ledger.store import Store
from stages.campaign import Campaign
from stages.executors.base import Executor, RunResult, RunTask
from stages.lookup import Entry
from stages.plan import frozen_manifest


@dataclass
class RunReport:
    """What one `ledger run` did."""

    manifest: str
    stage: str
    declared: int
    already: int
    executed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    training_gpu_hours: float = 0.0
    records: list[str] = field(default_factory=list)
    skipped_hosts: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # held by another `ledger run` meanwhile
    refused: list[dict[str, str]] = field(default_factory=list)  # ingest said no: not recorded
    failures: list[dict[str, str]] = field(default_factory=list)  # recorded, not ok: why

    @property
    def all_crashed(self) -> bool:
        """Every run this call executed crashed (or was refused): something is broken."""
        attempted = self.executed + len(self.refused)
        return attempted > 0 and self.statuses.get("crashed", 0) + len(self.refused) == attempted

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "stage": self.stage,
            "declared": self.declared,
            "already_recorded": self.already,
            "executed": self.executed,
            "statuses": self.statuses,
            "training_gpu_hours": self.training_gpu_hours,
            "records": self.records,
            "skipped_hosts": self.skipped_hosts,
            "busy": self.busy,
            "refused": self.refused,
            "failures": self.failures,
            "all_crashed": self.all_crashed,
        }


def manifest_tasks(manifest_id: str, plan: Plan) -> list[RunTask]:
    """Every declared run of a manifest as an executor task (sorted as frozen)."""
    rule = plan.seeds.rule if plan.seeds is not None else None
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
            runner=plan.runner.to_dict(),
            effective_seed=(
                None if rule is None else derive_seed(rule, manifest_id, run.condition, run.seed)
            ),
        )
        for run in plan.runs
    ]


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
    host: str | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> RunReport:
    """Run what is left of a stage's frozen run list and ingest every result."""
    manifest = frozen_manifest(store, campaign, stage)
    return run_manifest(store, manifest, executor, host=host, limit=limit, progress=progress)


def run_manifest(
    store: Store,
    manifest: Entry[Manifest],
    executor: Executor,
    *,
    host: str | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> RunReport:
    """Run what is left of one manifest's declared runs (campaign stages and baselines)."""
    stage = manifest.body.stage
    tasks = manifest_tasks(manifest.id, manifest.body)
    block, skipped = select_host_block(tasks, host, executor.name)
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
    )
    claims = RunClaims(store, manifest.id)
    bar = _progress(len(todo), stage, progress)
    try:
        for result in executor.execute(todo, claims.start):
            _record(store, manifest.id, result, report)
            claims.release(result.task.key)
            if bar is not None:
                bar.set_postfix_str(f"{report.training_gpu_hours:.3f} GPU-h", refresh=False)
                bar.update(1)
    finally:
        claims.release_all()
        if bar is not None:
            bar.close()
    report.busy = sorted(claims.busy)
    report.already += claims.recorded_meanwhile
    report.training_gpu_hours = round(report.training_gpu_hours, 9)
    return report


class RunClaims:
    """One lock per run (`work/locks/`), held from its journaled start to its record.

    Why: two `ledger run` of one stage at once must never train or record a run twice. A run
    whose lock another process holds is skipped; under the lock the journal is asked again
    whether the run was recorded meanwhile. A process that dies releases its locks (the
    operating system drops them), so a later `ledger run` takes the run over.
    """

    def __init__(self, store: Store, manifest: str) -> None:
        self.store, self.manifest = store, manifest
        self.folder = store.root / "work" / "locks"
        self.held: dict[str, FileLock] = {}
        self.busy: set[str] = set()
        self.recorded_meanwhile = 0
        self._mutex = threading.Lock()

    def _path(self, key: str) -> Path:
        digest = hashlib.sha256(f"{self.manifest}/{key}".encode()).hexdigest()[:32]
        return self.folder / f"{digest}.lock"

    def start(self, task: RunTask) -> bool:
        """Claim the run and journal its start; False when it is not ours to run."""
        with self._mutex:
            ensure_dir(self.folder)
            lock = FileLock(str(self._path(task.key)), timeout=0)
            try:
                lock.acquire()
            except Timeout:
                self.busy.add(task.key)
                return False
            if is_recorded(self.store, self.manifest, task.key):
                lock.release()
                self.recorded_meanwhile += 1
                return False
            self.held[task.key] = lock
            record_run_start(self.store, self.manifest, task.condition, task.seed, task.host)
            return True

    def release(self, key: str) -> None:
        with self._mutex:
            lock = self.held.pop(key, None)
            if lock is not None:
                lock.release()

    def release_all(self) -> None:
        for key in list(self.held):
            self.release(key)


def _record(store: Store, manifest: str, result: RunResult, report: RunReport) -> None:
    """Ingest one result; a log that ingest refuses is reported, not recorded (re-runnable)."""
    task = result.task
    try:
        record_id = ingest(
            store,
            result.raw,
            fmt=result.fmt,
            manifest=manifest,
            condition=task.condition,
            seed=task.seed,
            host=task.host,
            stage=task.stage,
            gpus=task.gpus,
            status_override=result.status_override,
            stderr=result.stderr or None,
            deadline_s=result.deadline_s,
            exit_code=result.exit_code,
        )
    except LedgerError as exc:
        report.refused.append({"run": task.key, "name": task.name, "reason": str(exc)})
        return
    record = store.get_json(record_id)["body"]
    status = record["status"]
    report.executed += 1
    report.records.append(record_id)
    report.statuses[status] = report.statuses.get(status, 0) + 1
    if status != "ok":
        report.failures.append(
            {"run": task.key, "name": task.name, "status": status, "reason": failure_reason(result)}
        )
    seconds = record["metrics"].get("training_seconds") or 0.0
    report.training_gpu_hours += seconds * task.gpus / 3600.0


def failure_reason(result: RunResult) -> str:
    """Why a run did not finish ok: the runner's own error, else stderr's last line."""
    return rawlog_failure_reason(parse_raw_log(result.raw, result.fmt), result.stderr)


def _progress(total: int, stage: str, enabled: bool) -> Any:
    """A tqdm bar on stderr (runs done/left, ETA), or None when disabled."""
    if not enabled or total == 0:
        return None
    from tqdm import tqdm  # tqdm: ~0.1 s measured, paid only when a bar is drawn

    return tqdm(total=total, desc=f"run {stage}", unit="run", dynamic_ncols=True, leave=True)
