"""The one shape every integrity finding takes: which object, what is wrong, and where.

Why the optional fields: a reviewer (and a script reading `--json`) needs to know which
stage, condition, seed and host a finding is about, which check fired, and, where a number
differs, what the record said against what the evidence says; parsing that back out of the
message is guesswork. `object` and `message` stay the one-line form printed to a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """A failed check, printed as `OBJECT: message` (object = id, key id or store path)."""

    object: str
    message: str
    check: str | None = None  # a short stable name of the check that fired
    stage: str | None = None
    condition: str | None = None  # the condition id (64 hex)
    condition_name: str | None = None  # the name the frozen plan gives it
    seed: int | None = None  # the declared seed of the cell
    host: str | None = None
    recorded: Any = None  # what the record (or plan) says, where a value differs
    found: Any = None  # what the evidence says instead

    def __str__(self) -> str:
        return f"{self.object}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """Every field, None where it does not apply (so `jq .problems[].host` always works)."""
        return {
            "object": self.object,
            "message": self.message,
            "check": self.check,
            "stage": self.stage,
            "condition": self.condition,
            "condition_name": self.condition_name,
            "seed": self.seed,
            "host": self.host,
            "recorded": self.recorded,
            "found": self.found,
        }
