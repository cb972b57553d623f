"""What the timestamp authorities witness: for each stage, frozen no later than T1 and decided
no later than T2.

Why in the audit: a token proves that one object existed at its time; an anchor's token
proves the same of every journal event up to the heads it signs. The audit turns the
accepted tokens (`ledger.timestamp`, checked in the verify pass) into one bound per object:
the earliest token over the object itself, or over an anchor whose heads cover the event
that journaled it. A decision whose bound is earlier than its manifest's (or a manifest
earlier than its parent decision's) was stamped before the object it cites was: that
object's token was taken late and does not witness the order, so it is a finding.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.documents import Anchor
from ledger.plan_model import Manifest
from ledger.problems import Problem
from ledger.timestamp import TimestampReport, TokenCheck
from ledger.verify import Event


@dataclass(frozen=True)
class Bound:
    """An object existed no later than `time`, per `token` (over `via`, itself or an anchor)."""

    time: datetime
    token: str
    tsa: str | None
    via: str  # the stamped object: the object itself or an anchor covering its event

    def to_dict(self, oid: str) -> dict[str, Any]:
        return {
            "no_later_than": self.time.isoformat(),
            "token": self.token,
            "tsa": self.tsa,
            "via": "its own token" if self.via == oid else f"anchor {self.via}",
        }


def _bound(token: TokenCheck, via: str) -> Bound:
    assert token.gen_time is not None
    return Bound(token.gen_time, token.id, token.tsa, via)


def bounds(
    report: TimestampReport, events: list[Event], anchors: dict[str, Anchor]
) -> dict[str, Bound]:
    """Object id -> its earliest witnessed bound, from its own tokens and from anchor tokens
    whose heads cover the journal event that cites it."""
    out: dict[str, Bound] = {}

    def offer(oid: str, bound: Bound) -> None:
        if oid not in out or (bound.time, bound.token) < (out[oid].time, out[oid].token):
            out[oid] = bound

    for check in report.tokens.values():
        if check.usable and check.object:
            offer(check.object, _bound(check, check.object))
    by_host: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_host[event.host].append(event)
    for anchor_id, anchor in anchors.items():
        stamped = report.for_object(anchor_id)
        if not stamped:
            continue
        bound = _bound(stamped[0], anchor_id)
        for head in anchor.heads:
            for event in by_host[head.host]:
                if event.index <= head.seq and isinstance(event.object, str):
                    offer(event.object, bound)
    return out


def order_findings(
    found: dict[str, Bound], manifests: dict[str, Manifest], decisions: dict[str, str]
) -> list[Problem]:
    """Decisions witnessed earlier than their manifest, manifests earlier than their parent.

    `decisions` maps each manifest id to the decision that counts for it.
    """
    out = []
    for mid, did in sorted(decisions.items()):
        first, then = found.get(mid), found.get(did)
        if first and then and then.time < first.time:
            out.append(
                Problem(
                    did,
                    f"decision timestamped at {then.time.isoformat()} (token "
                    f"{then.token[:12]}), earlier than its manifest {mid[:12]}'s "
                    f"earliest timestamp {first.time.isoformat()} (token "
                    f"{first.token[:12]}): the manifest was stamped late, so "
                    f"its time does not witness the freeze before the decision",
                    check="timestamps in order",
                )
            )
    for mid, manifest in sorted(manifests.items()):
        parent = manifest.parent
        first, then = found.get(parent) if parent is not None else None, found.get(mid)
        if first and then and then.time < first.time:
            out.append(
                Problem(
                    mid,
                    f"manifest timestamped at {then.time.isoformat()}, earlier "
                    f"than its parent decision {str(parent)[:12]}'s earliest "
                    f"timestamp {first.time.isoformat()}: the parent was "
                    f"stamped late",
                    check="timestamps in order",
                )
            )
    return out


def stage_witness(
    found: dict[str, Bound], manifest: str, decision: str | None, witnessed: bool
) -> dict[str, Any]:
    """The witnessed interval of one stage, for the audit's JSON and text."""
    frozen, decided = found.get(manifest), found.get(decision) if decision else None
    return {
        "frozen": frozen.to_dict(manifest) if frozen else None,
        "decided": decided.to_dict(decision) if decided and decision else None,
        "checked_against": "reviewer TSA roots" if witnessed else "nothing (no --tsa-roots)",
    }


__all__ = ["Bound", "bounds", "order_findings", "stage_witness"]
