"""Where each number comes from: the frozen manifest, never a record, a header or a flag.

Why one module: the runner kind and log format decide which checks a log must pass (a
header binding, the builtin identity, the wall-clock interval, the replay draw). When a
record's `format` or a header's `runner: "sim"` chose them, a made-up log could pick the
laxest checks for itself. Here they are read from the signed plan alone, in one function
(`log_source`), so every caller (ingest, the audit, the spot-check, the executors) asks the
same question and a new runner kind is one entry in `KINDS`.

The GPUs a run is charged for and the stage it is booked under come from the manifest
too (`run_gpus`, the manifest's `stage`): a record that says otherwise is a finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.plan_model import Plan
from ledger.rawlog import FORMATS
from runner.autoresearch import ADAPTER

# runner kind -> (log format, what its header must say in `runner`; None: anything)
KINDS: dict[str, tuple[str | None, str | None]] = {
    "builtin": ("jsonl", "builtin"),  # the trainer under runner/: its code hash is frozen
    "sim": ("jsonl", "sim"),  # a plan frozen without a data set: only the simulator answers
    "adapter": (None, ADAPTER),  # an autoresearch-shaped script run unchanged: its hash
    "command": (None, None),  # a campaign's own command: its format is frozen with it
}


FIXED_BUDGET_KINDS = frozenset({"builtin", "adapter", "sim"})


@dataclass(frozen=True)
class LogSource:
    """What a manifest says its logs are: which trainer writes them, in which format."""

    kind: str  # builtin | sim | command (KINDS)
    fmt: str  # jsonl | autoresearch
    header_runner: str | None  # what a jsonl header's `runner` must say (None: anything)

    @property
    def simulated(self) -> bool:
        """Runs of the simulator: instant, reported apart, never re-trained."""
        return self.kind == "sim"

    @property
    def trains_budget(self) -> bool:
        """Whether the runner trains until its training seconds reach the budget (the
        builtin runner, an adapted autoresearch script, the simulator): an `ok` run of it
        has at least the budget's training seconds. A command's contract is its own."""
        return self.kind in FIXED_BUDGET_KINDS


ManifestLike = Plan | Mapping[str, Any]


def _runner_and_data(manifest: ManifestLike) -> tuple[Any, str, bool]:
    """The frozen runner's kind and log format (`autoresearch` when it names none), and
    whether the plan says "no data set" (None)."""
    if isinstance(manifest, Plan):
        identity = manifest.runner
        return identity.kind, identity.format or "autoresearch", manifest.data_sha256 is None
    if not isinstance(manifest, Mapping):
        return None, "autoresearch", False
    found = manifest.get("runner")
    runner = found if isinstance(found, Mapping) else {}
    sim = "data_sha256" in manifest and manifest["data_sha256"] is None
    return runner.get("kind"), str(runner.get("format", "autoresearch")), sim


def log_source(manifest: ManifestLike) -> LogSource:
    """The kind and format of a manifest's runs, from its frozen `runner` and data hash.

    `builtin` with a data hash is the real trainer; `builtin` without one (or `sim`) is a
    plan frozen for the simulator (`--sim-only`: no real run can bind to it); `command`
    and `adapter` carry their own frozen `format`. An unknown kind is refused by the audit
    (`unknown_kind`).
    """
    kind, frozen_format, no_data = _runner_and_data(manifest)
    if kind == "builtin" and no_data:
        kind = "sim"  # every manifest names its data set; None: frozen for the simulator
    if isinstance(kind, str) and kind in KINDS:
        fmt, header = KINDS[kind]
        # a command or an adapted script: its format is frozen with it
        return LogSource(kind, fmt or frozen_format, header)
    return LogSource(str(kind), "jsonl", None)


def unknown_kind(manifest: ManifestLike) -> str | None:
    """Why a manifest's runner cannot be audited here (None when its kind is known)."""
    source = log_source(manifest)
    if source.kind not in KINDS:
        return f"runner kind {source.kind!r} is unknown to this audit (known: {', '.join(KINDS)})"
    if source.fmt not in FORMATS:
        return f"runner format {source.fmt!r} is unknown to this audit"
    return None


def run_gpus(manifest: ManifestLike) -> int:
    """GPUs each run of the manifest is charged for: the frozen `gpus` (1 when absent)."""
    if isinstance(manifest, Plan):
        return manifest.gpus
    gpus = manifest.get("gpus", 1) if isinstance(manifest, Mapping) else 1
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        return 1
    return gpus


__all__ = [
    "FIXED_BUDGET_KINDS",
    "KINDS",
    "LogSource",
    "ManifestLike",
    "log_source",
    "run_gpus",
    "unknown_kind",
]
