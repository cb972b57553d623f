"""Freezing a plan: validate it, sign it as a manifest, journal the freeze.

Why: the manifest (exact run list, rule, analysis plan, parent decision) is signed *before*
any run starts; runs and decisions cite its id, so the plan cannot change afterwards unseen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ledger.canonical import canonical_bytes, is_object_id, sha256_hex
from ledger.document import problems
from ledger.errors import AlreadyFrozen, LedgerError, NotFrozen, PlanError
from ledger.keys import SigningKey
from ledger.plan_model import Manifest, Plan
from ledger.run_key import RunKey
from ledger.seeds import check_seed_plan
from ledger.store import Store, load_object, read_document

RESERVED_KEYS = ("frozen_at", "freezer", "amends", "records")
# What every manifest frozen from now on says of its run records: the orchestrator signs
# each one with the store's key at ingest, so a writer without the key cannot replace one.
SIGNED_RECORDS = "signed"
DEFAULT_MAX_ATTEMPTS = 1


def _bad(key: str, why: str) -> PlanError:
    return PlanError(f"plan key {key!r}: {why}")


def parse_plan(plan: Any) -> Plan:
    """A plan (a JSON object) as the `Plan` model; PlanError names every bad key:
    `plan key 'runs[0].seed': must be an integer, not '0'`."""
    if not isinstance(plan, dict):
        raise PlanError("plan must be a JSON object")
    for key in RESERVED_KEYS:
        if key in plan:
            raise _bad(key, "is set by freeze, not by the plan")
    try:
        parsed: Plan = Plan.model_validate(plan)
    except ValidationError as exc:
        raise PlanError("; ".join(f"plan key {k!r}: {w}" for k, w in problems(exc))) from None
    return parsed


def _check_condition_ids(plan: Plan) -> None:
    """Each condition's id is the hash of its config (the id every run, record and
    decision names it by), so a plan cannot show one config and train another."""
    for cid, info in plan.conditions.items():
        expected = sha256_hex(canonical_bytes(info.config))
        if cid != expected:
            raise _bad(
                "conditions",
                f"condition {str(cid)[:16]!r} ({info.name!r}) is not the SHA-256 of its "
                f"canonical config ({expected[:16]}...)",
            )


def validate_plan(store: Store, plan: Any) -> list[dict[str, Any]]:
    """Check every key (`parse_plan`), then what relates them: each run's condition is in
    `conditions` and no run is declared twice, the seed rule is known, and the parent is a
    decision in the store. Returns the runs, sorted, as written (they are signed as is)."""
    parsed = parse_plan(plan)
    _check_condition_ids(parsed)
    if parsed.seeds is not None:
        check_seed_plan(plan["seeds"])  # how each run's effective seed is derived
    seen: set[RunKey] = set()
    for i, run in enumerate(parsed.runs):
        if run.condition not in parsed.conditions:
            raise _bad("runs", f"entry {i}: condition {run.condition!r} is not in 'conditions'")
        if run.key in seen:
            raise _bad("runs", f"entry {i}: duplicate run {run.key}")
        seen.add(run.key)
    if parsed.parent is not None:
        if not is_object_id(parsed.parent):
            raise _bad("parent", f"must be a decision id or null, not {parsed.parent!r}")
        if not store.exists(parsed.parent):
            raise _bad("parent", f"decision {parsed.parent} is not in the store")
        load_object(store, parsed.parent, "decision")
    return sorted(plan["runs"], key=lambda r: (r["condition"], r["seed"], r["host"]))


def signs_records(manifest: Manifest) -> bool:
    """Whether a manifest's run records must be signed (every manifest frozen since records
    were signed; older ones keep verifying with unsigned records, and say so)."""
    return manifest.records == SIGNED_RECORDS


def max_attempts(manifest: Manifest) -> int | None:
    """Attempts the plan allows per cell (None: frozen before attempts were bounded)."""
    if manifest.records is None:
        return None
    return manifest.max_attempts or DEFAULT_MAX_ATTEMPTS


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
        raise NotFrozen(f"stage {plan['stage']!r} was never frozen: nothing to amend")
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


def load_manifest(store: Store, manifest_id: str) -> Manifest:
    """A manifest's body as its model (WrongKind if `manifest_id` is another kind,
    IntegrityError naming every key of a body that does not fit)."""
    return read_document(store, manifest_id, "manifest", Manifest)


def declared_run_keys(plan: Plan) -> set[str]:
    """`cond/seed/host` keys a manifest declares."""
    return {str(key) for key in plan.keys}


def current_manifest_id(store: Store, campaign: str, stage: str) -> str | None:
    """The manifest in force for campaign/stage per the journals (latest not amended)."""
    seen: list[tuple[str, str]] = []
    for journal in store.journals():
        for event in journal.events():
            if event.kind in ("manifest_frozen", "amended") and event.object is not None:
                seen.append((event.at, event.object))
    found, superseded = [], set()
    for _, oid in sorted(seen):
        try:
            body = load_manifest(store, oid)
        except LedgerError:
            continue
        if body.campaign == campaign and body.stage == stage:
            found.append(oid)
            superseded.add(body.amends)
    live = [m for m in found if m not in superseded]
    return live[-1] if live else None
