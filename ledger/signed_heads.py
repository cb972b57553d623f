"""What this machine last signed of each journal, kept outside the store.

Why: a signed journal head stops a writer without the key from re-chaining a journal
unseen, until the owner's next append signs a head over whatever the journal holds then.
So before signing, the writer checks that the journal still holds, byte for byte, the event
it signed last: a journal rewritten since (a start moved, an interruption deleted) is
refused with one line instead of being vouched for. The memory lives next to the private
keys (`LEDGER_KEY_DIR/heads/`), where the store's writers cannot reach it; a machine that
never signed a journal has nothing to compare and starts remembering.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, BinaryIO

from ledger.canonical import sha256_hex
from ledger.errors import IntegrityError
from ledger.keys import key_dir

MAX_LINE_BYTES = 1 << 20  # journal lines are a few hundred bytes


def memory_path(journal: Path) -> Path:
    """Where this machine keeps the last head it signed of `journal`."""
    digest = hashlib.sha256(str(Path(journal).resolve()).encode()).hexdigest()[:32]
    return key_dir() / "heads" / f"{digest}.json"


def remembered(journal: Path) -> dict[str, Any] | None:
    """`{"seq", "hash", "end"}` of the last event this machine signed, or None."""
    try:
        value = json.loads(memory_path(journal).read_bytes()[:4096])
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or not all(k in value for k in ("seq", "hash", "end")):
        return None
    return value


def remember(journal: Path, seq: int, digest: str, end: int) -> None:
    """Note the event just signed (best effort, no fsync: losing it loses only the check)."""
    path = memory_path(journal)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"seq": seq, "hash": digest, "end": end}))
        os.replace(tmp, path)


def check_extends(fh: BinaryIO, journal: Path, size: int) -> None:
    """Raise IntegrityError unless the journal (open as `fh`, `size` bytes of complete
    lines) still holds the event this machine signed last, where it was."""
    last = remembered(journal)
    if last is None:
        return
    end = last["end"]
    if not isinstance(end, int) or end < 1 or end > size:
        _refuse(journal, last)
    start = max(0, end - 1 - MAX_LINE_BYTES)
    fh.seek(start)
    chunk = fh.read(end - start)
    if not chunk.endswith(b"\n"):
        _refuse(journal, last)
    line = chunk[:-1].rsplit(b"\n", 1)[-1]
    if sha256_hex(line) != last["hash"]:
        _refuse(journal, last)


def _refuse(journal: Path, last: dict[str, Any]) -> None:
    raise IntegrityError(
        f"journal {journal} no longer holds event seq {last['seq']} as this machine signed "
        f"it: it was rewritten since; nothing appended (run `ledger verify`)"
    )


__all__ = ["check_extends", "memory_path", "remember", "remembered"]
