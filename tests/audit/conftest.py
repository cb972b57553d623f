"""Shared fixtures of the audit tests: a sim campaign walked through its first two gates."""

from __future__ import annotations

import pytest

from audit.rederive import audit_store
from ledger.canonical import canonical_bytes, sha256_hex
from ledger.keys import generate_key
from ledger.store import Store
from stages.campaign import load_campaign
from stages.executors.sim import SimExecutor
from stages.pipeline import run_campaign
from stages.sim import SimParams


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
    found = [str(f) for f in audit_store(store).findings]
    print("\n".join(found))
    return found


def rewrite_journal(journal, events: list[dict]) -> None:
    """What an attacker with file access does: re-chain every event and fix the head."""
    lines, prev = [], "0" * 64
    for seq, event in enumerate(events):
        line = canonical_bytes({**event, "seq": seq, "prev": prev})
        lines.append(line)
        prev = sha256_hex(line)
    journal.path.write_bytes(b"\n".join(lines) + b"\n")
    head = {"host": journal.host, "seq": len(lines) - 1, "hash": prev}
    journal.path.with_name("journal.head").write_bytes(canonical_bytes(head))
