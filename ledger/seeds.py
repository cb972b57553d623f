"""Seeds bound to the frozen manifest: the seed a run trains with follows from the plan's id.

Why: a log's header cites its manifest id, but that is text the runner writes; a run trained
before the plan existed could be relabelled afterwards. When the seed it trains with
(initialisation and data order) is derived from the manifest id, the condition id and the
cell's declared seed, a run made before the manifest existed cannot have used it: its losses
would not replay with the derived seed, and a log that reports another seed is a finding.

The rule is frozen in the manifest (`"seeds": {"rule": "sha256-v1"}`), so the audit knows
which to apply; a manifest frozen before rules existed has none, and its runs keep their
declared seeds (audited as before).

`sha256-v1`: the first 8 bytes (big-endian) of SHA-256 over the UTF-8 text
`<manifest id>:<condition id>:<declared seed>`, with the top bit cleared so the seed fits
a signed 64-bit integer (the runner accepts `--seed` in [0, 2**63)). A reviewer can check one
by hand::

    printf '%s' "$MANIFEST:$CONDITION:0" | sha256sum | cut -c1-16    # then & 0x7fff...
"""

from __future__ import annotations

import hashlib
from typing import Any

from ledger.errors import LedgerError

DEFAULT_RULE = "sha256-v1"
RULES = (DEFAULT_RULE,)
_MASK = (1 << 63) - 1


def seed_plan() -> dict[str, str]:
    """What a new plan freezes under its `seeds` key."""
    return {"rule": DEFAULT_RULE}


def check_seed_plan(value: Any) -> None:
    """Refuse a plan's `seeds` value unless it names a known rule (LedgerError names the key)."""
    if not isinstance(value, dict) or set(value) != {"rule"}:
        raise LedgerError(f"plan key 'seeds': must be {{\"rule\": NAME}}, not {value!r}")
    if value["rule"] not in RULES:
        raise LedgerError(
            f"plan key 'seeds': unknown rule {value['rule']!r} (known: {', '.join(RULES)})"
        )


def seed_rule(manifest: dict[str, Any]) -> str | None:
    """The derivation rule a manifest froze, or None (frozen before seeds were bound)."""
    seeds = manifest.get("seeds") if isinstance(manifest, dict) else None
    rule = seeds.get("rule") if isinstance(seeds, dict) else None
    return rule if isinstance(rule, str) else None


def derive_seed(rule: str, manifest_id: str, condition: str, seed: int) -> int:
    """The effective seed of one declared run under `rule` (LedgerError for an unknown rule)."""
    if rule != DEFAULT_RULE:
        raise LedgerError(f"unknown seed rule {rule!r} (known: {', '.join(RULES)})")
    digest = hashlib.sha256(f"{manifest_id}:{condition}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & _MASK


def effective_seed(
    manifest_id: str, manifest: dict[str, Any], condition: str, seed: int
) -> int | None:
    """The seed the run must train with, or None when the manifest has no seed rule."""
    rule = seed_rule(manifest)
    return None if rule is None else derive_seed(rule, manifest_id, condition, seed)


__all__ = [
    "DEFAULT_RULE",
    "RULES",
    "check_seed_plan",
    "derive_seed",
    "effective_seed",
    "seed_plan",
    "seed_rule",
]
