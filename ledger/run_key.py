"""The identity of one declared run: (condition, seed, host), one name for it everywhere.

Why one type: the run identity used to be spelled out in six places, as `cond/seed/host`
strings built by hand and a cell key in the reverse order. A `RunKey` sorts by condition,
then seed, then host (the order manifests list their runs), prints as the
`condition/seed/host` string journals and decisions store, and parses it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


class Cell(NamedTuple):
    """One (seed, host) cell of a stage: every candidate runs once in every cell."""

    seed: int
    host: str

    def __str__(self) -> str:
        """`host/seed`, how reports name a cell."""
        return f"{self.host}/{self.seed}"


@dataclass(frozen=True, order=True)
class RunKey:
    """A declared run: a condition (id) in a cell (declared seed, host)."""

    condition: str
    seed: int
    host: str

    def __str__(self) -> str:
        """`condition/seed/host`: the `run` field of journal events and run records."""
        return f"{self.condition}/{self.seed}/{self.host}"

    @property
    def cell(self) -> Cell:
        return Cell(self.seed, self.host)

    @classmethod
    def of(cls, run: Any) -> RunKey:
        """The key of a mapping with `condition`, `seed` and `host` (a planned run)."""
        return cls(run["condition"], run["seed"], run["host"])

    @classmethod
    def parse(cls, text: str) -> RunKey | None:
        """`condition/seed/host` back to a key (None when it is not one)."""
        condition, _, rest = text.partition("/")
        seed, _, host = rest.partition("/")
        try:
            return cls(condition, int(seed), host) if condition and host else None
        except ValueError:
            return None


def key_text(condition: Any, seed: Any, host: Any) -> str:
    """`condition/seed/host` of values as a record holds them (any of them may be missing
    or malformed in a record being checked: the text then shows what is there)."""
    return f"{condition}/{seed}/{host}"


__all__ = ["Cell", "RunKey", "key_text"]
