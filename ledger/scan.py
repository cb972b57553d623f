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
    try:
        obj = json.loads(data)
    except RecursionError:
        if looks_like_envelope(data):
            raise _TooDeep from None
        return None
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or "kind" not in obj or "body" not in obj:
        return None
    return obj


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
) -> Scan:
    """Read and re-hash every object in every part; parse the JSON envelopes; check the
    signature of each signed one with `signatures`, when given.

    Big stores are read by forked workers (`ledger.parallel`), each hashing, parsing and
    checking the signatures of its share (at 100k signed run records, Ed25519 checks are
    seconds of CPU); the findings are the same, in the same order, as a single pass gives.
    """
    scan = Scan()
    items = [(oid, str(path)) for oid, path in store.iter_objects()]
    results = fork_map(_classify_chunk, items, signatures, serial=len(items) < PARALLEL_MIN_OBJECTS)
    for (oid, path), (verdict, payload) in zip(items, sorted_back(items, results), strict=True):
        scan.count += 1
        if tick is not None:
            tick(1)
        if verdict == "name":
            scan.problems.append(
                Problem(
                    str(Path(path).relative_to(store.root)),
                    "file in the object store is not named by an id",
                )
            )
        elif verdict == "unreadable":
            scan.problems.append(Problem(oid, f"cannot read: {payload}"))
            scan.bad.add(oid)
        elif verdict == "corrupt":
            scan.problems.append(
                Problem(
                    oid,
                    "object is corrupted: its bytes no longer hash to its id (changed or damaged)",
                )
            )
            scan.bad.add(oid)
        elif verdict == "raw":
            scan.raw.add(oid)
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
        else:
            obj, data, why = payload
            scan.take(oid, obj)
            if data is not None:
                scan.signed_bytes[oid] = data
                if signatures is not None:
                    scan.signatures[oid] = why
    return scan


def sorted_back(items: list[tuple[str, str]], results: list[tuple[str, str, Any]]) -> list:
    """Results (tagged with their path) in the order of `items`."""
    by_path = {path: (verdict, payload) for path, verdict, payload in results}
    return [by_path[path] for _oid, path in items]


def _classify_chunk(items: list[tuple[str, str]]) -> list[tuple[str, str, Any]]:
    check = shared()
    return [(path, *_classify(oid, path, check)) for oid, path in items]


def _classify(oid: str, path: str, check: SignatureCheck | None = None) -> tuple[str, Any]:
    """What one stored file is: (verdict, payload) for `scan_objects` to record."""
    if not is_object_id(oid) or Path(path).parent.name != oid[:2]:
        return "name", None
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return "unreadable", exc.strerror or str(exc)
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
