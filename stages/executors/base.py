"""The executor protocol: tasks in, raw logs out, starts announced before launch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ledger.plan_model import RunnerIdentity


@dataclass(frozen=True)
class RunTask:
    """One declared run of a manifest: a condition in one (seed, host) cell at a budget."""

    manifest: str
    stage: str
    condition: str
    name: str
    config: dict[str, Any]
    coded: dict[str, float | None]
    seed: int
    host: str
    budget_s: float
    gpus: int = 1
    runner: RunnerIdentity | None = None  # the manifest's runner (None: the builtin one)
    # the seed the run trains with, derived from the manifest id, condition and `seed` by the
    # manifest's seed rule (ledger/seeds.py); None for a manifest frozen without one
    effective_seed: int | None = None
    # the digest of the freeze's timestamp token, under a witness-bound seed rule
    witness: str | None = None

    @property
    def key(self) -> str:
        return f"{self.condition}/{self.seed}/{self.host}"

    @property
    def run_seed(self) -> int:
        """The seed handed to the trainer: the effective seed, else the declared one."""
        return self.seed if self.effective_seed is None else self.effective_seed

    @property
    def seed_from(self) -> str | None:
        """`MANIFEST:CONDITION:SEED` (`:WITNESS` under a witness-bound rule), the inputs of
        the effective seed (None without a rule)."""
        if self.effective_seed is None:
            return None
        inputs = f"{self.manifest}:{self.condition}:{self.seed}"
        return f"{inputs}:{self.witness}" if self.witness else inputs


@dataclass(frozen=True)
class RunResult:
    """What came back: the raw log bytes, its format, a status forced by the executor, the
    tail of the run's stderr (a crash's reason), the deadline it was killed at (budget plus
    grace) and the process's exit code."""

    task: RunTask
    raw: bytes
    fmt: str = "jsonl"
    status_override: str | None = None
    stderr: bytes = b""
    deadline_s: float | None = None
    exit_code: int | None = None

    @property
    def note(self) -> str:
        """The last non-empty line of stderr: usually the error that ended the run."""
        lines = [ln for ln in self.stderr.decode(errors="replace").splitlines() if ln.strip()]
        return lines[-1].strip() if lines else ""


# Called right before a task launches: journal its start. False means "do not launch"
# (another process holds the run, or it was recorded meanwhile).
StartCallback = Callable[[RunTask], bool]


class Executor(Protocol):
    """Runs tasks; calls `on_start(task)` right before each launch (skipping the task when
    it returns False); yields one result per launched task."""

    name: str

    def execute(self, tasks: Iterable[RunTask], on_start: StartCallback) -> Iterator[RunResult]: ...
