"""Shared fixtures of the audit tests: a sim campaign walked through its first two gates."""

from __future__ import annotations

import pytest

from audit.rederive import audit_store
from ledger.canonical import canonical_bytes, sha256_hex
from ledger.documents import JournalHead
from ledger.journal import signed_head
from ledger.keys import generate_key
from ledger.signed_heads import remember
from ledger.store import Store
from stages.campaign import load_campaign
from stages.executors.sim import SimExecutor
from stages.pipeline import run_campaign
from stages.surface import SimParams


@pytest.fixture
def done(tmp_path, sim_campaign):
    """A two-gate sim campaign walked to the end: (store, key, campaign, executor)."""
    store = Store.init(tmp_path / ".ledger", host="h1")
    key = generate_key("tester")
    camp = load_campaign(sim_campaign)
    sim = SimExecutor(SimParams.from_table(camp.sim, "ABCDE"))
    run_campaign(store, camp, key, sim, until="gate", progress=False)
    return store, key, camp, sim


def problems(store) -> list[str]:
    found = [str(f) for f in audit_store(store).problems]
    print("\n".join(found))
    return found


def rewrite_journal(journal, events: list[dict], key=None) -> None:
    """What someone with file access does: re-chain every event and fix the head (signed
    when they hold the store's key, `key`; unsigned when they do not)."""
    lines, prev = [], "0" * 64
    for seq, event in enumerate(events):
        line = canonical_bytes({**event, "seq": seq, "prev": prev})
        lines.append(line)
        prev = sha256_hex(line)
    data = b"\n".join(lines) + b"\n"
    journal.path.write_bytes(data)
    head = signed_head(JournalHead(host=journal.host, seq=len(lines) - 1, hash=prev), key)
    journal.path.with_name("journal.head").write_bytes(canonical_bytes(head))
    if key is not None:  # the key holder's own tools remember what they signed
        remember(journal.path, len(lines) - 1, prev, len(data))


def signed_run(store, body: dict, key) -> str:
    """A run record as the orchestrator writes it: signed with the store's key."""
    return store.put_signed("run", {**body, "recorder": key.key_id}, key)
