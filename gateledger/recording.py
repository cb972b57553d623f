"""Store-level verbs: create or open a store, record a raw log, freeze an explicit plan,
anchor, timestamp, settings, the index and SQL.

Each function is what one `ledger` command does, minus the formatting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from gateledger.signers import KeyLike, signing_key
from ledger.anchor import make_anchor
from ledger.document import Document
from ledger.documents import Envelope, RunRecord
from ledger.errors import ConfigError, InputError, SigningKeyError
from ledger.index import query, reindex
from ledger.ingest import ingest as ingest_log
from ledger.jsonsafe import loads_strict
from ledger.keys import SigningKey
from ledger.manifest import check_freezable, validate_plan
from ledger.manifest import freeze as freeze_manifest
from ledger.packing import Packed, pack_decided
from ledger.plan_model import Manifest
from ledger.rawlog import MAX_LOG_BYTES
from ledger.store import Store, read_document, resolve_prefix
from ledger.timestamp import StampResult, check_url, configured_tsas, set_tsas, stamp

MAX_PLAN_BYTES = 64 << 20


B = TypeVar("B", bound=Document)


@dataclass(frozen=True)
class Signed(Generic[B]):
    """A manifest, decision or anchor just signed: its id, its body as a typed document
    (`Manifest`, `Decision`; an anchor's whole `Envelope`), the key that signed it, and
    what each timestamp authority answered (one `StampResult` per TSA asked)."""

    id: str
    body: B
    key: SigningKey
    timestamps: list[StampResult] = field(default_factory=list)


@dataclass(frozen=True)
class Recorded:
    """A run just recorded by `ingest`: the run record's id and body."""

    id: str
    body: RunRecord

    def to_dict(self) -> dict[str, Any]:
        """What `ledger ingest --json` prints: the id as `run`, then the record."""
        return {"run": self.id, **self.body.to_dict()}


@dataclass(frozen=True)
class Stamped:
    """What `timestamp` asked: the object (full id), its kind, each TSA's answer."""

    object: str
    kind: str
    timestamps: list[StampResult]

    @property
    def ok(self) -> bool:
        """Every TSA asked answered with a token."""
        return all(s.ok for s in self.timestamps)

    def to_dict(self) -> dict[str, Any]:
        return {"object": self.object, "timestamps": [s.to_dict() for s in self.timestamps]}


@dataclass(frozen=True)
class Settings:
    """The store's settings (`settings.json`, not evidence): its default TSAs."""

    tsa: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"tsa": list(self.tsa)}


@dataclass(frozen=True)
class QueryResult:
    """A read-only SQL query's answer: column names and rows (tuples in column order)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        """One dict per row (what `ledger sql --json` prints)."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def init(path: str | Path = ".ledger", *, host: str | None = None) -> Store:
    """Create a store at `path` (safe to run twice) that writes as `host` (default: the
    short hostname).

    Raises:
        StorageError: the path cannot be a store (a file is in the way, not writable).
    """
    return Store.init(path, host=host)


def open_store(path: str | Path = ".ledger", *, host: str | None = None) -> Store:
    """Open the store at `path`, writing as `host`.

    Raises:
        NoStore: no store there; UnsupportedStore: a store of another format version.
    """
    return Store.open(path, host=host)


def tsa_urls(
    store: Store, urls: tuple[str, ...] | list[str] | None = None, *, none: bool = False
) -> list[str]:
    """The timestamp authorities to ask: `urls`, else the store's settings; none with `none`.

    Raises:
        ConfigError: a malformed URL (checked before anything is signed).
    """
    if none:
        return []
    return [check_url(u) for u in (list(urls or ()) or configured_tsas(store))]


def witness(
    store: Store, object_id: str, urls: list[str], key: SigningKey | None = None
) -> list[StampResult]:
    """Timestamp a just-signed object with each of `urls`: what each TSA answered (a TSA
    that fails leaves the object as it is: it is signed and journaled already); `key` signs
    the journal heads."""
    return stamp(store, object_id, urls, key=key) if urls else []


def timestamp(
    store: Store,
    object_id: str,
    urls: tuple[str, ...] | list[str] = (),
    *,
    key: KeyLike = None,
) -> Stamped:
    """Ask TSAs for tokens over an existing object (id or 12+ hex prefix); `key` (default:
    the store's) signs the journal head.

    Raises:
        ConfigError: no TSA given or configured, a bad URL; InvalidId, UnknownObject: the
        id; WrongKind: not a manifest, decision or anchor; SigningKeyError: no key can be
        chosen.
    """
    chosen = tsa_urls(store, urls)
    if not chosen:
        raise ConfigError(
            "no timestamp authority: pass --tsa URL or set one with `ledger settings --tsa URL`"
        )
    object_id = store.resolve(object_id)
    results = witness(store, object_id, chosen, signing_key(key, store))
    # `stamp` refused anything but a manifest, decision or anchor: an envelope with a kind
    return Stamped(object_id, store.get_json(object_id)["kind"], results)


def settings(
    store: Store, *, tsa: tuple[str, ...] | list[str] = (), clear_tsa: bool = False
) -> Settings:
    """Set (`tsa`, or `clear_tsa`) and return the store's settings.

    Raises:
        ConfigError: both `tsa` and `clear_tsa`, or a malformed URL.
    """
    if tsa and clear_tsa:
        raise ConfigError("give --tsa URL or --clear-tsa, not both")
    if tsa or clear_tsa:
        set_tsas(store, [] if clear_tsa else tsa)
    return Settings(configured_tsas(store))


