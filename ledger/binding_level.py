"""How strongly a stage's logs are bound to their runs, from its frozen manifest alone.

Why say it: a clean audit means every check passed, but what a check can prove depends on
what the log carries. The builtin runner's header binds code, data, config, seed and budget;
a foreign runner's jsonl header (or the autoresearch adapter's) binds config, seed and budget
(the adapter also the script's SHA-256) but not the data; autoresearch's bare summary block
binds nothing but the numbers it prints and the status they support. The level follows
from the manifest's runner kind and log format, never from a log or a record, so a log
cannot talk its way up a level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.provenance import ManifestLike, log_source

BUILTIN = "builtin"
HEADER = "header"
STATUS_ONLY = "status-only"


@dataclass(frozen=True)
class BindingLevel:
    """A stage's binding level, what its logs' headers bind and what nothing binds."""

    level: str
    bound: tuple[str, ...]
    unbound: tuple[str, ...]

    @property
    def header_required(self) -> bool:
        """Whether an ok log must carry a header citing its manifest."""
        return self.level != STATUS_ONLY

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "bound": list(self.bound), "unbound": list(self.unbound)}


_RUN = ("manifest", "host")


def binding_level(manifest: ManifestLike) -> BindingLevel:
    """The level a manifest's runner kind and format give its logs (docs/runner.md)."""
    source = log_source(manifest)
    if source.kind == "adapter":
        return BindingLevel(
            HEADER, ("script", "config", "seed", "budget", *_RUN), ("data", "imported files")
        )
    if source.kind == "command" and source.fmt == "jsonl":
        return BindingLevel(HEADER, ("config", "seed", "budget", *_RUN), ("code", "data"))
    if source.kind == "command":
        return BindingLevel(
            STATUS_ONLY,
            ("status evidence", "printed metrics"),
            ("config", "seed", "budget", "manifest", "host", "code", "data"),
        )
    return BindingLevel(BUILTIN, ("code", "data", "config", "seed", "budget", *_RUN), ())


def weakest(levels: list[BindingLevel]) -> BindingLevel | None:
    """The least bound of several stages' levels (None for none)."""
    order = {BUILTIN: 0, HEADER: 1, STATUS_ONLY: 2}
    return max(levels, key=lambda b: order[b.level], default=None)


__all__ = ["BUILTIN", "HEADER", "STATUS_ONLY", "BindingLevel", "binding_level", "weakest"]
