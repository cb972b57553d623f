"""Exact replay of a recorded budget run: the original's per-step schedule progress.

Why: a budget run's LR and weight-decay schedules follow wall-clock progress, which no second
run reproduces. The raw log records the exact `progress` each step used; replaying with those
values (and the same config, seed, data and threads) gives the same losses bit for bit on CPU.
"""

from __future__ import annotations

import hashlib
import json
from collections import ChainMap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.config import ABSENT_MEANS
from runner.errors import UsageError


@dataclass(frozen=True)
class Recorded:
    """What a replay takes from the recorded log."""

    progress: list[float]  # progress[i] = schedule progress of step i+1
    threads: int | None  # the header's thread count (a different one changes summation order)
    sha256: str  # of the log file, recorded in the replay's header


def load(path: str | Path, cfg: dict[str, Any], seed: int) -> Recorded:
    """Read a recorded log for ``--replay``: its per-step progress, threads and digest."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--replay {path}: cannot read ({exc.strerror or exc})") from None
    progress = load_schedule(path, cfg, seed, raw)
    header = json.loads(raw.split(b"\n", 1)[0]) if raw.startswith(b"{") else {}
    threads = header.get("threads") if isinstance(header, dict) else None
    return Recorded(
        progress,
        threads if isinstance(threads, int) and threads >= 1 else None,
        hashlib.sha256(raw).hexdigest(),
    )


def load_schedule(
    path: str | Path, cfg: dict[str, Any], seed: int, raw: bytes | None = None
) -> list[float]:
    """Per-step progress values of a recorded run, after checking it is the same recipe."""
    path = Path(path)
    try:
        lines = (path.read_bytes() if raw is None else raw).decode("utf-8").splitlines()
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
        # other line types (eval, final) and older logs' absent keys are expected here
        kind = record.get("type")
        if kind == "header":
            header = record
        elif kind == "step":
            if not isinstance(record.get("progress"), int | float):
                raise UsageError(
                    f"--replay {path}: step {record.get('step')} has no recorded progress "
                    f"(log from an older runner); replay with --steps N alone"
                )
            progress[int(record["step"])] = float(record["progress"])
    if header is None:
        raise UsageError(f"--replay {path}: no header line")
    recorded_seed = header.get("seed")
    if recorded_seed != seed:
        raise UsageError(f"--replay {path}: recorded seed {recorded_seed} != --seed {seed}")
    # what the recorded run ran with: its header; a key from before the header had it, what
    # its absence meant (ABSENT_MEANS); a key newer than that, the given value
    ran_with = ChainMap(header, ABSENT_MEANS, cfg)
    for key, value in cfg.items():
        recorded = ran_with[key]
        if recorded != value:
            raise UsageError(
                f"--replay {path}: config key {key!r} differs (recorded {recorded!r}, "
                f"given {value!r})"
            )
    if not progress:
        raise UsageError(f"--replay {path}: no step lines")
    steps = sorted(progress)
    if steps != list(range(1, len(steps) + 1)):
        raise UsageError(f"--replay {path}: step lines are not 1..N without gaps")
    return [progress[s] for s in steps]
