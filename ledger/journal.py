"""One append-only, hash-chained journal per writing host: `parts/<host>/journal.jsonl`.

Each line is the canonical JSON of `{"seq","prev","kind","object","run","manifest","at"}`
where `prev` is the sha256 of the previous line's bytes (64 zeros for the first line), so a
deleted, inserted, reordered or edited event breaks the chain. A small `journal.head` file
next to it records the last acknowledged `{"host","seq","hash"}`, so that an edit of the
*last* line (which no later line chains to) or a truncation is caught too.

When the writer holds the store's signing key (every command that records evidence does),
the head also carries an Ed25519 signature over `{"host","seq","hash"}`: a writer with file
access but no key can then rewrite the chain consistently, but not sign the new head, and
`verify` requires a signed head of every journal that holds signed-record evidence. Before
signing, the writer checks that the journal still holds the event it signed last
(`ledger.signed_heads`), so its signature never covers a chain rewritten in between.

Crash choice (kept simple): an append writes one line plus its newline, fsyncs, then
rewrites the head. A process killed mid-write leaves a last line without its newline; that
line was never acknowledged, so readers ignore it and the next append truncates it. A head
that lags one event behind (killed between the two writes) is accepted and repaired by the
next append. Anything else is reported by `verify`.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pydantic import ValidationError

from ledger.canonical import canonical_bytes, is_object_id, sha256_hex
from ledger.documents import JournalEvent, JournalHead, RecordedHead
from ledger.errors import IntegrityError, JournalLocked, LedgerError, StorageError
from ledger.fsutil import atomic_write, ensure_dir
from ledger.keys import SigningKey
from ledger.problems import Problem
from ledger.signed_heads import check_extends, remember

ZERO = "0" * 64
EVENT_KINDS = frozenset(
    {
        "manifest_frozen",
        "amended",
        "run_started",
        "run_recorded",
        "run_interrupted",
        "decision_made",
        "anchor",
        "key_revoked",
        "timestamped",
    }
)
EVENT_FIELDS = frozenset({"seq", "prev", "kind", "object", "run", "manifest", "at"})
HEAD_FIELDS = frozenset({"host", "seq", "hash"})
LOCK_TIMEOUT_S = 60.0
MAX_HEAD_BYTES = 4096  # a head is ~300 bytes signed: anything larger is not one
MAX_LINE_BYTES = 4096  # an event is ~350 bytes: anything larger is not one


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def head_payload(head: JournalHead) -> bytes:
    """What a head's signature covers: the canonical bytes of `{"host","seq","hash"}`."""
    return canonical_bytes({"hash": head.hash, "host": head.host, "seq": head.seq})


def signed_head(head: JournalHead, key: SigningKey | None) -> dict[str, Any]:
    """`head` as `journal.head` stores it, with `key`'s signature over it when given."""
    stored = {"host": head.host, "seq": head.seq, "hash": head.hash}
    if key is None:
        return stored
    sig = base64.b64encode(key.sign(head_payload(head))).decode("ascii")
    return {**stored, "signature": {"alg": "ed25519", "key_id": key.key_id, "sig": sig}}


def _tail(fh: Any, size: int) -> tuple[bytes | None, int, int]:
    """(last complete line, byte length of complete lines, number of newlines seen so far).

    Reads backwards from the end in growing chunks, so an append costs the same whether the
    journal holds ten events or a million.
    """
    if size == 0:
        return None, 0, 0
    chunk = 4096
    while True:
        start = max(0, size - chunk)
        fh.seek(start)
        buf = fh.read(size - start)
        last_nl = buf.rfind(b"\n")
        if last_nl < 0 and start > 0:
            chunk *= 4
            continue
        if last_nl < 0:
            return None, 0, 0
        end = start + last_nl + 1
        prev_nl = buf.rfind(b"\n", 0, last_nl)
        if prev_nl < 0 and start > 0:
            chunk *= 4
            continue
        return buf[prev_nl + 1 : last_nl], end, 1


