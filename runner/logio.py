"""Raw-log writer: JSON lines, finite numbers only, header fsynced before training."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from runner.errors import UsageError


def finite(value: Any) -> Any:
    """Replace NaN/inf (at any depth) with None: the log must never hold non-JSON numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


class LogWriter:
    """Append-only JSONL writer that tracks its own time (for the overhead benchmark)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.seconds = 0.0
        try:
            if self.path.parent != Path():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = self.path.open("w", encoding="utf-8")
        except OSError as e:
            raise UsageError(f"{self.path}: cannot write log ({e.strerror or e})") from None

    def write(self, record: dict[str, Any], sync: bool = False, flush: bool = True) -> None:
        """Write one line; flush unless told not to; ``sync`` also forces it to disk."""
        t0 = time.perf_counter()
        self._f.write(json.dumps(finite(record), allow_nan=False, separators=(",", ":")) + "\n")
        if flush or sync:
            self._f.flush()
        if sync:
            os.fsync(self._f.fileno())
        self.seconds += time.perf_counter() - t0

    def close(self) -> None:
        """Close the file (idempotent)."""
        if not self._f.closed:
            self._f.close()
