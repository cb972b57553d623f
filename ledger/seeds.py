"""Seeds bound to the frozen manifest: the seed a run trains with follows from the plan's id.

Why: a log's header cites its manifest id, but that is text the runner writes; a run trained
before the plan existed could be relabelled afterwards. When the seed it trains with
(initialisation and data order) is derived from the manifest id, the condition id and the
cell's declared seed, a run made before the manifest existed cannot have used it: its losses
would not replay with the derived seed, and a log that reports another seed is a finding.

The rule is frozen in the manifest (`"seeds": {"rule": "sha256-v2"}`), so the audit knows
which to apply; a manifest frozen before rules existed has none, and its runs keep their
declared seeds (audited as before). Rules are versioned: a store keeps verifying under the
rule each manifest froze.

`sha256-v2` (the default): the first 4 bytes (big-endian) of SHA-256 over the UTF-8 text
`<manifest id>:<condition id>:<declared seed>`, a seed in [0, 2**32 - 1]: the range that
`random.seed`, `numpy.random.seed`, `numpy.random.default_rng` and `torch.manual_seed` all
accept, so a researcher's own script can take `{seed}` as it is. A reviewer can check one by
hand::

    printf '%s' "$MANIFEST:$CONDITION:0" | sha256sum | cut -c1-8     # hex of the seed

`sha256-v1` (older manifests): the first 8 bytes with the top bit cleared, a seed in
[0, 2**63), which numpy refuses.

`sha256-v3-witness` (a freeze witnessed by a timestamp authority): as v2 over
`<manifest id>:<witness>:<condition id>:<declared seed>`, where the witness is the SHA-256
of the first RFC 3161 token journaled over the manifest after its freeze (its DER bytes,
signature included). Why: under v1/v2 the key holder can preview any number of candidate
manifests offline (the freeze time is theirs, Ed25519 is deterministic) and freeze the one
whose seeds favour their condition; the TSA's signature cannot be known before the TSA
signs, so each try costs a request to an outside authority, and the audit checks how long
after the freeze the token came (`ledger.witness_seed`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ledger.errors import LedgerError, PlanError
from ledger.plan_model import Plan

DEFAULT_RULE = "sha256-v2"
WITNESS_RULE = "sha256-v3-witness"
# rule -> (bytes of the digest taken, mask): every rule a stored manifest may name
_RULES: dict[str, tuple[int, int]] = {
    "sha256-v1": (8, (1 << 63) - 1),
    "sha256-v2": (4, (1 << 32) - 1),
    WITNESS_RULE: (4, (1 << 32) - 1),
}
RULES = tuple(_RULES)
WITNESS_RULES = frozenset({WITNESS_RULE})


def seed_plan(*, witnessed: bool = False) -> dict[str, str]:
    """What a new plan freezes under its `seeds` key: the witness-bound rule when the
    freeze will be stamped by a timestamp authority, else the manifest-bound default."""
    return {"rule": WITNESS_RULE if witnessed else DEFAULT_RULE}


def needs_witness(rule: str | None) -> bool:
    """Whether seeds under `rule` derive from a timestamp token as well as the manifest."""
    return rule in WITNESS_RULES


def check_seed_plan(value: Any) -> None:
    """Refuse a plan's `seeds` value unless it names a known rule (LedgerError names the key)."""
    if not isinstance(value, dict) or set(value) != {"rule"}:
        raise PlanError(f"plan key 'seeds': must be {{\"rule\": NAME}}, not {value!r}")
    if value["rule"] not in RULES:
        raise PlanError(
            f"plan key 'seeds': unknown rule {value['rule']!r} (known: {', '.join(RULES)})"
        )


def seed_rule(manifest: Plan) -> str | None:
    """The derivation rule a manifest froze, or None (frozen before seeds were bound)."""
    return manifest.seeds.rule if manifest.seeds is not None else None


def derive_seed(
    rule: str, manifest_id: str, condition: str, seed: int, witness: str | None = None
) -> int:
    """The effective seed of one declared run under `rule` (LedgerError for an unknown rule,
    or a witness-bound rule without the `witness` digest)."""
    if rule not in _RULES:
        raise PlanError(f"unknown seed rule {rule!r} (known: {', '.join(RULES)})")
    width, mask = _RULES[rule]
    if rule in WITNESS_RULES:
        if not witness:
            raise LedgerError(
                f"seed rule {rule} derives seeds from the freeze's timestamp token, and "
                f"manifest {manifest_id[:12]} has none yet (`ledger timestamp {manifest_id[:12]}`)"
            )
        text = f"{manifest_id}:{witness}:{condition}:{seed}"
    else:
        text = f"{manifest_id}:{condition}:{seed}"
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:width], "big") & mask


def effective_seed(
    manifest_id: str,
    manifest: Plan,
    condition: str,
    seed: int,
    witness: str | None = None,
) -> int | None:
    """The seed the run must train with, or None when the manifest has no seed rule."""
    rule = seed_rule(manifest)
    return None if rule is None else derive_seed(rule, manifest_id, condition, seed, witness)


def seed_inputs(
    manifest_id: str, condition: str, seed: int, witness: str | None = None
) -> dict[str, Any]:
    """What a header's `seed_inputs` holds: the derivation's inputs (with the witness digest
    under a witness-bound rule)."""
    out: dict[str, Any] = {"manifest": manifest_id, "condition": condition, "seed": seed}
    if witness is not None:
        out["witness"] = witness
    return out


__all__ = [
    "DEFAULT_RULE",
    "RULES",
    "WITNESS_RULE",
    "WITNESS_RULES",
    "check_seed_plan",
    "derive_seed",
    "effective_seed",
    "needs_witness",
    "seed_inputs",
    "seed_plan",
    "seed_rule",
]
