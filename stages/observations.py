"""What a decision is computed from: the declared run records it uses, and their observations.

Why a module of its own: gate decisions (`stages.decide`), baseline steps
(`stages.baseline_rule`) and the audit (`audit.gates`, `audit.rederive`) all select runs and
read observations the same way; here none of them has to import another to share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ledger.plan_model import Plan
from ledger.run_key import RunKey, key_text


class RecordedRun(Protocol):
    """A run record as a decision reads it: a stored `RunRecord`, the audit's record with
    the status and metrics its log supports, or an in-memory run of `ledger evaluate`."""

    @property
    def manifest(self) -> str | None: ...
    @property
    def condition(self) -> str | None: ...
    @property
    def seed(self) -> int | None: ...
    @property
    def host(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def recorded_at(self) -> str: ...
    def value(self, metric: str) -> Any:
        """The record's value of `metric` (None when it has none)."""


Used = dict[str, tuple[str, RecordedRun]]  # `condition/seed/host` -> (record id, record)


def claimed_key(record: RecordedRun) -> str:
    """The `condition/seed/host` text of the run a record claims (as recorded)."""
    return key_text(record.condition, record.seed, record.host)


def select_runs(
    manifest_id: str, manifest: Plan, runs: Sequence[tuple[str, RecordedRun]]
) -> tuple[Used, list[str], list[str]]:
    """Split run records into the declared ones used (first per key), missing keys, extras."""
    declared = {str(key) for key in manifest.keys}
    used: Used = {}
    extra: list[str] = []
    for rid, record in sorted(runs, key=lambda rb: (rb[1].recorded_at or "", rb[0])):
        key = claimed_key(record)
        if record.manifest != manifest_id or key not in declared:
            extra.append(rid)
        elif key not in used:
            used[key] = (rid, record)
    return used, sorted(declared - set(used)), sorted(extra)


def decision_head(
    manifest_id: str, manifest: Plan, used: Used, missing: list[str], extra: list[str]
) -> dict[str, Any]:
    """What every decision body starts with: which manifest, and which runs it judged."""
    return {
        "campaign": manifest.campaign,
        "stage": manifest.stage,
        "manifest": manifest_id,
        "budget_s": manifest.budget_s,
        "runs": sorted(rid for rid, _ in used.values()),
        "missing": missing,
        "extra": extra,
    }


def observations(used: Used, metric: str = "val_bpb") -> list[dict[str, Any]]:
    """One observation per run: its status and, for an ok run, its value of `metric`."""
    obs = []
    for rid, record in used.values():
        value = record.value(metric)
        ok = (
            record.status == "ok" and isinstance(value, int | float) and not isinstance(value, bool)
        )
        obs.append(
            {
                "condition": record.condition,
                "seed": record.seed,
                "host": record.host,
                "status": record.status,
                "value": float(value) if ok else None,
                "run": rid,
            }
        )
    return sorted(obs, key=lambda o: (o["condition"], o["seed"], o["host"]))


__all__ = [
    "RecordedRun",
    "RunKey",
    "Used",
    "decision_head",
    "observations",
    "claimed_key",
    "select_runs",
]
