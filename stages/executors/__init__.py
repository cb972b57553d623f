"""Executors: where runs happen (local subprocesses, the simulator, a Ray cluster).

Every executor only produces raw logs; the orchestrator (`stages.execute`) is the one writer
that journals starts and ingests results.
"""

from __future__ import annotations

from stages.executors.base import Executor, RunResult, RunTask


def make_executor(name: str, **options) -> Executor:
    """Build an executor by its CLI name."""
    from ledger.errors import LedgerError

    if name == "sim":
        from stages.executors.sim import SimExecutor

        return SimExecutor(**options)
    if name == "local":
        from stages.executors.local import LocalExecutor

        return LocalExecutor(**options)
    if name == "ray":
        from stages.executors.ray import RayExecutor

        return RayExecutor(**options)
    raise LedgerError(f"unknown executor {name!r} (local, sim or ray)")


__all__ = ["Executor", "RunResult", "RunTask", "make_executor"]
