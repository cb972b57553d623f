"""SIGTERM/SIGINT as a polled flag, so a stopped run still writes its summary line."""

from __future__ import annotations

import contextlib
import signal
from types import FrameType
from typing import Any


class StopFlag:
    """Context manager: while active, SIGTERM/SIGINT set ``self.set`` instead of killing."""

    def __init__(self) -> None:
        self.set = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.set = True

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
