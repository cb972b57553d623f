"""Claims on runs, and the attempts they leave: who is running what, what died, what is over.

Why here: `ledger run` claims each run with a lock from its journaled start to its outcome
(so two processes never train one run twice), and every start must end on record. A start
whose lock is free has no live orchestrator: it died (SIGKILL, a lost host), so the next
`ledger run` or `ledger decide` closes it as interrupted, keeping whatever partial log the
runner left under `work/` (`close_dead_attempts`). `ledger status` asks the same question
without taking any lock (`attempt_alive`: the owner file's process on this machine).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pydantic import Field, ValidationError

from ledger.attempts import record_interruption
from ledger.document import Document
from ledger.fsutil import ensure_dir
from ledger.ingest import attempts_so_far, is_recorded, open_attempts, record_run_start
from ledger.keys import SigningKey
from ledger.rawlog import MAX_LOG_BYTES
from ledger.store import Store
from stages.executors.base import RunTask

OWNER_SUFFIX = ".owner"


def lock_path(store: Store, manifest: str, run: str) -> Path:
    """The lock file of one run of one manifest (`work/locks/`)."""
    digest = hashlib.sha256(f"{manifest}/{run}".encode()).hexdigest()[:32]
    return store.root / "work" / "locks" / f"{digest}.lock"


def _machine() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class ExhaustedRun:
    """A run not started again: it has had the attempts its plan allows."""

    run: str  # condition/seed/host
    name: str
    attempts: int
    max: int

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "name": self.name, "attempts": self.attempts, "max": self.max}


class ClaimOwner(Document):
    """A lock's owner file: which process on which machine holds the claim."""

    pid: int = Field(gt=0)
    machine: str


def attempt_alive(store: Store, manifest: str, run: str) -> bool | None:
    """Whether the process that claimed `run` is alive on this machine: True, False (its
    owner file names a process that is gone), or None (no owner file here: unknown)."""
    path = Path(str(lock_path(store, manifest, run)) + OWNER_SUFFIX)
    try:
        owner = ClaimOwner.model_validate_json(path.read_bytes()[:4096])
    except (OSError, ValidationError):
        return None
    if owner.machine != _machine():
        return None
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunClaims:
    """One lock per run (`work/locks/`), held from its journaled start to its outcome.

    Why: two `ledger run` of one stage at once must never train or record a run twice. A run
    whose lock another process holds is skipped; under the lock the journal is asked again
    whether the run was recorded meanwhile, and how many attempts it has had (the plan's
    `max_attempts` bounds them). A process that dies releases its locks (the operating
    system drops them), so a later `ledger run` closes its attempts and takes the runs over.
    """

    def __init__(
        self,
        store: Store,
        manifest: str,
        *,
        key: SigningKey | None = None,
        max_attempts: int | None = None,
    ) -> None:
        self.store, self.manifest, self.key = store, manifest, key
        self.max_attempts = max_attempts
        self.held: dict[str, FileLock] = {}
        self.busy: set[str] = set()
        self.exhausted: list[ExhaustedRun] = []
        self.recorded_meanwhile = 0
        self._mutex = threading.Lock()

    def _lock(self, run: str) -> FileLock | None:
        """The run's lock, taken (None: another live process holds it)."""
        path = lock_path(self.store, self.manifest, run)
        ensure_dir(path.parent)
        lock = FileLock(str(path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return None
        return lock

    def start(self, task: RunTask) -> bool:
        """Claim the run and journal its start; False when it is not ours to run."""
        with self._mutex:
            lock = self._lock(task.key)
            if lock is None:
                self.busy.add(task.key)
                return False
            if is_recorded(self.store, self.manifest, task.key):
                lock.release()
                self.recorded_meanwhile += 1
                return False
            tried = attempts_so_far(self.store, self.manifest, task.key)
            if self.max_attempts is not None and tried >= self.max_attempts:
                lock.release()
                self.exhausted.append(ExhaustedRun(task.key, task.name, tried, self.max_attempts))
                return False
            self.held[task.key] = lock
            _write_owner(lock)
            record_run_start(
                self.store, self.manifest, task.condition, task.seed, task.host, key=self.key
            )
            return True

    def release(self, key: str) -> None:
        with self._mutex:
            lock = self.held.pop(key, None)
            if lock is not None:
                _drop_owner(lock)
                lock.release()

    def release_all(self) -> None:
        for key in list(self.held):
            self.release(key)


def _write_owner(lock: FileLock) -> None:
    """Who holds the lock (pid, machine), for `attempt_alive`; best effort."""
    with contextlib.suppress(OSError):
        owner = ClaimOwner(pid=os.getpid(), machine=_machine())
        Path(lock.lock_file + OWNER_SUFFIX).write_text(json.dumps(owner.to_dict()))


def _drop_owner(lock: FileLock) -> None:
    with contextlib.suppress(OSError):
        Path(lock.lock_file + OWNER_SUFFIX).unlink()


def partial_logs(store: Store, manifest: str, run: str) -> list[Path]:
    """What runs of this cell left under `work/` (oldest first): the builtin runner's log
    (`.jsonl`) or a command's stdout (`.stdout`), named by the local executor after the
    manifest, condition, seed and host of the attempt."""
    condition, _, rest = run.partition("/")
    seed, _, host = rest.partition("/")
    stem = f"{manifest[:12]}-{condition[:12]}-{seed}-{host}-"
    folder = store.root / "work"
    try:
        found = [
            p
            for p in folder.iterdir()
            if p.name.startswith(stem) and p.suffix in (".jsonl", ".stdout") and p.is_file()
        ]
    except OSError:
        return []
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def close_dead_attempts(
    store: Store, manifest: str, *, key: SigningKey | None = None, fmt: str = "jsonl"
) -> list[str]:
    """Close every attempt of this host's journal that has no outcome and whose lock is
    free (its orchestrator is gone) as interrupted, keeping the partial logs found under
    `work/` (then removed there). Returns the interruption ids."""
    closed = []
    suffix = ".stdout" if fmt == "autoresearch" else ".jsonl"
    for run, count in sorted(open_attempts(store, manifest).items()):
        path = lock_path(store, manifest, run)
        ensure_dir(path.parent)
        lock = FileLock(str(path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            continue  # a live `ledger run` holds it: in flight, not dead
        try:
            logs = [p for p in partial_logs(store, manifest, run) if p.suffix == suffix]
            for i in range(count):
                raw = _read(logs[i]) if i < len(logs) else None
                closed.append(
                    record_interruption(
                        store,
                        manifest,
                        run,
                        reason="killed: its orchestrator died before an outcome was recorded "
                        "(closed by a later command)",
                        raw=raw,
                        key=key,
                    )
                )
            for p in partial_logs(store, manifest, run):
                with contextlib.suppress(OSError):
                    p.unlink()
        finally:
            _drop_owner(lock)
            lock.release()
    return closed


def _read(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_LOG_BYTES) or None
    except OSError:
        return None


__all__ = [
    "RunClaims",
    "attempt_alive",
    "close_dead_attempts",
    "lock_path",
    "partial_logs",
]
