"""The `sim` executor: instant runs on the synthetic response surface of `stages.surface`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from stages.executors.base import RunResult, RunTask, StartCallback
from stages.surface import SimParams, simulate_log


@dataclass
class SimExecutor:
    """Writes contract-valid logs from a known surface; `training_seconds` equals the budget."""

    params: SimParams
    name: str = "sim"
    log_steps: int = 4  # step lines per log (benchmarks write realistic lengths)

    def execute(self, tasks: Iterable[RunTask], on_start: StartCallback) -> Iterator[RunResult]:
        for task in tasks:
            if not on_start(task):
                continue
            raw = simulate_log(
                self.params,
                condition=task.condition,
                name=task.name,
                config=task.config,
                coded=task.coded,
                budget_s=task.budget_s,
                seed=task.seed,
                host=task.host,
                manifest=task.manifest,
                log_steps=self.log_steps,
                effective_seed=task.effective_seed,
                witness=task.witness,
            )
            yield RunResult(task, raw)
