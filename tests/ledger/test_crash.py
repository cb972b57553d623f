"""A writer killed with SIGKILL mid-write leaves a store that verifies; a retry completes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from ledger.store import Store
from ledger.verify import verify

WRITER = """
import os, sys
from ledger.store import Store
store = Store.open(sys.argv[1], host="h1")
journal = store.journal()
i = int(sys.argv[2])
while True:
    oid = store.put_bytes(os.urandom(64) + b"%d" % i)
    journal.append("run_recorded", object=oid, run=f"c/{i}/h1")
    i += 1
"""


def _events(store: Store) -> int:
    path = store.root / "parts" / "h1" / "journal.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_write_leaves_a_verifying_store(store):
    rng = random.Random(7)
    for attempt in range(4):
        before = _events(store)
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store.root), str(attempt * 100000)],
            env=os.environ.copy(),
        )
        # kill mid-stream, not before the writer got going (its start-up time is the
        # machine's): wait for its first events, then a random moment later
        deadline = time.monotonic() + 120
        while _events(store) <= before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _events(store) > before, f"attempt {attempt}: the writer never wrote"
        time.sleep(rng.random() * 0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert verify(store) == [], f"attempt {attempt}"
    reopened = Store.open(store.root, host="h1")
    oid = reopened.put_bytes(b"after the crash")
    reopened.journal().append("run_recorded", object=oid)
    assert verify(reopened) == []
    assert len(reopened.journal().events()) > 4
