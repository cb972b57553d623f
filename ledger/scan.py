"""One pass over every stored object: re-hash, classify, parse JSON once.

Why shared: `verify`, `reindex` and the index check all need the same parsed objects, and
at 100k runs reading every file twice would double the cost of an audit.

Every object that parses as a JSON envelope (`{"kind", "body", ...}`) must be stored as its
RFC 8785 bytes: one that is not (extra spaces, another key order) is a problem, and is never
used as evidence, so a hand-written decision cannot slip past the signature checks by
looking like a raw log.

Each envelope is then validated once into its kind's model (`Stored[RunRecord]`, ...:
`stored`), so every later check reads attributes; one whose envelope or body does not fit
is named in `unfit` (one line, every bad key), which `verify` reports and never uses.

Packs (`ledger.pack`) are read whole, one open and one sequential read each, and every
object their index lists is classified from its bytes exactly as a loose file is; each
finding about a packed copy names its pack.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from ledger.canonical import is_canonical, is_object_id
from ledger.decision_model import Decision
from ledger.document import Document, one_line
from ledger.documents import (
    Anchor,
    Envelope,
    Interruption,
    Revocation,
    RunRecord,
    Stored,
    TimestampToken,
)
from ledger.jsonsafe import MAX_DEPTH, depth_of
from ledger.pack import pack_problems, parse_index
from ledger.parallel import fork_map, shared
from ledger.plan_model import Manifest
from ledger.problems import Problem
from ledger.store import Store

D = TypeVar("D", bound=Document)

KNOWN_KINDS = {
    "manifest",
    "run",
    "interruption",
    "decision",
    "anchor",
    "campaign",
    "revocation",
    "timestamp",
}
ENVELOPE_FIELDS = {"kind", "body", "signature"}
# Each kind's envelope with its body typed; a kind not named here (`campaign`: the copies
# old stores kept of a campaign file; an unknown kind, which verify names) keeps its body
# as plain JSON (`Envelope`).
STORED: dict[str, type[Stored[Any]]] = {
    "manifest": Stored[Manifest],
    "run": Stored[RunRecord],
    "interruption": Stored[Interruption],
    "decision": Stored[Decision],
    "anchor": Stored[Anchor],
    "revocation": Stored[Revocation],
    "timestamp": Stored[TimestampToken],
}


@dataclass(frozen=True)
class Unfit:
    """A parsed envelope that does not fit its kind's model: why (one line, every bad key),
    and the envelope itself when only the body is at fault (its signature still checked)."""

    why: str
    envelope: Envelope | None


@dataclass
class Scan:
    """Hash-checked objects: parsed JSON envelopes, raw ids, and what was wrong."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # as stored (bytes' JSON)
    stored: dict[str, Stored[Any]] = field(default_factory=dict)  # the same, each as its model
    unfit: dict[str, Unfit] = field(default_factory=dict)  # the ones that fit no model: why
    raw: set[str] = field(default_factory=set)
    bad: set[str] = field(default_factory=set)
    signed_bytes: dict[str, bytes] = field(default_factory=dict)
    noncanonical: set[str] = field(default_factory=set)  # envelopes not in RFC 8785 form
    problems: list[Problem] = field(default_factory=list)
    count: int = 0
    # signed envelopes whose signature a worker checked: id -> why it failed (None: good)
    signatures: dict[str, str | None] = field(default_factory=dict)

    @property
    def ids(self) -> set[str]:
        """Every id that is present with intact bytes."""
        return set(self.objects) | self.raw

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        """The objects of `kind` as stored (the JSON a signature is checked over)."""
        return {oid: self.objects[oid] for oid, o in self.stored.items() if o.kind == kind}

    def body(self, oid: str, model: type[D]) -> D | None:
        """Object `oid`'s body when it is a `model` (None: absent, unfit, another kind)."""
        found = self.stored.get(oid)  # an id cited by another object may be anything
        return found.body if found is not None and isinstance(found.body, model) else None

    def take(self, oid: str, obj: dict[str, Any]) -> None:
        """Keep a parsed envelope, as stored and as its kind's model (or why it fits none)."""
        self.objects[oid] = obj
        kind = obj["kind"]
        model = STORED.get(kind, Envelope) if isinstance(kind, str) else Envelope
        try:
            self.stored[oid] = model.model_validate(obj)
        except ValidationError as exc:
            why = one_line(f"{kind!s:.20} object does not fit its schema", exc)
            try:  # the envelope alone, when only its body does not fit
                self.unfit[oid] = Unfit(why, Envelope.model_validate(obj))
            except ValidationError:
                self.unfit[oid] = Unfit(why, None)


