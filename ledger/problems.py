"""The one shape every integrity finding takes: which object, what is wrong."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """A failed check, printed as `OBJECT: message` (object = id, key id or store path)."""

    object: str
    message: str

    def __str__(self) -> str:
        return f"{self.object}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"object": self.object, "message": self.message}
