"""One pass over every stored object: re-hash, classify, parse JSON once.

Why shared: `verify`, `reindex` and the index check all need the same parsed objects, and
at 100k runs reading every file twice would double the cost of an audit.

Every object that parses as a JSON envelope (`{"kind", "body", ...}`) must be stored as its
RFC 8785 bytes: one that is not (extra spaces, another key order) is a problem, and is never
used as evidence, so a hand-written decision cannot slip past the signature checks by
looking like a raw log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ledger.canonical import is_canonical, is_object_id
from ledger.jsonsafe import MAX_DEPTH, depth_of
from ledger.parallel import fork_map, shared
from ledger.problems import Problem
from ledger.store import Store

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


@dataclass
class Scan:
    """Hash-checked objects: parsed JSON envelopes, raw ids, and what was wrong."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
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
        return {oid: o for oid, o in self.objects.items() if o.get("kind") == kind}


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
            scan.objects[oid] = obj
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
