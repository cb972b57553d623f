"""How each stage's seeds are bound, said per stage: witness-bound, manifest-bound, unbound.

Why: a seed derived from the manifest id alone cannot have been used before the plan
existed, but the key holder can preview any number of candidate manifests offline (the
freeze time is theirs to choose, Ed25519 is deterministic) and freeze the one whose seeds
favour their condition: the seeds are grindable by whoever holds the key. A seed bound to
the freeze's timestamp token as well cannot be known before an outside authority signs,
so each try costs a request to it, and the token's time says how long after the freeze it
came. A plan with no seed rule runs seeds the operator chose in private. The audit says
which, and fails what the rule promises and the evidence does not keep.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from audit.evidence import Evidence
from ledger.manifest import signs_records
from ledger.plan_model import Manifest
from ledger.problems import Problem
from ledger.seeds import RULES, needs_witness, seed_rule

# A witness token signed later than this after the freeze could be one of many fetched
# until the seeds suited (the same bound as a journal event's lag behind its object).
MAX_WITNESS_LAG_S = 300.0

GRINDABLE = (
    "grindable by the key holder: the freeze time and plan bytes can be varied offline, "
    "before signing, until the derived seeds favour a condition"
)


@dataclass(frozen=True)
class SeedBinding:
    """How a stage's seeds are bound: its rule, the binding (`witness-bound`,
    `witness-bound (store-asserted token)`, `manifest-bound`, `unbound`, `unknown`), why,
    and the token they derive from (witness-bound only)."""

    rule: str | None
    binding: str
    detail: str = ""
    token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "binding": self.binding,
            "detail": self.detail,
            "token": self.token,
        }


def seed_binding(ev: Evidence, mid: str, manifest: Manifest) -> tuple[SeedBinding, list[Problem]]:
    """The stage's seed statement and the findings: unbound seeds of a current plan, a
    witness-bound rule without its token or with one signed long after the freeze."""
    rule = seed_rule(manifest)

    def problem(message: str) -> Problem:
        return Problem(mid, message, check="seeds bound", stage=manifest.stage)

    if rule is None:
        statement = SeedBinding(
            None,
            "unbound",
            "no seed rule: each run's seed is the declared one, chosen by the operator",
        )
        if signs_records(manifest):
            return statement, [
                problem(
                    "seeds unbound: the plan names no seed rule, so its runs trained with "
                    "seeds the operator chose in private"
                )
            ]
        return replace(
            statement, detail=f"{statement.detail} (frozen before seed rules existed)"
        ), []
    if rule not in RULES:
        return SeedBinding(rule, "unknown"), [
            problem(f"seed rule {rule!r} is unknown to this audit")
        ]
    if not needs_witness(rule):
        return SeedBinding(rule, "manifest-bound", GRINDABLE), []
    return _witnessed(ev, mid, manifest, rule, problem)


def _witnessed(
    ev: Evidence, mid: str, manifest: Manifest, rule: str, problem: Any
) -> tuple[SeedBinding, list[Problem]]:
    found = ev.witness_token(mid)
    if found is None:
        return SeedBinding(rule, "witness-bound"), [
            problem(
                f"seeds bound to the freeze's timestamp token ({rule}), and no usable token "
                f"over the manifest is journaled after its freeze"
            )
        ]
    lag = found.lag_s(manifest.frozen_at)
    verified = ev.verified.timestamps.tokens[found.token].verified  # usable: it is there
    detail = f"token {found.token[:12]} from {found.tsa} at {found.gen_time}" + (
        f", {lag:.1f} s after the freeze" if lag is not None else ""
    )
    if not verified:
        detail += (
            "; not checked against TSA roots (--tsa-roots): a token the store minted itself "
            "would let the key holder grind the seeds"
        )
    statement = SeedBinding(
        rule,
        "witness-bound" if verified else "witness-bound (store-asserted token)",
        detail,
        found.token,
    )
    if lag is not None and lag > MAX_WITNESS_LAG_S:
        return statement, [
            problem(
                f"the token its seeds derive from was signed {lag:.0f} s after the freeze: "
                f"tokens fetched meanwhile could have been chosen among"
            )
        ]
    return statement, []


__all__ = ["GRINDABLE", "MAX_WITNESS_LAG_S", "SeedBinding", "seed_binding"]
