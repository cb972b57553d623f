"""Two documents compared field by field, as models: where they differ, and what each says.

Why: the audit re-derives a decision (and a plan) and must say which fields the signed one
does not match. Both sides are read as models (`ledger.document.Document`) and compared by
value, field by field; nothing is re-serialised to compare (a signature is checked on the
stored bytes, never here). A field a document leaves out reads as its model's default, so
`"dropped": []` and no `dropped` key say the same.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ledger.document import Document

_KEYS: dict[type[BaseModel], tuple[tuple[str, str], ...]] = {}  # (attribute, JSON key)
_SCALARS = (str, int, float, type(None))


def fields(model: BaseModel) -> dict[str, Any]:
    """A model's fields by the key its JSON holds them under (an alias where it has one)."""
    cls = type(model)
    keys = _KEYS.get(cls)
    if keys is None:  # (once per model class: an audit compares thousands of fields)
        table = cls.__pydantic_fields__
        keys = _KEYS[cls] = tuple((name, info.alias or name) for name, info in table.items())
    values = model.__dict__
    return {key: values[name] for name, key in keys}


def equal(a: Any, b: Any) -> bool:
    """Equal as JSON values: models of one kind field by field, mappings key by key, lists
    and tuples item by item, numbers by value (1 == 1.0) but `true` is not 1."""
    if type(a) is type(b) and type(a) in _SCALARS:
        return bool(a == b)  # (the common case, first)
    if isinstance(a, BaseModel) or isinstance(b, BaseModel):
        return type(a) is type(b) and equal(fields(a), fields(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def plain(value: Any) -> Any:
    """A value as its JSON holds it, to show: a model as the keys it was read with, in the
    order canonical JSON stores them."""
    if isinstance(value, Document):
        return _sorted(value.to_dict())
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def field_diffs(derived: Any, recorded: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, recorded, re-derived) of every differing field, values as JSON holds them.

    Two models are compared over the re-derived one's fields (a signed decision's signer
    and time are no part of what its rule gives), two mappings key by key (a missing key
    reads as null); anything else is one value, compared with `equal`."""
    if isinstance(derived, BaseModel) and isinstance(recorded, type(derived)):
        theirs = fields(recorded)
        return [
            found
            for key, value in fields(derived).items()
            for found in field_diffs(value, theirs[key], f"{path}.{key}" if path else key)
        ]
    if isinstance(derived, dict) and isinstance(recorded, dict):
        out = []
        for key in sorted(set(derived) | set(recorded)):
            sub = f"{path}.{key}" if path else key
            out += field_diffs(derived.get(key), recorded.get(key), sub)
        return out
    if equal(derived, recorded):
        return []
    return [(path, plain(recorded), plain(derived))]


def diff(derived: Any, recorded: Any, path: str = "") -> list[str]:
    """`field_diffs` as lines: `path: recorded X, re-derived Y`."""
    return [
        f"{where}: recorded {short(rec)}, re-derived {short(der)}"
        for where, rec, der in field_diffs(derived, recorded, path)
    ]


def short(value: Any, width: int = 80) -> str:
    """A value's repr, cut to `width` characters."""
    text = repr(value)
    return text if len(text) < width else text[: width - 3] + "..."


__all__ = ["diff", "equal", "field_diffs", "fields", "plain", "short"]