class Journal:
    """A host's journal: append events under a file lock, read them, verify the chain."""

    def __init__(self, path: Path | str, host: str) -> None:
        self.path = Path(path)
        self.host = host
        self.head_path = self.path.with_name("journal.head")
        self.lock_path = Path(str(self.path) + ".lock")
        self._held = 0  # depth of `locked()` blocks this object is inside

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, host={self.host!r})"

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        kind: str,
        *,
        object: str | None = None,  # noqa: A002 - the field is called "object" on disk
        run: str | None = None,
        manifest: str | None = None,
        key: SigningKey | None = None,
    ) -> JournalEvent:
        """Append one event and return it once it is durable (fsynced); the new head is
        signed with `key` when given."""
        if kind not in EVENT_KINDS:
            raise LedgerError(f"unknown journal event kind {kind!r}")
        for name, value in (("object", object), ("manifest", manifest)):
            if value is not None and not is_object_id(value):
                raise LedgerError(f"journal event {name} is not an object id: {value!r}")
        if run is not None and not isinstance(run, str):
            raise LedgerError(f"journal event run must be a string, not {run!r}")
        if self._held:
            return self._append_locked(kind, object, run, manifest, key)
        with self.locked():
            return self._append_locked(kind, object, run, manifest, key)

    @contextmanager
    def locked(self) -> Iterator[Journal]:
        """Hold the journal's lock across a check and the appends it allows.

        Why: "is this run recorded yet?" and "record it" must be one step, or two processes
        recording the same run both pass the check. Appends inside the block reuse the lock.
        """
        if self._held:
            self._held += 1
            try:
                yield self
            finally:
                self._held -= 1
            return
        ensure_dir(self.path.parent)
        lock = FileLock(str(self.lock_path), timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            raise JournalLocked(f"journal {self.path} is locked by another process") from None
        except OSError as exc:
            raise StorageError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        self._held = 1
        try:
            yield self
        finally:
            self._held = 0
            lock.release()

    def _append_locked(
        self,
        kind: str,
        obj: str | None,
        run: str | None,
        manifest: str | None,
        key: SigningKey | None,
    ) -> JournalEvent:
        try:
            return self._write_event(kind, obj, run, manifest, key)
        except OSError as exc:
            raise StorageError(f"cannot append to {self.path}: {exc.strerror or exc}") from None

    def _write_event(
        self,
        kind: str,
        obj: str | None,
        run: str | None,
        manifest: str | None,
        key: SigningKey | None,
    ) -> JournalEvent:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        with os.fdopen(fd, "r+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            last, end, _ = _tail(fh, size)
            if end != size:
                self._drop_torn_tail(fh, end)
            if key is not None:
                check_extends(fh, self.path, end)
            if last is None:
                seq, prev = 0, ZERO
            else:
                seq = self._last_seq(last) + 1
                prev = sha256_hex(last)
                self._catch_up_head(seq - 1, prev)
            event = JournalEvent(
                seq=seq, prev=prev, kind=kind, object=obj, run=run, manifest=manifest, at=_now()
            )
            line = canonical_bytes(event.to_dict())
            fh.seek(end)
            fh.write(line + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        head = JournalHead(host=self.host, seq=seq, hash=sha256_hex(line))
        atomic_write(self.head_path, canonical_bytes(signed_head(head, key)), sync_dir=False)
        if key is not None:
            remember(self.path, seq, head.hash, end + len(line) + 1)
        return event

    def _last_seq(self, line: bytes) -> int:
        """The seq of the journal's last line (IntegrityError when it is no event)."""
        try:
            return JournalEvent.model_validate_json(line).seq
        except ValidationError:
            raise IntegrityError(
                f"journal {self.path}: last line is damaged; run `ledger verify`"
            ) from None

    def _catch_up_head(self, seq: int, digest: str) -> None:
        """Point a lagging head at the last line before appending after it.

        A writer killed between its line and its head leaves the head one event behind; were
        the next append killed at the same point, it would fall two behind, which `verify`
        reads as events appended outside the ledger. Repairing first keeps the lag at one.
        """
        recorded = self._read_head()[1]
        if recorded is None or recorded.seq == seq and recorded.hash == digest:
            return  # (absent or damaged: the chain check names it)
        if recorded.seq == seq - 1:
            head = JournalHead(host=self.host, seq=seq, hash=digest)
            atomic_write(self.head_path, canonical_bytes(signed_head(head, None)), sync_dir=False)

    def _drop_torn_tail(self, fh: Any, end: int) -> None:
        """Truncate a line cut short by a crash, unless the head says it was acknowledged."""
        recorded = self._read_head()[1]
        complete = end  # bytes of complete lines; count them only if the head needs it
        if recorded is not None:
            fh.seek(0)
            n_lines = fh.read(complete).count(b"\n")
            if recorded.seq >= n_lines:
                raise IntegrityError(
                    f"journal {self.path}: its last acknowledged event is damaged "
                    f"(no newline); run `ledger verify`"
                )
        fh.truncate(end)
        fh.flush()
        os.fsync(fh.fileno())

    def _read_head(self) -> tuple[bool, RecordedHead | None]:
        """(whether journal.head exists, the head as stored; None when it is damaged:
        unreadable, too large, or not a head of this journal)."""
        try:
            data = self.head_path.read_bytes()
        except FileNotFoundError:
            return False, None
        except OSError:
            return True, None
        if len(data) > MAX_HEAD_BYTES:
            return True, None
        try:
            head = RecordedHead.model_validate_json(data)
        except ValidationError:
            return True, None
        return True, head if head.host == self.host and head.seq >= 0 else None

    def recorded_head(self) -> RecordedHead | None:
        """journal.head as stored (with its signature, if any); None when absent or
        damaged (the chain check, `verify`, names which)."""
        return self._read_head()[1]

    # -- reading ---------------------------------------------------------------------------

    def lines(self) -> tuple[list[bytes], bytes]:
        """Complete lines (without newline) and any torn tail after the last newline."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return [], b""
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        cut = data.rfind(b"\n") + 1
        body, torn = data[:cut], data[cut:]
        return (body[:-1].split(b"\n") if body else []), torn

    def events(self) -> list[JournalEvent]:
        """Every acknowledged event, in order (IntegrityError on a line that is not JSON);
        a line that is no event of the ledger's shape is skipped (`verify` names it)."""
        out = []
        for i, line in enumerate(self.lines()[0]):
            event = parse_event(line)
            if event is not None:
                out.append(event)
                continue
            try:
                found = json.loads(line)
            except (ValueError, RecursionError):
                raise IntegrityError(
                    f"journal {self.path}: line {i + 1} is not valid JSON"
                ) from None
            if not isinstance(found, dict):
                raise IntegrityError(f"journal {self.path}: line {i + 1} is not an event")
        return out

    def head(self) -> JournalHead | None:
        """`{host, seq, hash}` of the last acknowledged event, or None if empty."""
        lines = self.lines()[0]
        if not lines:
            return None
        return JournalHead(
            host=self.host, seq=self._last_seq(lines[-1]), hash=sha256_hex(lines[-1])
        )

    # -- checking --------------------------------------------------------------------------

    def verify(self, lines: list[bytes] | None = None) -> list[Problem]:
        """Chain, sequence, field and head checks; one Problem per broken spot."""
        where = f"parts/{self.host}/journal.jsonl"
        if lines is None:
            lines = self.lines()[0]
        problems: list[Problem] = []
        prev_hash = ZERO
        for i, line in enumerate(lines):
            message = _check_line(line, i, prev_hash)
            if message:
                problems.append(Problem(where, f"line {i + 1}: {message}"))
            prev_hash = sha256_hex(line)
        problems += self._verify_head(where, lines)
        return problems

    def _verify_head(self, where: str, lines: list[bytes]) -> list[Problem]:
        exists, recorded = self._read_head()
        n = len(lines)
        if not exists:
            if n > 1:
                return [Problem(where, "journal.head is missing")]
            return []
        if recorded is None:
            return [Problem(where, "journal.head is damaged")]
        seq, digest = recorded.seq, recorded.hash
        if seq >= n:
            return [
                Problem(
                    where,
                    f"journal ends at seq {n - 1} but its head records seq "
                    f"{seq}: events were removed or the last line damaged",
                )
            ]
        if sha256_hex(lines[seq]) != digest:
            return [
                Problem(
                    where,
                    f"line {seq + 1} (seq {seq}) does not match journal.head: "
                    f"the event or the head was edited",
                )
            ]
        if seq < n - 2:
            return [
                Problem(
                    where,
                    f"journal.head records seq {seq} but the journal goes on "
                    f"to seq {n - 1}: events appended outside the ledger",
                )
            ]
        return []


def _check_line(line: bytes, i: int, prev_hash: str) -> str | None:
    """Why line `i` breaks the chain, or None."""
    if len(line) > MAX_LINE_BYTES:
        return f"{len(line)} bytes, more than a journal event's {MAX_LINE_BYTES}"
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        return "not valid JSON (edited or damaged)"
    why = malformed(event)
    if why:
        return why
    if event["seq"] != i:
        return f"seq {event['seq']!r} where {i} was expected (event deleted, inserted or reordered)"
    if event["prev"] != prev_hash:
        return "does not chain to the line before it (an event was edited, deleted, inserted or reordered)"
    return None


def parse_event(line: bytes) -> JournalEvent | None:
    """A journal line as its event, or None when it is no event of the ledger's shape (the
    same lines `malformed` names, in the chain's words, for `verify`): one JSON parse and
    validation, where readers meet every line of every journal."""
    try:
        event = JournalEvent.model_validate_json(line)
    except ValidationError:
        return None
    if event.kind not in EVENT_KINDS:
        return None
    if any(oid is not None and not is_object_id(oid) for oid in (event.object, event.manifest)):
        return None
    return event


def malformed(event: Any) -> str | None:
    """Why a parsed line is not a journal event of the ledger's shape (None: it is one).
    Readers skip such lines (verify reports them), so nothing downstream meets a list where
    a kind, an id or a time belongs."""
    if not isinstance(event, dict) or set(event) != EVENT_FIELDS:
        return "not a journal event (fields edited)"
    if isinstance(event["kind"], str) and event["kind"] not in EVENT_KINDS:
        return f"unknown event kind {event['kind']!r}"
    if not isinstance(event["kind"], str):
        return "kind is not a string"
    if not isinstance(event["seq"], int) or isinstance(event["seq"], bool):
        return "seq is not an integer"
    if not isinstance(event["at"], str) or not isinstance(event["prev"], str):
        return "at or prev is not a string"
    if event["run"] is not None and not isinstance(event["run"], str):
        return "run is not a string"
    for name in ("object", "manifest"):
        if event[name] is not None and not is_object_id(event[name]):
            return f"{name} is not an object id"
    return None
