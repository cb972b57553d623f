"""Freezing a plan: validate it, sign it as a manifest, journal the freeze.

Why: the manifest (exact run list, rule, analysis plan, parent decision) is signed *before*
any run starts; runs and decisions cite its id, so the plan cannot change afterwards unseen.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from ledger.canonical import canonical_bytes, is_object_id, sha256_hex
from ledger.errors import AlreadyFrozen, LedgerError
from ledger.keys import SigningKey
from ledger.seeds import check_seed_plan
from ledger.store import Store, load_object

REQUIRED_PLAN_KEYS: dict[str, str] = {
    "campaign": "a string",
    "stage": "a string",
    "budget_s": "a number > 0",
    "runs": "a non-empty list of {condition, seed, host}",
    "conditions": "an object: condition id -> {name, config, ...}",
    "rule": "an object",
    "analysis": "an object",
    "runner": "an object",
    "data_sha256": "a string or null",
    "parent": "a decision id or null",
}
RESERVED_KEYS = ("frozen_at", "freezer", "amends", "records")
# What every manifest frozen from now on says of its run records: the orchestrator signs
# each one with the store's key at ingest, so a writer without the key cannot replace one.
SIGNED_RECORDS = "signed"
DEFAULT_MAX_ATTEMPTS = 1


def _bad(key: str, why: str) -> LedgerError:
    return LedgerError(f"plan key {key!r}: {why}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_plan(store: Store, plan: Any) -> list[dict[str, Any]]:
    """Check every required key; return the runs sorted. LedgerError names the bad key."""
    if not isinstance(plan, dict):
        raise LedgerError("plan must be a JSON object")
    missing = [k for k in REQUIRED_PLAN_KEYS if k not in plan]
    if missing:
        raise _bad(missing[0], f"missing (expected {REQUIRED_PLAN_KEYS[missing[0]]})")
    for key in RESERVED_KEYS:
        if key in plan:
            raise _bad(key, "is set by freeze, not by the plan")
    for key in ("campaign", "stage"):
        if not isinstance(plan[key], str) or not plan[key]:
            raise _bad(key, "must be a non-empty string")
    budget = plan["budget_s"]
    if not _is_number(budget) or not math.isfinite(budget) or budget <= 0:
        raise _bad("budget_s", f"must be a number > 0, not {budget!r}")
    for key in ("rule", "analysis", "runner"):
        if not isinstance(plan[key], dict):
            raise _bad(key, "must be an object")
    if plan["data_sha256"] is not None and not isinstance(plan["data_sha256"], str):
        raise _bad("data_sha256", "must be a string or null")
    if "seeds" in plan:
        check_seed_plan(plan["seeds"])  # optional: how each run's effective seed is derived
    for key in ("gpus", "max_attempts"):
        value = plan.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _bad(key, f"must be an integer >= 1, not {value!r}")
    conditions = plan["conditions"]
    _check_conditions(conditions)
    runs = plan["runs"]
    if not isinstance(runs, list) or not runs:
        raise _bad("runs", "must be a non-empty list")
    seen: set[tuple[str, int, str]] = set()
    for i, run in enumerate(runs):
        if not isinstance(run, dict) or not {"condition", "seed", "host"} <= set(run):
            raise _bad("runs", f"entry {i} needs condition, seed and host")
        cond, seed, host = run["condition"], run["seed"], run["host"]
        if not isinstance(cond, str) or not cond or "/" in cond:
            raise _bad("runs", f"entry {i}: condition must be a non-empty id without '/'")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise _bad("runs", f"entry {i}: seed must be an integer, not {seed!r}")
        if not isinstance(host, str) or not host or "/" in host:
            raise _bad("runs", f"entry {i}: host must be a non-empty name without '/'")
        if cond not in conditions:
            raise _bad("runs", f"entry {i}: condition {cond!r} is not in 'conditions'")
        if (cond, seed, host) in seen:
            raise _bad("runs", f"entry {i}: duplicate run {cond}/{seed}/{host}")
        seen.add((cond, seed, host))
    parent = plan["parent"]
    if parent is not None:
        if not is_object_id(parent):
            raise _bad("parent", f"must be a decision id or null, not {parent!r}")
        if not store.exists(parent):
            raise _bad("parent", f"decision {parent} is not in the store")
        load_object(store, parent, "decision")
    return sorted(runs, key=lambda r: (r["condition"], r["seed"], r["host"]))


def _check_conditions(conditions: Any) -> None:
    """Each condition has a name and a config, and its id is the hash of that config (the
    id every run, record and decision names it by)."""
    if not isinstance(conditions, dict) or not conditions:
        raise _bad("conditions", "must be a non-empty object of condition id -> {name, config}")
    for cid, info in conditions.items():
        if not isinstance(info, dict) or "name" not in info or "config" not in info:
            raise _bad("conditions", f"condition {cid!r} needs 'name' and 'config'")
        if not isinstance(info["config"], dict):
            raise _bad("conditions", f"condition {cid!r}: config must be an object")
        expected = sha256_hex(canonical_bytes(info["config"]))
        if cid != expected:
            raise _bad(
                "conditions",
                f"condition {str(cid)[:16]!r} ({info['name']!r}) is not the SHA-256 of its "
                f"canonical config ({expected[:16]}...)",
            )


def signs_records(manifest: Any) -> bool:
    """Whether a manifest's run records must be signed (every manifest frozen since records
    were signed; older ones keep verifying with unsigned records, and say so)."""
    return isinstance(manifest, dict) and manifest.get("records") == SIGNED_RECORDS


def max_attempts(manifest: Any) -> int | None:
    """Attempts the plan allows per cell (None: frozen before attempts were bounded)."""
    if not isinstance(manifest, dict) or "records" not in manifest:
        return None
    value = manifest.get("max_attempts", DEFAULT_MAX_ATTEMPTS)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def check_freezable(store: Store, plan: dict[str, Any], *, amend: bool) -> str | None:
    """The manifest in force that an amending freeze of `plan` replaces (None when `amend`
    is False and the stage was never frozen).

    Raises:
        AlreadyFrozen: the stage has a manifest in force and `amend` is False.
        LedgerError: `amend` is True but the stage was never frozen.
    """
    existing = current_manifest_id(store, plan["campaign"], plan["stage"])
    if existing and not amend:
        raise AlreadyFrozen(
            f"stage {plan['stage']!r} of {plan['campaign']!r} is already frozen "
            f"as manifest {existing}; use --amend to replace it"
        )
    if amend and not existing:
        raise LedgerError(f"stage {plan['stage']!r} was never frozen: nothing to amend")
    return existing if amend else None


def freeze(
    store: Store, plan: dict[str, Any], key: SigningKey, *, amends: str | None = None
) -> str:
    """Sign `plan` as a manifest, journal `manifest_frozen` (or `amended`); return its id.

    A stage has one plan in force: a second freeze of the same campaign stage is refused
    unless it names the manifest it `amends` (what `--amend` passes: the one in force).

    Raises:
        AlreadyFrozen: the stage already has a manifest in force and `amends` is None.
        LedgerError: the plan is malformed, or `amends` is given for a stage never frozen
            or is not a manifest.
    """
    runs = validate_plan(store, plan)
    check_freezable(store, plan, amend=amends is not None)
    if amends is not None:
        load_object(store, amends, "manifest")
    body = {
        **plan,
        "max_attempts": plan.get("max_attempts", DEFAULT_MAX_ATTEMPTS),
        "runs": runs,
        "frozen_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "freezer": key.key_id,
        "amends": amends,
        "records": SIGNED_RECORDS,
    }
    canonical_bytes(body)  # refuse NaN/inf before anything is written
    keyring = store.keyring()
    if not keyring.has(key.key_id):
        keyring.add(key.public_record())
    manifest_id = store.put_signed("manifest", body, key)
    if amends is None:
        store.journal().append("manifest_frozen", object=manifest_id, key=key)
    else:
        store.journal().append("amended", object=manifest_id, manifest=amends, key=key)
    return manifest_id


def load_manifest(store: Store, manifest_id: str) -> dict[str, Any]:
    """A manifest's body (LedgerError if `manifest_id` is not a manifest)."""
    return load_object(store, manifest_id, "manifest")


def declared_run_keys(body: dict[str, Any]) -> set[str]:
    """`cond/seed/host` keys a manifest declares."""
    runs = body.get("runs") if isinstance(body, dict) else None
    if not isinstance(runs, list):
        return set()
    return {
        f"{r.get('condition')}/{r.get('seed')}/{r.get('host')}" for r in runs if isinstance(r, dict)
    }


def current_manifest_id(store: Store, campaign: str, stage: str) -> str | None:
    """The manifest in force for campaign/stage per the journals (latest not amended)."""
    seen: list[tuple[str, str]] = []
    for journal in store.journals():
        for event in journal.events():
            if event.get("kind") in ("manifest_frozen", "amended") and event.get("object"):
                seen.append((str(event.get("at")), event["object"]))
    found, superseded = [], set()
    for _, oid in sorted(seen):
        try:
            body = load_manifest(store, oid)
        except LedgerError:
            continue
        if body.get("campaign") == campaign and body.get("stage") == stage:
            found.append(oid)
            superseded.add(body.get("amends"))
    live = [m for m in found if m not in superseded]
    return live[-1] if live else None
