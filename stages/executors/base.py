"""The executor protocol: tasks in, raw logs out, starts announced before launch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


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
    runner: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.condition}/{self.seed}/{self.host}"


@dataclass(frozen=True)
class RunResult:
    """What came back: the raw log bytes, its format, and a status forced by the executor."""

    task: RunTask
    raw: bytes
    fmt: str = "jsonl"
    status_override: str | None = None
    note: str = ""


StartCallback = Callable[[RunTask], None]


class Executor(Protocol):
    """Runs tasks; calls `on_start(task)` right before each launch; yields results."""

    name: str

    def execute(self, tasks: Iterable[RunTask], on_start: StartCallback) -> Iterator[RunResult]:
        ...
