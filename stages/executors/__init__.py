"""Executors: where runs happen (local subprocesses, the simulator, a Ray cluster).

Every executor only produces raw logs; the orchestrator (`stages.execute`) is the one writer
that journals starts and ingests results.
"""

from __future__ import annotations

from typing import Any

from ledger.errors import ConfigError
from stages.executors.base import Executor, RunResult, RunTask
from stages.executors.local import LocalExecutor
from stages.executors.ray import RayExecutor
from stages.executors.sim import SimExecutor


def make_executor(name: str, **options: Any) -> Executor:
    """Build an executor by its CLI name."""
    if name == "sim":
        return SimExecutor(**options)
    if name == "local":
        return LocalExecutor(**options)
    if name == "ray":
        return RayExecutor(**options)
    raise ConfigError(f"unknown executor {name!r} (local, sim or ray)")


__all__ = ["Executor", "RunResult", "RunTask", "make_executor"]
