"""RFC 8785 canonical JSON, SHA-256 ids, and object-id checks.

Why one module: every hash in the ledger (object ids, signatures, journal chains) is taken
over these exact bytes, so there must be exactly one way to produce them.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

import orjson
import rfc8785

from ledger.errors import CanonicalError, InvalidId

_ID = re.compile(r"[0-9a-f]{64}")
_MAX_SAFE_INT = 2**53 - 1


def canonical_bytes(obj: Any) -> bytes:
    """The RFC 8785 bytes of `obj`; NaN, inf, bytes, non-string keys... are refused."""
    try:
        return rfc8785.dumps(obj)
    except (ValueError, TypeError, RecursionError) as exc:
        where = _bad_path(obj, "$") or "$"
        raise CanonicalError(f"cannot encode {where} as canonical JSON: {exc}") from None


# Where orjson's sorted output can differ from RFC 8785 (so equality with it proves nothing):
# exponents, negative zero, integral floats, integers past 2^53, non-ASCII (key order is by
# UTF-16 units) and \u escapes. Bytes with none of these are canonical iff orjson agrees.
_RISKY_NUMBER = (
    rb"(?:-?[0-9]+(?:\.[0-9]+)?[eE]"  # exponent
    rb"|-0(?:\.0*)?(?![.0-9])"  # negative zero
    rb"|-?[0-9]+\.0+(?![0-9])"  # integral float
    rb"|-?[0-9]{16})"  # past 2^53
)
# a number token starts after one of these (never inside a string), or at the very start;
# the lookahead turns away the many `:` and `,` before strings and objects at once
_RISKY_AFTER = re.compile(rb"[:,\[](?=-?[0-9])" + _RISKY_NUMBER)
_RISKY_START = re.compile(_RISKY_NUMBER)


def _risky(data: bytes) -> bool:
    """Whether `data` holds a number token, non-ASCII byte (key order is by UTF-16 units)
    or `\\u` escape where orjson's bytes may differ from RFC 8785's."""
    return (
        not data.isascii()
        or b"\\u" in data
        or _RISKY_AFTER.search(data) is not None
        or _RISKY_START.match(data) is not None
    )


def is_canonical(obj: Any, data: bytes) -> bool:
    """Whether `data` are exactly the RFC 8785 bytes of `obj` (parsed from `data`).

    Why two paths: `rfc8785` is pure Python (~50 us per run record) and a store holds
    hundreds of thousands of objects; `orjson` with sorted keys writes the same bytes except
    in the cases `_RISKY` finds, which take the exact path.
    """
    try:
        fast = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        fast = None
    if fast == data and not _risky(data):
        return True
    try:
        return canonical_bytes(_as_parsed_from_float(obj)) == data
    except CanonicalError:
        return False


def _as_parsed_from_float(value: Any) -> Any:
    """`value` with integers past 2^53 read as the floats they must have been written from.

    RFC 8785 writes the float 1e16 as `10000000000000000`; JSON parsers read that back as an
    integer, which RFC 8785 cannot encode (beyond 2^53 integers are not exact as doubles).
    As a double it re-encodes to the same digits exactly when the bytes were RFC 8785's; an
    integer no double prints as (9007199254740993) re-encodes otherwise and is refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) > _MAX_SAFE_INT:
        return float(value)
    if isinstance(value, dict):
        return {k: _as_parsed_from_float(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_parsed_from_float(v) for v in value]
    return value


def _bad_path(obj: Any, path: str) -> str | None:
    """JSONPath-like location of the first value RFC 8785 cannot represent."""
    if obj is None or isinstance(obj, bool | str):
        return None
    if isinstance(obj, int):
        return None if abs(obj) <= _MAX_SAFE_INT else path
    if isinstance(obj, float):
        return None if math.isfinite(obj) else path
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                return f"{path}[{key!r}]"
            found = _bad_path(value, f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            found = _bad_path(value, f"{path}[{i}]")
            if found:
                return found
        return None
    return path


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256: the id of stored bytes."""
    return hashlib.sha256(data).hexdigest()


def is_object_id(s: Any) -> bool:
    """Whether `s` looks like an object id (64 lower-case hex characters)."""
    return isinstance(s, str) and _ID.fullmatch(s) is not None


def check_object_id(s: Any) -> str:
    """Return `s` if it is an object id, else raise a one-line LedgerError."""
    if not is_object_id(s):
        raise InvalidId(f"not an object id: {s!r} (expected 64 lower-case hex characters)")
    return s
