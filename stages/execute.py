"""`ledger run STAGE`: execute a frozen manifest's declared runs, resumably, as the one writer.

Order of evidence: the start of each run is journaled before the runner launches, the runner
writes the manifest id into its log header before training, and the end is journaled after
ingest. Runs already recorded are skipped, so an interrupted `run` finishes what is left.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ledger.errors import LedgerError
from ledger.ingest import ingest, record_run_start, recorded_runs
from ledger.store import Store
from stages.campaign import Campaign
from stages.executors.base import Executor, RunTask
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
        }


def manifest_tasks(manifest_id: str, body: dict[str, Any]) -> list[RunTask]:
    """Every declared run of a manifest as an executor task (sorted as frozen)."""
    conds = body["conditions"]
    return [
        RunTask(
            manifest=manifest_id,
            stage=body["stage"],
            condition=run["condition"],
            name=conds[run["condition"]]["name"],
            config=conds[run["condition"]]["config"],
            coded=conds[run["condition"]].get("coded", {}),
            seed=run["seed"],
            host=run["host"],
            budget_s=body["budget_s"],
            gpus=body.get("gpus", 1),
            runner=body.get("runner", {}),
        )
        for run in body["runs"]
    ]


def select_host_block(
    tasks: list[RunTask], host: str | None, executor: str
) -> tuple[list[RunTask], list[str]]:
    """Restrict to one host block; a real executor on a multi-host stage needs `--host`."""
    hosts = sorted({t.host for t in tasks})
    if host is not None:
        if host not in hosts:
            raise LedgerError(f"host {host!r} has no runs in this stage (hosts: {', '.join(hosts)})")
        return [t for t in tasks if t.host == host], [h for h in hosts if h != host]
    if executor != "sim" and len(hosts) > 1:
        raise LedgerError(
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
    manifest: Entry,
    executor: Executor,
    *,
    host: str | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> RunReport:
    """Run what is left of one manifest's declared runs (campaign stages and baselines)."""
    stage = manifest.body["stage"]
    tasks = manifest_tasks(manifest.id, manifest.body)
    block, skipped = select_host_block(tasks, host, executor.name)
    done = recorded_runs(store, manifest.id)
    todo = [t for t in block if t.key not in done]
    if limit is not None:
        todo = todo[:limit]
    report = RunReport(manifest.id, stage, len(tasks), len(block) - len(
        [t for t in block if t.key not in done]), skipped_hosts=skipped)
    lock = threading.Lock()

    def on_start(task: RunTask) -> None:
        with lock:
            record_run_start(store, manifest.id, task.condition, task.seed, task.host)

    bar = _progress(len(todo), stage, progress)
    for result in executor.execute(todo, on_start):
        task = result.task
        with lock:
            record_id = ingest(
                store,
                result.raw,
                fmt=result.fmt,
                manifest=manifest.id,
                condition=task.condition,
                seed=task.seed,
                host=task.host,
                stage=task.stage,
                gpus=task.gpus,
                status_override=result.status_override,
            )
        record = store.get_json(record_id)["body"]
        status = record["status"]
        report.executed += 1
        report.records.append(record_id)
        report.statuses[status] = report.statuses.get(status, 0) + 1
        seconds = record["metrics"].get("training_seconds") or 0.0
        report.training_gpu_hours += seconds * task.gpus / 3600.0
        if bar is not None:
            bar.set_postfix_str(
                f"{status} {task.name} seed {task.seed}@{task.host} | "
                f"{report.training_gpu_hours:.3f} GPU-h",
                refresh=False,
            )
            bar.update(1)
    if bar is not None:
        bar.close()
    report.training_gpu_hours = round(report.training_gpu_hours, 9)
    return report


def _progress(total: int, stage: str, enabled: bool):
    """A tqdm bar on stderr (runs done/left, ETA), or None when disabled."""
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"run {stage}", unit="run", dynamic_ncols=True, leave=True)
