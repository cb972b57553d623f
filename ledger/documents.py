"""The small documents a store holds: envelopes, key records, revocations, journal events
and heads, anchors, timestamp tokens, run records.

Each is a `Document` (ledger/document.py): parsed once where its bytes are read, then read
by attribute. The plan a manifest signs and the decision a gate signs are bigger and have
modules of their own (`ledger/plan_model.py`, `ledger/decision_model.py`); the raw log's
records are in `ledger/log_records.py`.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import ConfigDict

from ledger.document import Document
from ledger.run_key import RunKey

B = TypeVar("B")

Status = Literal["ok", "diverged", "crashed", "timeout"]
Number = int | float


class Signature(Document):
    """An Ed25519 signature over the canonical bytes of `{"kind", "body"}`."""

    alg: str
    key_id: str
    sig: str


class Stored(Document, Generic[B]):
    """A stored JSON object: its kind, its body, and (for signed kinds) its signature.

    `Stored[RunRecord]` is a run's envelope with its body typed (`ledger.scan` validates
    each stored object into its kind's); the signature is checked over the stored bytes,
    never over a model."""

    kind: str
    body: B
    signature: Signature | None = None


class Envelope(Stored[dict[str, Any]]):
    """An envelope whose body stays a plain JSON object (a kind without a model, or one
    read before its kind is known)."""


class StoreMarker(Document):
    """`store.json`: the format a folder holds and its version (a marker of another store,
    or of a later version, may say more: its other keys are kept, never refused here)."""

    model_config = ConfigDict(extra="allow")

    format: str
    version: Any = None


class PublicKeyRecord(Document):
    """A public key of the store's keyring (`keys/<key_id>.json`), self-signed."""

    alg: str
    created_at: str
    key_id: str
    name: str
    public: str
    self_sig: str


class Revocation(Document):
    """The body of a `revocation`: which key, why, when, and who signed it."""

    key_id: str
    reason: str
    revoked_at: str
    revoker: str


class JournalEvent(Document):
    """One journal line: `{seq, prev, kind, object, run, manifest, at}` chained by `prev`."""

    seq: int
    prev: str
    kind: str
    object: str | None
    run: str | None
    manifest: str | None
    at: str


class JournalHead(Document):
    """The last acknowledged event of a host's journal (`journal.head`, and in anchors)."""

    host: str
    seq: int
    hash: str


class RecordedHead(JournalHead):
    """`journal.head` as a writer stores it: the head, signed when the writer held the
    store's key (the signature covers `{host, seq, hash}`: `ledger.journal.head_payload`)."""

    signature: Signature | None = None


class Anchor(Document):
    """The body of an `anchor`: every journal's head when it was signed, and when."""

    heads: list[JournalHead]
    at: str


class TimestampToken(Document):
    """The body of a `timestamp`: an RFC 3161 token (base64 DER) over another object's id,
    with copies of its time and serial and which TSA answered."""

    object: str
    object_kind: str
    tsa: str
    hash: str
    response: str
    gen_time: str
    serial: str
    received_at: str


class RunMetrics(Document):
    """What the raw log says the run measured (None where it does not say)."""

    val_bpb: Number | None = None
    training_seconds: Number | None = None
    total_seconds: Number | None = None
    num_steps: Number | None = None
    total_tokens: Number | None = None
    num_params: Number | None = None
    peak_mem_mb: Number | None = None
    tokens_per_s: Number | None = None
    mfu: Number | None = None


class RunRecord(Document):
    """The body of a `run`: which declared run (manifest, condition, seed, host), its raw log
    and stderr by id, the status and metrics ingest read from the log, GPUs and times.

    Unplanned compute has no manifest (and may have no condition, seed or host)."""

    manifest: str | None
    stage: str | None
    condition: str | None
    seed: int | None
    host: str | None
    run: str | None
    raw_log: str
    format: str
    runner: str | None
    status: Status
    metrics: RunMetrics
    gpus: int
    recorded_at: str
    deadline_s: Number | None = None
    exit_code: int | None = None
    stderr: str | None = None
    recorder: str | None = None  # the key that signed it (records of signing manifests)

    def value(self, metric: str) -> Number | None:
        """The recorded value of `metric` (None when the log gave none)."""
        found = getattr(self.metrics, metric, None) if metric in RunMetrics.model_fields else None
        return found

    @property
    def key(self) -> RunKey | None:
        """The declared run this records (None for unplanned compute without a cell)."""
        if self.condition is None or self.seed is None or self.host is None:
            return None
        return RunKey(self.condition, self.seed, self.host)


class Interruption(Document):
    """The body of an `interruption`: an attempt of a declared run (manifest and its
    `condition/seed/host` key) that ended without a run record, why and when, with its
    partial log and stderr by id where they were kept (`ledger.attempts`)."""

    manifest: str
    stage: str | None
    run: str
    condition: str
    seed: int | str  # the key's seed as written (text when it is not a number)
    host: str
    reason: str
    raw_log: str | None
    interrupted_at: str
    stderr: str | None = None
    recorder: str | None = None  # the key that signed it (signed interruptions)


__all__ = [
    "Anchor",
    "Envelope",
    "Interruption",
    "JournalEvent",
    "JournalHead",
    "PublicKeyRecord",
    "RecordedHead",
    "Revocation",
    "RunMetrics",
    "RunRecord",
    "Signature",
    "Status",
    "StoreMarker",
    "Stored",
    "TimestampToken",
]
