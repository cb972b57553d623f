"""The content-addressed object store: `parts/<host>/objects/ab/<sha256>`, and packs.

Why parts: each host only ever creates files under its own part, so hosts merge their
stores (DVC push/pull, git branches) by union without ever editing the same file. Reads
look in every part; the same id is the same bytes wherever it lies.

Why packs: a decided stage's run records and logs move into `parts/<host>/packs/` files
(`ledger.pack`, written by `ledger.packing`), read sequentially instead of one small file
each. A store holding packs is version 2 of the format (`PACKED_FORMAT`), so a program
that reads only loose files refuses it instead of missing objects; this one reads both.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ledger.canonical import canonical_bytes, check_object_id, is_object_id, sha256_hex
from ledger.document import D, parse
from ledger.documents import Envelope, JournalEvent, Revocation, StoreMarker
from ledger.errors import (
    AmbiguousId,
    IntegrityError,
    InvalidId,
    LedgerError,
    NoStore,
    SigningKeyError,
    StorageError,
    UnknownObject,
    UnsupportedStore,
    WrongKind,
)
from ledger.fsutil import TMP_PREFIX, atomic_write, ensure_dir
from ledger.journal import Journal, parse_event
from ledger.jsonsafe import JSONInputError, loads_strict
from ledger.keys import Keyring, SigningKey
from ledger.pack import PACKS_DIR, ObjectCopy, PackIndex, read_index
from ledger.signing import sign_object, unsigned_object

STORE_FORMAT = {"format": "gateledger-store", "version": 1}  # what `init` writes
PACKED_FORMAT = {"format": "gateledger-store", "version": 2}  # a store that may hold packs
MAX_MARKER_BYTES = 4096  # store.json is ~50 bytes
_HOST_BAD = re.compile(r"[^A-Za-z0-9._-]")


def sanitize_host(name: str) -> str:
    """Host names become folder names: keep [A-Za-z0-9._-], replace the rest by '-'."""
    clean = _HOST_BAD.sub("-", name.strip()).strip(".") or "host"
    return clean[:64]


def default_host() -> str:
    """LEDGER_HOST, else the short hostname, sanitized for use as a folder name."""
    env = os.environ.get("LEDGER_HOST")
    return sanitize_host(env if env else socket.gethostname().split(".")[0])


class Store:
    """A ledger store rooted at `root`, writing objects and journal events as `host`."""

    def __init__(self, root: Path | str, host: str | None = None) -> None:
        self.root = Path(root)
        self.host = sanitize_host(host) if host else default_host()
        self._keyring: Keyring | None = None
        self._revocations: dict[str, _Revocations] = {}  # journal path -> what was read
        self._packs: dict[str, _Packs] = {}  # host -> its packs' indexes, as last listed
        # `stages.lookup`'s journal reads: event kinds -> (the journal files' size, mtime and
        # inode when read, the (host, event) pairs found); any append, cut or replacement
        # of a journal changes the signature and the events are read again
        self.journal_events: dict[
            frozenset[str], tuple[tuple[Any, ...], list[tuple[str, JournalEvent]]]
        ] = {}

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r}, host={self.host!r})"

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def init(cls, root: Path | str, host: str | None = None) -> Store:
        """Create (or keep) a store: store.json, keys/, parts/, anchors/. Idempotent."""
        root = Path(root)
        marker = root / "store.json"
        if marker.exists():
            return cls.open(root, host)
        if root.exists() and not root.is_dir():
            raise StorageError(f"cannot create store at {root}: not a folder")
        for sub in ("keys", "parts", "anchors"):
            ensure_dir(root / sub)
        atomic_write(marker, canonical_bytes(STORE_FORMAT))
        return cls(root, host)

    @classmethod
    def open(cls, root: Path | str, host: str | None = None) -> Store:
        """Open an existing store (LedgerError if there is none at `root`)."""
        root = Path(root)
        marker = root / "store.json"
        try:
            data = marker.read_bytes()
        except FileNotFoundError:
            raise NoStore(f"no ledger store at {root} (run `ledger init`)") from None
        except OSError as exc:
            raise StorageError(f"cannot read {marker}: {exc.strerror or exc}") from None
        try:
            meta = StoreMarker.model_validate(
                loads_strict(data, str(marker), max_bytes=MAX_MARKER_BYTES)
            )
        except JSONInputError as exc:
            raise NoStore(str(exc)) from None
        except ValidationError:
            raise NoStore(f"{marker} does not describe a gateledger store") from None
        if meta.format != STORE_FORMAT["format"]:
            raise NoStore(f"{marker} does not describe a gateledger store")
        if meta.version not in (STORE_FORMAT["version"], PACKED_FORMAT["version"]):
            raise UnsupportedStore(  # (a marker of another store may have none)
                f"{marker}: unsupported store version {meta.version!r} (this gateledger "
                f"reads versions 1 and 2: upgrade it to read a newer store)"
            )
        return cls(root, host)

    def version(self) -> int | None:
        """The format version store.json gives (None when it cannot be read)."""
        try:
            meta = StoreMarker.model_validate_json((self.root / "store.json").read_bytes())
        except (OSError, ValueError):
            return None
        return meta.version if isinstance(meta.version, int) else None

    def allow_packs(self) -> None:
        """Mark the store as version 2 before a first pack is written into it (atomic), so
        that no version-1 store ever holds packs an older program would not read."""
        if self.version() != PACKED_FORMAT["version"]:
            atomic_write(self.root / "store.json", canonical_bytes(PACKED_FORMAT))

    # -- layout ----------------------------------------------------------------------------

    @property
    def parts_dir(self) -> Path:
        return self.root / "parts"

    def parts(self) -> list[str]:
        """Hosts that have a part here (sorted). A part that is a symbolic link is not one:
        a bundle, `ledger export` and DVC do not carry what a link points to, so the store
        does not read it either (`linked_parts`; verify reports each)."""
        try:
            return sorted(
                e.name
                for e in os.scandir(self.parts_dir)
                if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
            )
        except FileNotFoundError:
            return []

    def linked_parts(self) -> list[str]:
        """Host parts, `objects/` folders and object fans that are symbolic links (never
        read), as paths under `parts/`."""
        out = []
        try:
            entries = sorted(os.scandir(self.parts_dir), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                out.append(entry.name)
                continue
            if not entry.is_dir():
                continue
            packs = Path(entry.path) / PACKS_DIR
            if packs.is_symlink():
                out.append(f"{entry.name}/{PACKS_DIR}")
            else:
                out += [f"{entry.name}/{PACKS_DIR}/{n}" for n in _linked_files(packs)]
            objects = Path(entry.path) / "objects"
            if objects.is_symlink():
                out.append(f"{entry.name}/objects")
                continue
            try:
                fans = sorted(os.scandir(objects), key=lambda e: e.name)
            except OSError:
                continue
            out += [f"{entry.name}/objects/{f.name}" for f in fans if f.is_symlink()]
        return out

    def _object_path(self, host: str, oid: str) -> Path:
        return self.parts_dir / host / "objects" / oid[:2] / oid

    def path_of(self, oid: str) -> Path | None:
        """The file object `oid` lies in, its own or the pack that holds it (own part
        first), or None."""
        copy = self.copy_of(oid)
        return copy.path if copy is not None else None

    def copy_of(self, oid: str) -> ObjectCopy | None:
        """Where object `oid` is read from: in each part (own first) its loose file, else
        a pack holding it; None when no part has it."""
        check_object_id(oid)
        hosts = self.parts()
        order = ([self.host] if self.host in hosts else []) + [h for h in hosts if h != self.host]
        for host in order:
            path = self._object_path(host, oid)
            if path.is_file() and self._readable(path):
                return ObjectCopy(oid, path)
            found = self._packed(host).get(oid)
            if found is not None:
                return found
        for host in order:  # a pack may have landed within the folder's mtime tick
            found = self._packed(host, relist=True).get(oid)
            if found is not None:
                return found
        return None

    def _readable(self, path: Path) -> bool:
        """Not under a linked part, `objects/` folder or fan (see `parts`)."""
        fan, objects, part = path.parent, path.parent.parent, path.parent.parent.parent
        return not (fan.is_symlink() or objects.is_symlink() or part.is_symlink())

    def exists(self, oid: str) -> bool:
        return is_object_id(oid) and self.path_of(oid) is not None

    def resolve(self, text: str, what: str = "object") -> str:
        """The full id of the one object whose id starts with `text` (12+ hex characters, as
        every command prints ids), or `text` itself when it is a full id.

        Raises LedgerError naming the prefix when it is too short, matches nothing, or
        matches several objects.
        """
        return resolve_prefix(text, self.ids_with_prefix, what)

    def ids_with_prefix(self, prefix: str) -> list[str]:
        """Sorted ids of the objects (in any part) whose id starts with `prefix`."""
        found: set[str] = set()
        for host in self.parts():
            found.update(o for o in self._packed(host) if o.startswith(prefix))
            fan = self.parts_dir / host / "objects" / prefix[:2]
            try:
                found.update(
                    e.name
                    for e in os.scandir(fan)
                    if e.name.startswith(prefix) and not e.name.startswith(TMP_PREFIX)
                )
            except FileNotFoundError:
                continue
        return sorted(found)

    # -- objects ---------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        """Store `data` immutably (read-only file, atomic write); return its id."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise LedgerError(f"objects are bytes, not {type(data).__name__}")
        data = bytes(data)
        oid = sha256_hex(data)
        if self.path_of(oid) is not None:
            return oid
        target = self._object_path(self.host, oid)
        atomic_write(target, data, mode=0o444)
        return oid

    def put_json(self, obj: dict[str, Any]) -> str:
        """Store the canonical bytes of a JSON object; return its id."""
        if not isinstance(obj, dict):
            raise LedgerError(f"JSON objects must be dicts, not {type(obj).__name__}")
        return self.put_bytes(canonical_bytes(obj))

    def get_bytes(self, oid: str) -> bytes:
        """The bytes of `oid`, re-hashed (IntegrityError if they no longer match)."""
        copy = self.copy_of(oid)
        if copy is None:
            raise UnknownObject(f"unknown object ID {oid}")
        try:
            data = copy.read()
        except OSError as exc:
            raise StorageError(f"cannot read object {oid}: {exc.strerror or exc}") from None
        if sha256_hex(data) != oid:
            where = f" (in pack {copy.path.name})" if copy.packed else ""
            raise IntegrityError(
                f"object {oid} is corrupted: its bytes no longer hash to its id{where}"
            )
        return data

    def get_json(self, oid: str) -> dict[str, Any]:
        """The parsed JSON object `oid` (IntegrityError if it is not a JSON object)."""
        data = self.get_bytes(oid)
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise IntegrityError(f"object {oid} is not a JSON object") from None
        if not isinstance(obj, dict):
            raise IntegrityError(f"object {oid} is not a JSON object")
        return obj

    def iter_objects(self) -> Iterator[tuple[str, Path]]:
        """Every (id, file) in every part, sorted by id then part: loose files, and the
        pack of each object a pack's index lists (`copies` says where in it)."""
        for copy in self.copies():
            yield copy.oid, copy.path

    def copies(self) -> list[ObjectCopy]:
        """Every copy of every object in every part, sorted by id then part, loose first."""
        found = [(oid, host, 0, ObjectCopy(oid, path)) for oid, host, path in self._loose()]
        for host in self.parts():
            found += [(c.oid, host, 1, c) for c in self._packed(host).values()]
        found.sort(key=lambda f: f[:3])
        return [copy for *_key, copy in found]

    def loose_objects(self) -> Iterator[tuple[str, Path]]:
        """Every (file name, path) in every part's objects/ fans, sorted by name then part;
        temp files skipped (a name that is not an id is for `verify` to report)."""
        for oid, _host, path in self._loose():
            yield oid, path

    def locations(self) -> dict[str, ObjectCopy]:
        """id -> the copy `copy_of` reads, for every object, from one listing of the store."""
        hosts = self.parts()
        order = ([self.host] if self.host in hosts else []) + [h for h in hosts if h != self.host]
        out: dict[str, ObjectCopy] = {}
        for host in order:
            for oid, path in self._loose_in(host):
                out.setdefault(oid, ObjectCopy(oid, path))
            for oid, copy in self._packed(host).items():
                out.setdefault(oid, copy)
        return out

    def _loose(self) -> list[tuple[str, str, Path]]:
        found = [(oid, host, path) for host in self.parts() for oid, path in self._loose_in(host)]
        found.sort()
        return found

    def _loose_in(self, host: str) -> list[tuple[str, Path]]:
        """(file name, path) of the files in `host`'s object fans (linked ones skipped)."""
        base = self.parts_dir / host / "objects"
        if base.is_symlink():
            return []
        try:
            fans = sorted(
                (e for e in os.scandir(base) if e.is_dir(follow_symlinks=False)),
                key=lambda e: e.name,
            )
        except FileNotFoundError:
            return []
        return [
            (entry.name, Path(entry.path))
            for fan in fans
            for entry in os.scandir(fan.path)
            if not entry.name.startswith(TMP_PREFIX)
        ]

    # -- packs -----------------------------------------------------------------------------

    def packs_dir(self, host: str) -> Path:
        return self.parts_dir / host / PACKS_DIR

    def pack_files(self) -> list[tuple[str, Path]]:
        """(host, file) of every regular file in every part's packs/ folder, sorted; temp
        files, links and a linked folder are skipped (`linked_parts` names them)."""
        return [(host, path) for host in self.parts() for path in self._pack_files(host)]

    def _pack_files(self, host: str) -> list[Path]:
        folder = self.packs_dir(host)
        if folder.is_symlink():
            return []
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return []
        return sorted(
            Path(e.path)
            for e in entries
            if e.is_file(follow_symlinks=False) and not e.name.startswith(TMP_PREFIX)
        )

    def pack_indexes(self, host: str) -> list[PackIndex]:
        """The indexes of `host`'s packs, as listed now (an unreadable pack is left out)."""
        self._packed(host)
        return list(self._packs[host].indexes.values())

    def _packed(self, host: str, relist: bool = False) -> dict[str, ObjectCopy]:
        """id -> packed copy in `host`'s packs, from the indexes read when the folder last
        changed (a pack added, removed or renamed changes its mtime: one stat a lookup) or
        when `relist`. Packs are never rewritten in place, so an index once read stays
        right; a pack altered since is caught by the re-hash of what is read from it."""
        cached = self._packs.get(host)
        try:
            st = os.stat(self.packs_dir(host))
            stamp: tuple[int, ...] = (st.st_mtime_ns, st.st_ino, st.st_size)
        except OSError:
            stamp = ()
        if cached is not None and cached.stamp == stamp and not relist:
            return cached.copies
        names = tuple(p.name for p in self._pack_files(host))
        old = cached.indexes if cached is not None else {}
        if cached is not None and names == cached.names:  # the same packs: nothing to re-read
            self._packs[host] = _Packs(stamp, names, old, cached.copies)
            return cached.copies  # (an ingest asks this of every new object it stores)
        indexes: dict[str, PackIndex] = {}
        for name in names:
            if name in old:
                indexes[name] = old[name]
                continue
            try:
                indexes[name] = read_index(self.packs_dir(host) / name)
            except LedgerError:
                continue
        copies: dict[str, ObjectCopy] = {}
        for index in indexes.values():
            for entry in index.entries:
                copies.setdefault(entry.oid, entry)
        self._packs[host] = _Packs(stamp, names, indexes, copies)
        return copies

    def leftovers(self) -> list[Path]:
        """Temp files left by interrupted writes: harmless, reported, never read."""
        out = []
        for host in self.parts():
            part = self.parts_dir / host
            out += [p for p in part.rglob(f"{TMP_PREFIX}*") if p.is_file()]
        for sub in ("keys", "anchors"):
            out += [p for p in (self.root / sub).glob(f"{TMP_PREFIX}*") if p.is_file()]
        return sorted(out)

    # -- journals, keys, signed objects ----------------------------------------------------

    def journal(self, host: str | None = None) -> Journal:
        """This host's journal (or `host`'s)."""
        name = sanitize_host(host) if host else self.host
        return Journal(self.parts_dir / name / "journal.jsonl", name)

    def journals(self) -> list[Journal]:
        """Every host's journal that exists, sorted by host."""
        return [
            Journal(self.parts_dir / h / "journal.jsonl", h)
            for h in self.parts()
            if (self.parts_dir / h / "journal.jsonl").is_file()
        ]

    def keyring(self) -> Keyring:
        if self._keyring is None:
            self._keyring = Keyring(self.root / "keys")
        return self._keyring

    def revoked(self, key_id: str) -> str | None:
        """When `key_id` was revoked (its revocation's `revoked_at`), or None.

        Read from the journals' `key_revoked` events; a revocation object that does not
        parse is ignored here and reported by `verify`. Every signed write asks, so each
        journal is read once per Store and then only from where the last call stopped
        (journals are append-only; a journal that shrank or was replaced is read again).
        """
        for journal in self.journals():
            for oid in self._revocation_ids(journal):
                try:
                    revocation = read_document(self, oid, "revocation", Revocation)
                except LedgerError:
                    continue
                if revocation.key_id == key_id:
                    return revocation.revoked_at
        return None

    def _revocation_ids(self, journal: Journal) -> list[str]:
        """Object ids of `journal`'s `key_revoked` events, in order."""
        key = str(journal.path)
        try:
            with open(journal.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                seen = self._revocations.get(key)
                if seen is None or seen.inode != (st.st_dev, st.st_ino) or st.st_size < seen.end:
                    seen = _Revocations((st.st_dev, st.st_ino))
                fh.seek(seen.end)
                data = fh.read()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(f"cannot read {journal.path}: {exc.strerror or exc}") from None
        cut = data.rfind(b"\n") + 1  # a torn last line is not acknowledged: read it later
        for line in data[:cut].split(b"\n"):
            if b"key_revoked" not in line:  # every event names its kind: skip the rest unparsed
                continue
            event = parse_event(line)
            if event is None:
                try:
                    json.loads(line)
                except (ValueError, RecursionError):
                    raise IntegrityError(
                        f"journal {journal.path}: a line is not valid JSON"
                    ) from None
                continue  # no event of the ledger's shape (`verify` names it)
            if event.kind == "key_revoked" and event.object is not None:
                seen.ids.append(event.object)
        seen.end += cut
        self._revocations[key] = seen
        return seen.ids

    def put_signed(self, kind: str, body: dict[str, Any], key: SigningKey) -> str:
        """Sign and store; the signer's public key joins the keyring so verify can check it.

        Refused with a key that was revoked (a revocation itself may be signed by the key
        it revokes, so that a leaked key can retire itself)."""
        if kind != "revocation":
            when = self.revoked(key.key_id)
            if when is not None:
                raise SigningKeyError(
                    f"key {key.name} ({key.key_id}) was revoked at {when}: sign "
                    f"with another key (`ledger keygen`)"
                )
        obj = sign_object(kind, body, key)
        data = canonical_bytes(obj)
        if not self.keyring().has(key.key_id):
            self.keyring().add(key.public_record())
        return self.put_bytes(data)

    def put_unsigned(self, kind: str, body: dict[str, Any]) -> str:
        return self.put_json(unsigned_object(kind, body))


MIN_PREFIX = 12
_HEX = re.compile(r"[0-9a-f]+")


def resolve_prefix(
    text: str,
    candidates: Callable[[str], list[str]],
    what: str = "object",
    length: int = 64,
    missing: type[LedgerError] = UnknownObject,
) -> str:
    """The one full id starting with `text` among `candidates(prefix)` (LedgerError otherwise).

    `text` is a full id (`length` hex) or a prefix of at least MIN_PREFIX hex characters;
    upper case is accepted. Used for objects, key ids and condition ids alike; `missing` is
    the error when nothing matches (UnknownObject; UnknownKey for key ids).
    """
    value = str(text).strip().lower()
    if not _HEX.fullmatch(value) or len(value) > length:
        raise InvalidId(
            f"{what} id {text!r} is not an object id ({length} hex characters, "
            f"or the first {MIN_PREFIX}+ of them as printed)"
        )
    if len(value) < MIN_PREFIX:
        raise InvalidId(
            f"{what} id {text!r} is too short: give at least {MIN_PREFIX} hex characters"
        )
    matches = candidates(value)
    if len(value) == length and value in matches:
        return value
    if not matches:
        raise missing(f"no {what} with id {value}{'' if len(value) == length else '...'}")
    if len(matches) > 1:
        raise AmbiguousId(
            f"{what} id prefix {value} is ambiguous: "
            f"{', '.join(m[:16] for m in matches[:5])}...: give more characters"
        )
    return matches[0]


def read_document(store: Store, oid: str, kind: str, model: type[D]) -> D:
    """Object `oid`'s body as its document `model` (WrongKind when it is another kind;
    IntegrityError naming every key of a body that does not fit)."""
    return parse(model, load_object(store, oid, kind), f"{kind} {oid}", IntegrityError)


def read_envelope(store: Store, oid: str) -> Envelope:
    """Object `oid` as an envelope: its kind, body and signature (WrongKind when it is JSON
    of another shape)."""
    obj = store.get_json(check_object_id(oid))
    try:
        return Envelope.model_validate(obj)
    except ValidationError:
        raise WrongKind(f"object {oid} is no envelope of a kind and a body") from None


def load_object(store: Store, oid: str, kind: str) -> dict[str, Any]:
    """Object `oid`'s body as stored, checking that it is a `kind` (WrongKind naming what
    it is otherwise: another kind, or no envelope at all)."""
    envelope = read_envelope(store, oid)
    if envelope.kind != kind:
        raise WrongKind(f"object {oid} is a {envelope.kind!r}, not a {kind}")
    return envelope.body


__all__ = [
    "MIN_PREFIX",
    "PACKED_FORMAT",
    "STORE_FORMAT",
    "Store",
    "default_host",
    "load_object",
    "read_document",
    "read_envelope",
    "resolve_prefix",
    "sanitize_host",
    "IntegrityError",
]


@dataclass
class _Revocations:
    """How far one journal has been read for revocations, and the ones found."""

    inode: tuple[int, int]
    end: int = 0
    ids: list[str] = field(default_factory=list)


@dataclass
class _Packs:
    """One part's packs as last listed: the folder's stat, the packs' names, their indexes
    by name (an unreadable one left out), id -> first copy."""

    stamp: tuple[int, ...]
    names: tuple[str, ...]
    indexes: dict[str, PackIndex]
    copies: dict[str, ObjectCopy]


def _linked_files(folder: Path) -> list[str]:
    """Names of the symbolic links in `folder` (none when it cannot be listed), sorted."""
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_symlink())
    except OSError:
        return []