def read_plan(path: str | Path) -> dict[str, Any]:
    """A plan file as strict JSON (no NaN, no repeated keys, bounded size and depth).

    Raises:
        InputError: unreadable, malformed (JSONInputError), or not a JSON object.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read plan {path}: {exc.strerror or exc}") from None
    plan = loads_strict(data, f"plan {path}", max_bytes=MAX_PLAN_BYTES)
    if not isinstance(plan, dict):
        raise InputError(f"plan {path} must be a JSON object")
    return plan


def freeze_plan(
    store: Store,
    plan: dict[str, Any] | str | Path,
    *,
    key: KeyLike = None,
    amend: bool = False,
    tsa: list[str] | None = None,
    no_tsa: bool = False,
) -> Signed[Manifest]:
    """Sign an explicit plan (a dict, or a JSON file) as a manifest; amend the stage's
    manifest in force with `amend`.

    Raises:
        AlreadyFrozen: the stage has a manifest and `amend` is False.
        SigningKeyError: no key can be chosen; PlanError: a malformed plan (the key named).
    """
    if not isinstance(plan, dict):
        plan = read_plan(plan)
    validate_plan(store, plan)
    amends = check_freezable(store, plan, amend=amend)
    signer = signing_key(key, store)
    urls = tsa_urls(store, tsa, none=no_tsa)
    manifest_id = freeze_manifest(store, plan, signer, amends=amends)
    body = read_document(store, manifest_id, "manifest", Manifest)
    return Signed(manifest_id, body, signer, witness(store, manifest_id, urls, signer))


def condition_id(store: Store, manifest: str, text: str) -> str:
    """A condition of the manifest by id, 12+ hex prefix, or name."""
    conditions = read_document(store, manifest, "manifest", Manifest).conditions
    named = [cid for cid, info in conditions.items() if info.name == text]
    if len(named) == 1:
        return named[0]
    return resolve_prefix(
        text,
        lambda p: sorted(c for c in conditions if c.startswith(p)),
        f"condition of manifest {manifest[:12]}",
    )


def ingest(
    store: Store,
    log: str | Path,
    *,
    fmt: str | None = None,
    manifest: str | None = None,
    condition: str | None = None,
    seed: int | None = None,
    host: str | None = None,
    stage: str | None = None,
    gpus: int | None = None,
    key: KeyLike = None,
) -> Recorded:
    """Record a raw log file as a run (of `manifest`'s cell condition/seed/host, or as
    unplanned compute without one), signed with `key` (default: the store's signing key).
    A run of a manifest takes its log format, stage and GPUs from the manifest; `fmt`,
    `stage` and `gpus` may only repeat them.

    Raises:
        InputError: an unreadable log file; LogRefused: a log that is not one or does not
        match its cell; UndeclaredRun: a cell the manifest does not declare;
        AlreadyRecorded: the run has a record; ConfigError: a flag that contradicts the
        plan; SigningKeyError: no key can be chosen.
    """
    try:
        with open(log, "rb") as fh:
            raw = fh.read(MAX_LOG_BYTES + 1)  # a longer log is refused; never read it whole
    except OSError as exc:
        raise InputError(f"cannot read log {log}: {exc.strerror or exc}") from None
    if manifest:
        manifest = store.resolve(manifest, "manifest")
        if condition:
            condition = condition_id(store, manifest, condition)
    record_id = ingest_log(
        store,
        raw,
        fmt=fmt,
        manifest=manifest,
        condition=condition,
        seed=seed,
        host=host,
        stage=stage,
        gpus=gpus,
        key=_recorder(key, store, planned=manifest is not None),
    )
    return Recorded(record_id, read_document(store, record_id, "run", RunRecord))


def _recorder(key: KeyLike, store: Store, *, planned: bool) -> SigningKey | None:
    """The key that signs a run record: required for a run of a manifest; unplanned compute
    is signed when a key can be chosen, and recorded unsigned (the audit notes it) when none
    exists on this machine."""
    try:
        return signing_key(key, store)
    except SigningKeyError:
        if planned or key is not None:
            raise
        return None


def anchor(
    store: Store, *, key: KeyLike = None, tsa: list[str] | None = None, no_tsa: bool = False
) -> Signed[Envelope]:
    """Sign every journal's head (publish the result); `Signed.body` is the envelope.

    Raises:
        SigningKeyError: no key can be chosen; NothingToDo: every journal is empty.
    """
    signer = signing_key(key, store)
    urls = tsa_urls(store, tsa, none=no_tsa)
    anchor_id, envelope = make_anchor(store, signer)
    return Signed(
        anchor_id,
        Envelope.model_validate(envelope),
        signer,
        witness(store, anchor_id, urls, signer),
    )


def rebuild_index(store: Store) -> Path:
    """Rebuild index.duckdb from objects and journals alone; its path."""
    return reindex(store)


def pack(store: Store, *, parts: Sequence[str] | None = None, progress: bool = False) -> Packed:
    """Move the run records and logs of every decided stage that lie loose in `parts`
    (default: this host's) into one pack per stage and part (`ledger.packing`), with a
    progress bar on a terminal when asked. Safe to run again: what is packed stays.

    Raises:
        ConfigError: a part the store does not have.
    """
    hosts = list(parts) if parts else [store.host]
    missing = [h for h in hosts if h not in store.parts()]
    if missing:
        raise ConfigError(
            f"no host part {missing[0]!r} in {store.parts_dir} "
            f"(parts: {', '.join(store.parts()) or 'none'})"
        )
    return pack_decided(store, hosts, progress=progress)


def sql(store: Store, statement: str) -> QueryResult:
    """A read-only SQL query on the index (built first if stale).

    Raises:
        QueryError: a statement that is not one read-only query, or that fails.
    """
    columns, rows = query(store, statement)
    return QueryResult(columns, rows)