def looks_like_envelope(data: bytes) -> bool:
    """Canonical envelopes are one line starting with `{"body":`; raw logs end in newlines."""
    return data.startswith(b'{"body":') and data.endswith(b"}") and b"\n" not in data


class _TooDeep(Exception):
    """Bytes shaped like an envelope that nest past what Python's parser takes."""


def _envelope(data: bytes) -> dict[str, Any] | None:
    """The parsed envelope if `data` is one JSON object with `kind` and `body`, else None.

    A raw log is several lines, so it fails to parse as one document after its first line:
    cheap. Anything else that starts like an object is parsed and looked at.
    """
    if data[:256].lstrip()[:1] != b"{" or _first_line_then_more(data):
        return None
    try:  # orjson first (several times faster); what it refuses, `json` decides
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        obj = _json_envelope(data)
    if not isinstance(obj, dict) or "kind" not in obj or "body" not in obj:
        return None
    return obj


def _json_envelope(data: bytes) -> Any:
    """`data` parsed by `json` (which reads NaN, deep nesting and huge integers, as stored
    objects were always read), or None when it is no JSON at all.

    Why orjson's parse may stand in for it: both keep the last of two equal keys, and the
    two agree on every value of canonical JSON (RFC 8785 writes no integer past 2^53 and no
    NaN), the only form in which an envelope is used; one that is not canonical under one
    parse is not canonical under the other either, and is named as such, never used."""
    try:
        return json.loads(data)
    except RecursionError:
        if looks_like_envelope(data):
            raise _TooDeep from None
        return None
    except (ValueError, UnicodeDecodeError):
        return None


def _first_line_then_more(data: bytes) -> bool:
    """Whether `data` is a complete JSON value on its first line followed by more text on
    the next: then it is not one JSON document (as `json.loads` would find after parsing
    the whole first line in Python). What a raw log looks like; checked with orjson, whose
    grammar is no wider than `json`'s, so a value it reads there `json` reads the same."""
    cut = data.find(b"\n")
    if cut < 0 or data[cut + 1 : cut + 2] in (b"", b" ", b"\t", b"\r", b"\n"):
        return False
    try:
        orjson.loads(data[:cut])
    except orjson.JSONDecodeError:
        return False
    return True


PARALLEL_MIN_OBJECTS = 4000  # below this, forking workers costs more than it saves

# Checks one signed envelope's signature: (envelope, stored bytes) -> why not (None: good)
SignatureCheck = Callable[[dict[str, Any], bytes], str | None]


