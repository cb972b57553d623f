"""What a clean audit does not prove here: one typed list that every surface shows.

Why one list, made by the audit: the terminal, `--json`, the HTML banner and `metrics.json`
must say the same thing ("signed with the demo key", "trust is store-asserted"). Built once
from what the audit read, each caveat names the keys or stages it is about, so a reader
sees which key is the demo key without opening the report.

Each rule below is a small function of `CaveatInputs`; a new kind of caveat is one more
input field and one more rule in `RULES` (the binding level of each stage's logs,
`ledger.binding_level`, came in that way).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.binding_level import HEADER, STATUS_ONLY, BindingLevel
from ledger.decision_model import Decision
from ledger.keys import DEMO_KEY_NAME
from ledger.plan_model import Manifest


def is_demo_key(name: object) -> bool:
    """The demo key's name (made unencrypted by `ledger campaign --demo-key`)."""
    return isinstance(name, str) and (name == DEMO_KEY_NAME or name.startswith("DEMO-KEY"))


@dataclass(frozen=True)
class KeyName:
    """A key as a reader recognises it: its name and its 32-hex id (the fingerprint)."""

    key_id: str
    name: str

    def __str__(self) -> str:
        return f"{self.name} [{self.key_id}]"

    def to_dict(self) -> dict[str, str]:
        return {"key_id": self.key_id, "name": self.name}


@dataclass(frozen=True)
class Signer:
    """A key that signed manifests or decisions the audit read, and how many."""

    key_id: str
    name: str
    signed: int
    demo: bool

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "name": self.name, "signed": self.signed, "demo": self.demo}


@dataclass(frozen=True)
class Caveat:
    """One thing a clean verdict does not mean here. `kind` is stable for scripts
    (`simulated`, `demo_key`, `status_only_logs`, `foreign_runner`, `no_anchor`,
    `own_anchors_only`, `store_trust`); `text` is the sentence every surface prints; `keys`
    and `stages` say what it is about."""

    kind: str
    text: str
    keys: tuple[KeyName, ...] = ()
    stages: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "keys": [k.to_dict() for k in self.keys],
            "stages": list(self.stages),
        }


@dataclass(frozen=True)
class CaveatInputs:
    """What the caveats are judged from, all read by the audit itself."""

    runs: int
    simulated_by_stage: tuple[tuple[str, int], ...]  # (stage, simulated runs), stages with any
    signers: tuple[Signer, ...]
    anchors_in_store: int
    anchors_given: int
    trust: str  # "store" or "reviewer"
    trusted: tuple[KeyName, ...]  # the reviewer's keys (empty under store trust)
    binding: tuple[tuple[str, BindingLevel], ...] = ()  # (stage, its logs' level), in force


def _simulated(facts: CaveatInputs) -> Caveat | None:
    sim = sum(n for _, n in facts.simulated_by_stage)
    if not sim:
        return None
    share = "All" if sim == facts.runs else f"{sim} of"
    stages = tuple(stage for stage, _ in facts.simulated_by_stage)
    return Caveat(
        "simulated",
        f"{share} {facts.runs} runs are simulated (runner: sim), in {', '.join(stages)}: "
        f"their numbers come from a synthetic response surface, not from training.",
        stages=stages,
    )


def _demo_key(facts: CaveatInputs) -> Caveat | None:
    demo = tuple(KeyName(s.key_id, s.name) for s in facts.signers if s.demo)
    demo += tuple(k for k in facts.trusted if is_demo_key(k.name) and k not in demo)
    if not demo:
        return None
    keys = ", ".join(map(str, demo))
    return Caveat(
        "demo_key",
        f"Signed with the demo key {keys}: its private key is made unencrypted by anyone "
        f"running the demo, so its signatures prove nothing about who froze or decided.",
        keys=demo,
    )


def _at(facts: CaveatInputs, level: str) -> tuple[tuple[str, ...], list[BindingLevel]]:
    rows = [(stage, b) for stage, b in facts.binding if b.level == level]
    return tuple(dict.fromkeys(stage for stage, _ in rows)), [b for _, b in rows]


def _status_only(facts: CaveatInputs) -> Caveat | None:
    stages, _ = _at(facts, STATUS_ONLY)
    if not stages:
        return None
    return Caveat(
        "status_only_logs",
        f"Status-only logs ({', '.join(stages)}): autoresearch summary blocks without a "
        f"header, so the audit checked each status against its evidence and each number "
        f"against the log, but nothing proves which config, seed or budget a run trained "
        f"with, or that it ran after its manifest was frozen (use the autoresearch adapter "
        f"or a jsonl log with a header; docs/runner.md).",
        stages=stages,
    )


def _foreign_runner(facts: CaveatInputs) -> Caveat | None:
    stages, levels = _at(facts, HEADER)
    if not stages:
        return None
    bound = dict.fromkeys(b for level in levels for b in level.bound)
    unbound = sorted({u for level in levels for u in level.unbound})
    return Caveat(
        "foreign_runner",
        f"Foreign runner ({', '.join(stages)}): each log's header binds it to its run "
        f"({', '.join(bound)}); {' and '.join(unbound)} are not bound by the ledger.",
        stages=stages,
    )


def _anchors(facts: CaveatInputs) -> Caveat | None:
    if facts.anchors_given:
        return None
    if not facts.anchors_in_store:
        return Caveat(
            "no_anchor",
            "No anchor was made: nothing published outside this store pins its journals "
            "(`ledger anchor`, then publish what it prints; a reviewer passes it with --anchor).",
        )
    return Caveat(
        "own_anchors_only",
        f"The journals were checked against the store's own {facts.anchors_in_store} "
        f"anchor(s) only: whoever can rewrite the store can rewrite those too; pass the "
        f"anchors you saw published with --anchor.",
    )


def _trust(facts: CaveatInputs) -> Caveat | None:
    if facts.trust != "store":
        return None
    keys = tuple(KeyName(s.key_id, s.name) for s in facts.signers)
    named = f" (signed by {', '.join(map(str, keys))})" if keys else ""
    return Caveat(
        "store_trust",
        f"Trust is store-asserted: signatures were checked against the keys the store itself "
        f"holds{named}; a reviewer names theirs with --trust or --trust-file.",
        keys=keys,
    )


RULES: tuple[Callable[[CaveatInputs], Caveat | None], ...] = (
    _simulated,
    _demo_key,
    _status_only,
    _foreign_runner,
    _anchors,
    _trust,
)


def caveats(facts: CaveatInputs) -> list[Caveat]:
    """Every rule's caveat, in the order of `RULES` (most serious first)."""
    return [c for c in (rule(facts) for rule in RULES) if c is not None]


def signers(
    names: Mapping[str, str],
    manifests: Iterable[Manifest],
    decisions: Iterable[Decision],
) -> list[Signer]:
    """The keys that froze the manifests and made the decisions, by id, with their names
    (`names`: key id -> name, the reviewer's records over the store's keyring)."""
    used = Counter([m.freezer for m in manifests] + [d.decider for d in decisions])
    out = []
    for kid, n in sorted(used.items()):
        name = names.get(kid, "unknown")  # a key the keyring does not hold
        out.append(Signer(kid, name, n, is_demo_key(name)))
    return out


__all__ = [
    "RULES",
    "Caveat",
    "CaveatInputs",
    "KeyName",
    "Signer",
    "caveats",
    "is_demo_key",
    "signers",
]
