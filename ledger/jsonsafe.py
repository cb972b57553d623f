"""Strict JSON for input the ledger did not write: depth, size, duplicate keys, NaN.

Why: plans, raw logs, bundles and published anchors come from outside. Python's `json`
accepts `NaN`, keeps the last of two equal keys (another reader may keep the first: two
readers, two meanings), and recurses until a `RecursionError` on deep nesting. Every such
document gets one clear error naming what is wrong instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

import orjson

from ledger.errors import JSONInputError

MAX_DEPTH = 64  # nesting of objects and arrays; no document the ledger reads needs more


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"{text} overflows a double")
    return value


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return out


def depth_of(value: Any) -> int:
    """Nesting depth of a parsed value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def loads_strict(
    data: bytes | str, what: str, *, max_bytes: int | None = None, max_depth: int = MAX_DEPTH
) -> Any:
    """Parse `data` as strict JSON or raise `JSONInputError` naming `what`.

    Refused: more than `max_bytes`, invalid UTF-8, invalid JSON, NaN/Infinity, a repeated
    key in any object, nesting deeper than `max_depth`.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise JSONInputError(f"{what} is {len(data)} bytes, more than the {max_bytes} allowed")
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONInputError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(
            data,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_pairs,
        )
    except RecursionError:
        raise JSONInputError(f"{what} is nested more than {max_depth} levels deep") from None
    except ValueError as exc:
        raise JSONInputError(f"{what} is not valid JSON: {exc}") from None
    if _may_nest(data, max_depth) and depth_of(value) > max_depth:
        raise JSONInputError(f"{what} is nested more than {max_depth} levels deep")
    return value


def _may_nest(text: str | bytes, max_depth: int) -> bool:
    """Cheap pre-check: fewer brackets than the limit cannot nest past it."""
    opens = (
        text.count("{") + text.count("[")
        if isinstance(text, str)
        else text.count(b"{") + text.count(b"[")
    )
    return opens > max_depth


def _keys_within(value: Any, colons: int) -> bool:
    """Whether a parsed value holds `colons` keys in all (the colons outside its strings:
    one per key written, so fewer keys means an object repeated one) and nests no deeper
    than MAX_DEPTH. Without recursion."""
    keys, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if type(item) is dict:
            keys += len(item)
            stack.extend((child, depth + 1) for child in item.values() if type(child) in _NESTS)
        elif type(item) is list:
            stack.extend((child, depth + 1) for child in item if type(child) in _NESTS)
    return keys == colons


_NESTS = (dict, list)
# A JSON string token (quotes, escapes and all): outside them, the colons of valid JSON are
# exactly its keys' separators
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def loads_line(line: bytes) -> Any:
    """One JSON line of a raw log, strictly (NaN, duplicate keys, depth), fast on flat lines.

    Why a fast path: an audit parses every step line of every log, so lines go through
    `orjson` (several times faster than `json`; it refuses NaN, Infinity, overflowing
    numbers and invalid UTF-8 itself). orjson keeps the last of two equal keys, so a line is
    taken as parsed only when its objects hold as many keys in all as the line has colons
    outside its strings (then no key repeats) and it nests no deeper than MAX_DEPTH. Every other line takes the
    strict parse, which also says precisely what is wrong. Raises `ValueError` for anything
    that is not strict JSON.
    """
    if isinstance(line, str):
        line = line.encode("utf-8")
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        value = None
    if type(value) is dict:
        if b"[" not in line and b"{" not in line[1:]:  # flat (a step line): as many keys
            if line.count(b":") == len(value):  # as colons, or a key repeats
                return value
        elif _keys_within(value, _STRING.sub(b"", line).count(b":")):
            return value
    try:
        return loads_strict(line, "line")
    except JSONInputError as exc:
        raise ValueError(str(exc).removeprefix("line is ")) from None


__all__ = ["MAX_DEPTH", "JSONInputError", "depth_of", "loads_line", "loads_strict"]