def scan_objects(
    store: Store,
    tick: Callable[[int], None] | None = None,
    signatures: SignatureCheck | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> Scan:
    """Read and re-hash every object in every part; parse the JSON envelopes; check the
    signature of each signed one with `signatures`, when given.

    Big stores are read by forked workers (`ledger.parallel`), each hashing, parsing and
    checking the signatures of its share (at 100k signed run records, Ed25519 checks are
    seconds of CPU); the findings are the same, in the same order, as a single pass gives.
    `meanwhile` runs in this process while they work (`ledger.parallel.fork_map`).
    """
    scan = Scan()
    pack_files = store.pack_files()
    by_size = sorted(pack_files, key=lambda hp: -_size(hp[1]))  # big first: workers even out
    packs = [(PACK, str(path)) for _host, path in by_size]
    loose = [(oid, str(path)) for oid, path in store.loose_objects()]
    packed = sum(len(i.entries) for h in {h for h, _p in pack_files} for i in store.pack_indexes(h))
    rows = fork_map(
        _classify_chunk,
        packs + loose,
        signatures,
        serial=len(loose) + packed < PARALLEL_MIN_OBJECTS,
        meanwhile=meanwhile,
    )
    rows.sort(key=lambda row: row[:3])
    root = str(store.root)

    def rel(path: str) -> str:  # (a string operation: a Path per object costs seconds)
        return str(Path(path).relative_to(root))

    def inside(path: str, offset: int) -> str:
        return f" (in pack {rel(path)})" if offset >= 0 else ""

    for oid, path, offset, verdict, payload in rows:
        if verdict == "raw":  # (the common verdicts first)
            scan.raw.add(oid)
        elif verdict == "object":
            obj, data, why = payload
            scan.take(oid, obj)
            if data is not None:
                scan.signed_bytes[oid] = data
                if signatures is not None:
                    scan.signatures[oid] = why
        elif verdict == "pack":
            scan.problems += [Problem(rel(path), f"pack {why}") for why in payload]
            continue
        elif verdict == "name":
            scan.problems.append(
                Problem(rel(path), "file in the object store is not named by an id")
            )
        elif verdict == "unreadable":
            scan.problems.append(Problem(oid, f"cannot read: {payload}{inside(path, offset)}"))
            scan.bad.add(oid)
        elif verdict == "corrupt":
            scan.problems.append(
                Problem(
                    oid,
                    "object is corrupted: its bytes no longer hash to its id (changed or "
                    f"damaged){inside(path, offset)}",
                )
            )
            scan.bad.add(oid)
        elif verdict == "noncanonical":
            scan.problems.append(
                Problem(
                    oid, f"{payload!r} object is not stored as canonical JSON (RFC 8785): not used"
                )
            )
            scan.noncanonical.add(oid)
        elif verdict == "deep":
            scan.problems.append(
                Problem(oid, f"object is nested more than {MAX_DEPTH} levels deep: not used")
            )
            scan.noncanonical.add(oid)
        scan.count += 1
        if tick is not None:
            tick(1)
    return scan


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


PACK = ""  # the item of a pack file (sorts before every id: its problems come first)
Row = tuple[str, str, int, str, Any]  # (id, file, offset in a pack or -1, verdict, payload)


def _classify_chunk(items: list[tuple[str, str]]) -> list[Row]:
    check = shared()
    rows: list[Row] = []
    for oid, path in items:
        if oid == PACK:
            rows += _classify_pack(path, check)
        else:
            rows.append((oid, path, -1, *_classify(oid, path, check)))
    return rows


def _classify_pack(path: str, check: SignatureCheck | None) -> list[Row]:
    """The pack's own problems (one row), then each object its index lists, classified
    from its bytes as a loose file's are; index lines point anywhere, so a copy beyond
    the end of the pack is unreadable."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return [(PACK, path, -1, "pack", [f"cannot be read: {exc.strerror or exc}"])]
    index = parse_index(data, Path(path))
    part = Path(path).parent.parent.name
    rows: list[Row] = [(PACK, path, -1, "pack", pack_problems(index, data, part))]
    for copy in index.entries:
        end = copy.offset + (copy.length or 0)
        if end > len(data):
            why = f"the pack ends before the {copy.length} bytes its index gives (cut short?)"
            rows.append((copy.oid, path, copy.offset, "unreadable", why))
        else:
            verdict = _classify_bytes(copy.oid, data[copy.offset : end], check)
            rows.append((copy.oid, path, copy.offset, *verdict))
    return rows


def _classify(oid: str, path: str, check: SignatureCheck | None = None) -> tuple[str, Any]:
    """What one stored file is: (verdict, payload) for `scan_objects` to record."""
    if not is_object_id(oid) or Path(path).parent.name != oid[:2]:
        return "name", None
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return "unreadable", exc.strerror or str(exc)
    return _classify_bytes(oid, data, check)


def _classify_bytes(oid: str, data: bytes, check: SignatureCheck | None) -> tuple[str, Any]:
    """What one object's bytes are, read from a loose file or a pack."""
    if hashlib.sha256(data).hexdigest() != oid:
        return "corrupt", None
    try:
        obj = _envelope(data)
    except _TooDeep:
        return "deep", None
    if obj is None:
        return "raw", None
    if data.count(b"{") + data.count(b"[") > MAX_DEPTH and depth_of(obj) > MAX_DEPTH:
        return "deep", None  # (fewer brackets than the limit cannot nest past it)
    if not looks_like_envelope(data) or not is_canonical(obj, data):
        return "noncanonical", obj.get("kind")
    if "signature" not in obj:
        return "object", (obj, None, None)
    return "object", (obj, data, check(obj, data) if check is not None else None)
