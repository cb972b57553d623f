"""Typed documents: one pydantic model per kind, validated once where the bytes enter.

Why: a manifest, a decision, a run record or a journal event read through `.get()` hides a
typo behind a default and tells a newcomer nothing about its keys. Each kind is a model
(`extra="forbid"`, frozen, strict: no silent `"2"` -> 2) parsed where its bytes enter the
program (a store read, a plan file, a raw log line), then read by attribute. A model is a
*view*: the canonical bytes that were hashed and signed stay as they are, and nothing is
ever re-serialised from a model to sign or to compare (`to_dict` is for display and JSON
output; it gives back exactly the keys that were read, `exclude_unset`).

Errors keep the house form, one line naming where and the dotted key:
`object 3f2a...: runs[0].seed: must be an integer, not '0'`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ledger.errors import InputError, LedgerError

D = TypeVar("D", bound="Document")


class Document(BaseModel):
    """A JSON document of a known shape: unknown keys refused, values of the type written."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def to_dict(self) -> dict[str, Any]:
        """The keys that were read, with their values (what `--json` prints); never signed."""
        return self.model_dump(mode="python", by_alias=True, exclude_unset=True)


TYPE_WORDS = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "none_required": "null",
}


def dotted(loc: Iterable[str | int]) -> str:
    """A pydantic error location as the key a user reads: `runs[0].seed`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def value_at(doc: Any, loc: Iterable[str | int]) -> Any:
    """The value at a location of a parsed document (None when it is not there): the
    offending value an error message quotes."""
    for part in loc:
        try:
            doc = doc[part]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


def _is_tag(part: str | int) -> bool:
    """Locations pydantic adds inside a union (`function-after[...]`, `int`, a model name)."""
    return isinstance(part, str) and (
        "[" in part or part in ("int", "float", "str", "bool", "none") or part[:1].isupper()
    )


def problem(error: Any) -> tuple[str, str]:
    """One pydantic error as (dotted key, what is wrong)."""
    loc = tuple(p for p in error["loc"] if not _is_tag(p))
    # pydantic's ErrorDetails: `type`, `loc`, `msg`, `input` always; `ctx` only for the
    # kinds that carry one, and then with the keys read below.
    kind, ctx, value = error["type"], error.get("ctx") or {}, error["input"]
    key = dotted(loc)
    if kind == "extra_forbidden":
        return key, "unknown key"
    if kind == "missing":
        return key, "is required"
    if kind in TYPE_WORDS:
        return key, f"must be {TYPE_WORDS[kind]}, not {value!r}"
    if kind == "literal_error":
        return key, f"must be {ctx['expected']}, not {value!r}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
                "less_than": "<"}[kind]  # fmt: skip
        bound = next(iter(ctx.values()))
        shown = f"{bound:g}" if isinstance(bound, int | float) else str(bound)
        return key, f"must be {sign} {shown}, not {value!r}"
    if kind in ("too_short", "too_long"):
        return key, f"must have {'at least' if kind == 'too_short' else 'at most'} " + (
            f"{ctx['min_length' if kind == 'too_short' else 'max_length']} item(s), not {value!r}"
        )
    if kind == "string_pattern_mismatch":
        return key, f"must match {ctx['pattern']}, not {value!r}"
    if kind == "value_error":
        return key, str(ctx["error"])
    return key, f"{error['msg']}, not {value!r}"


def problems(exc: ValidationError) -> list[tuple[str, str]]:
    """Every error of a failed validation as (dotted key, what is wrong), each once."""
    return list(dict.fromkeys(problem(e) for e in exc.errors()))


def one_line(where: str, exc: ValidationError) -> str:
    """`WHERE: key: what; key: what` (the house form of a bad document)."""
    return f"{where}: " + "; ".join(f"{key}: {what}" for key, what in problems(exc))


def parse(model: type[D], data: Any, where: str, error: type[LedgerError] = InputError) -> D:
    """`data` (a parsed JSON value) as `model`, or `error` naming `where` and every bad key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(one_line(where, exc)) from None


def parse_json(model: type[D], data: bytes, where: str, error: type[LedgerError] = InputError) -> D:
    """JSON bytes as `model` in one pass (pydantic's own parser), or `error` naming `where`."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise error(one_line(where, exc)) from None


__all__ = [
    "Document",
    "TYPE_WORDS",
    "dotted",
    "one_line",
    "parse",
    "parse_json",
    "problem",
    "problems",
    "value_at",
]
