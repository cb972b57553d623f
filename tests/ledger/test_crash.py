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


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_write_leaves_a_verifying_store(store):
    rng = random.Random(7)
    for attempt in range(4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store.root),
                                 str(attempt * 100000)], env=os.environ.copy())
        time.sleep(0.4 + rng.random() * 0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert verify(store) == [], f"attempt {attempt}"
    reopened = Store.open(store.root, host="h1")
    oid = reopened.put_bytes(b"after the crash")
    reopened.journal().append("run_recorded", object=oid)
    assert verify(reopened) == []
    assert len(reopened.journal().events()) > 4
