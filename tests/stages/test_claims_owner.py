"""Whether a claimed run's process lives: read from the lock's owner file (a ClaimOwner)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from ledger.store import Store
from stages.claims import OWNER_SUFFIX, attempt_alive, lock_path

MANIFEST, RUN = "m" * 64, "c/0/h1"


def test_attempt_alive_reads_the_owner_file(tmp_path) -> None:
    store = Store.init(tmp_path / ".ledger", host="h1")
    owner = Path(str(lock_path(store, MANIFEST, RUN)) + OWNER_SUFFIX)
    assert attempt_alive(store, MANIFEST, RUN) is None  # no owner file: unknown
    owner.parent.mkdir(parents=True, exist_ok=True)
    here = socket.gethostname()

    owner.write_text(json.dumps({"pid": os.getpid(), "machine": here}))
    assert attempt_alive(store, MANIFEST, RUN) is True  # this very process

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    owner.write_text(json.dumps({"pid": gone.pid, "machine": here}))
    assert attempt_alive(store, MANIFEST, RUN) is False

    owner.write_text(json.dumps({"pid": os.getpid(), "machine": here + "-elsewhere"}))
    assert attempt_alive(store, MANIFEST, RUN) is None  # another machine's process: unknown

    zero = json.dumps({"pid": 0, "machine": here})
    for bad in (zero, '{"pid": "1"}', "[1, 2]", "not json"):
        owner.write_text(bad)
        assert attempt_alive(store, MANIFEST, RUN) is None, bad
