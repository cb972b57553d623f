"""The `ray` executor: each run is a Ray task with `num_gpus=1`; the driver alone ingests.

Why Ray: a cluster scheduler places one run per accelerator across machines and restarts
nothing behind our back (`max_retries=0`: a retried run would be a second, unjournaled start).
A worker that dies comes back as status `crashed`; a later `ledger run` finishes what is left,
and every task first sweeps the scratch folders of workers that were killed (`ledger-ray-<pid>-*`).
The worker runs the same subprocess as the `local` executor and returns the raw log bytes.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import LedgerError
from stages.executors.base import RunResult, RunTask, StartCallback
from stages.executors.local import LocalExecutor

SCRATCH_PREFIX = "ledger-ray-"
_SCRATCH_NAME = re.compile(rf"^{SCRATCH_PREFIX}(\d+)-")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def sweep_orphan_scratch(tmp_root: Path) -> list[Path]:
    """Remove scratch folders of workers that died without cleaning up (e.g. SIGKILL).

    A folder is named ``ledger-ray-<pid>-*`` after the worker that made it; it is removed
    only when that process is gone and the folder is ours, so a live worker's run is never
    touched. Returns what was removed.
    """
    removed = []
    for path in tmp_root.glob(f"{SCRATCH_PREFIX}*"):
        m = _SCRATCH_NAME.match(path.name)
        try:
            if not m or not path.is_dir() or path.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if not _pid_alive(int(m.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _run_on_worker(
    task: RunTask, options: dict[str, Any]
) -> tuple[bytes, str, str | None, bytes, float | None, int | None]:
    """Body of the Ray task: run the trainer in a scratch folder, return its raw log."""
    sweep_orphan_scratch(Path(tempfile.gettempdir()))
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as tmp:
        # one run per task: a fresh process (a fork server would outlive the task)
        local = LocalExecutor(workdir=Path(tmp), jobs=1, fork=False, **options)
        result = local._run_one(task, 0, lambda _task: True)
    assert result is not None  # the callback above always launches
    return (
        result.raw,
        result.fmt,
        result.status_override,
        result.stderr,
        result.deadline_s,
        result.exit_code,
    )


@dataclass
class RayExecutor:
    """Submits runs to a Ray cluster (`address`) or to a local Ray instance it starts."""

    address: str | None = None
    data: Path | None = None
    device: str = "auto"
    grace_s: float | None = None
    jobs: int = 1
    num_gpus: float = 1.0
    name: str = "ray"

    def _connect(self):
        try:
            import ray  # ray: optional extra, seconds to import
        except ImportError:
            raise LedgerError("the ray executor needs Ray: pip install 'gateledger[ray]'") from None
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                # A local instance declaring logical GPUs, so `num_gpus=1` tasks schedule on a
                # CPU-only machine exactly as they would on a GPU node.
                ray.init(
                    num_cpus=max(1, self.jobs),
                    num_gpus=max(1, self.jobs),
                    include_dashboard=False,
                    log_to_driver=False,
                )
        return ray

    def execute(self, tasks: Iterable[RunTask], on_start: StartCallback) -> Iterator[RunResult]:
        ray = self._connect()
        remote = ray.remote(num_gpus=self.num_gpus, max_retries=0)(_run_on_worker)
        options = {"device": self.device, "data": self.data, "grace_s": self.grace_s}
        refs: dict[Any, RunTask] = {}
        for task in tasks:
            if on_start(task):
                refs[remote.remote(task, options)] = task
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                task = refs.pop(ref)
                try:
                    raw, fmt, override, stderr, deadline, code = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - any worker failure is a crashed run
                    reason = f"ray: {type(exc).__name__}: {exc}".encode(errors="replace")
                    yield RunResult(task, b"", "jsonl", "crashed", stderr=reason)
                    continue
                yield RunResult(task, raw, fmt, override, stderr, deadline, code)
