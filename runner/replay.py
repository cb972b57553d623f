"""Exact replay of a recorded budget run: the original's per-step schedule progress.

Why: a budget run's LR and weight-decay schedules follow wall-clock progress, which no second
run reproduces. The raw log records the exact `progress` each step used; replaying with those
values (and the same config, seed, data and threads) gives the same losses bit for bit on CPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.errors import UsageError


def load_schedule(path: str | Path, cfg: dict[str, Any], seed: int) -> list[float]:
    """Per-step progress values of a recorded run, after checking it is the same recipe."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--replay {path}: cannot read ({exc})") from None
    header: dict[str, Any] | None = None
    progress: dict[int, float] = {}
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise UsageError(f"--replay {path}: line {number} is not JSON") from None
        if not isinstance(record, dict):
            continue
        if record.get("type") == "header":
            header = record
        elif record.get("type") == "step":
            if not isinstance(record.get("progress"), int | float):
                raise UsageError(
                    f"--replay {path}: step {record.get('step')} has no recorded progress "
                    f"(log from an older runner); replay with --steps N alone"
                )
            progress[int(record["step"])] = float(record["progress"])
    if header is None:
        raise UsageError(f"--replay {path}: no header line")
    if header.get("seed") != seed:
        raise UsageError(f"--replay {path}: recorded seed {header.get('seed')} != --seed {seed}")
    for key, value in cfg.items():
        if key in header and header[key] != value:
            raise UsageError(
                f"--replay {path}: config key {key!r} differs (recorded {header[key]!r}, "
                f"given {value!r})"
            )
    if not progress:
        raise UsageError(f"--replay {path}: no step lines")
    steps = sorted(progress)
    if steps != list(range(1, len(steps) + 1)):
        raise UsageError(f"--replay {path}: step lines are not 1..N without gaps")
    return [progress[s] for s in steps]
