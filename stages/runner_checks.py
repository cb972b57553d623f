"""What a campaign's own runner accepts, checked before anything is signed.

Why: a foreign runner's mistakes used to surface only after the plan was signed: a
placeholder typo (`{budjet}`) as an internal error at the first run, a config key typo
(`hiden`) never (the script ignored it, so every condition ran the same recipe). Each
function here returns problems as `(dotted key, message)` pairs for the loader to report
in one line, or raises CampaignError naming the file and key.

* `runner.command`: placeholders must be among `PLACEHOLDERS`, `{config}` must be there;
* `runner.keys` / `runner.config_schema`: every [base], factor and condition key must be
  declared (and at freeze, every condition's whole config must satisfy the schema);
* `runner.adapter`: every key must name a module constant of the script, which must bind
  `TIME_BUDGET` and seed something the adapter can set.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import string
from functools import lru_cache
from pathlib import Path
from typing import Any

from ledger.errors import CampaignError
from ledger.plan_model import RunnerIdentity
from runner.autoresearch import (
    HEADER_FIELDS,
    AdapterError,
    constant_name,
    script_shape,
    shape_problems,
)
from stages.campaign_model import PLACEHOLDERS, AdapterRunner, CommandRunner

Problem = tuple[str, str]


def placeholder_problems(command: str) -> list[Problem]:
    """Unknown, positional or formatted placeholders of `runner.command`, and a missing
    `{config}` (the only way the command learns which condition it runs)."""
    where = "campaign.runner.command"
    valid = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    try:
        fields = list(string.Formatter().parse(command))
    except ValueError as exc:
        return [(where, f"is not a valid command template ({exc}); write {{{{ and }}}} for braces")]
    out: list[Problem] = []
    names = []
    for _text, name, spec, conversion in fields:
        if name is None:
            continue
        names.append(name)
        if name not in PLACEHOLDERS:
            shown = "{" + name + "}" if name else "{}"
            out.append((where, f"unknown placeholder {shown} (valid: {valid})"))
        elif spec or conversion:
            out.append((where, f"placeholder {{{name}}} takes no format or conversion"))
    if "config" not in names:
        out.append((where, f"must contain {{config}} (valid placeholders: {valid})"))
    return out


@lru_cache(maxsize=32)
def _read_schema(path: str, mtime_ns: int) -> dict[str, Any]:
    from jsonschema import SchemaError, validators  # 80 ms; only campaigns with a schema

    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CampaignError(f"campaign.runner.config_schema: cannot read {path}: {exc}") from None
    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise CampaignError(
            f"campaign.runner.config_schema: {path} is not a JSON Schema: {exc.message}"
        ) from None
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        raise CampaignError(
            f"campaign.runner.config_schema: {path} has no `properties`: the keys a config "
            f"may have must be listed there"
        )
    return schema


def config_schema(runner: CommandRunner) -> dict[str, Any] | None:
    """The runner's config JSON Schema, read and checked (None when it declares none)."""
    if runner.config_schema is None:
        return None
    path = Path(runner.config_schema)
    if not path.is_file():
        raise CampaignError(f"campaign.runner.config_schema: no such file {path}")
    return _read_schema(str(path), path.stat().st_mtime_ns)


def declared_keys(runner: CommandRunner) -> list[str] | None:
    """The config keys a command runner declares (`keys`, or the schema's properties)."""
    if runner.keys is not None:
        return list(runner.keys)
    schema = config_schema(runner)
    return sorted(schema["properties"]) if schema is not None else None


def unknown_key_problems(used: list[tuple[str, str]], known: list[str], what: str) -> list[Problem]:
    """`(where, key)` pairs whose key is not in `known`."""
    listed = ", ".join(known)
    return [
        (where, f"{key!r} is not a key {what} accepts (known: {listed})")
        for where, key in used
        if key not in known
    ]


def adapter_problems(runner: AdapterRunner, used: list[tuple[str, str]]) -> list[Problem]:
    """The script must exist, parse, have a constant for every key, bind TIME_BUDGET and
    seed something; no key may shadow a header field the launcher writes."""
    where = "campaign.runner.script"
    path = Path(runner.script)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [(where, f"cannot read {path}: {exc}")]
    try:
        shape = script_shape(source, str(path))
    except AdapterError as exc:
        return [(where, str(exc))]
    out: list[Problem] = [
        (key_where, f"{key!r} is a header field of the adapter's log, not a config key")
        for key_where, key in used
        if key in HEADER_FIELDS
    ]
    mapping = runner.constants or {}
    for key_where, key in used:
        name = constant_name(key, mapping)
        if name not in shape.constants:
            known = ", ".join(sorted(n for n in shape.constants if n.isupper())) or "none"
            out.append(
                (
                    key_where,
                    f"{key!r} sets {name}, which {path} does not define at module "
                    f"level (its constants: {known})",
                )
            )
    out += [(where, p) for p in shape_problems(shape, [], str(path))]
    for key in mapping:
        if key not in {k for _, k in used}:
            out.append((f"campaign.runner.constants.{key}", "maps a key no condition sets"))
    return out


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def schema_problems(schema: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Every way `config` fails the runner's JSON Schema, each naming its key path."""
    from jsonschema import validators  # 80 ms, see _read_schema

    validator = validators.validator_for(schema)(schema)
    out = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path) or "(the config)"
        out.append(f"{path}: {error.message}")
    return out


def keys_checked(runner: CommandRunner | AdapterRunner | None) -> str | None:
    """How config keys are checked, said in one phrase; None when nothing checks them."""
    if runner is None:
        return "the builtin runner's config schema"
    if isinstance(runner, AdapterRunner):
        return f"the module constants of {runner.script}"
    if runner.keys is not None:
        return "runner.keys"
    if runner.config_schema is not None:
        return f"runner.config_schema ({runner.config_schema})"
    return None


def frozen_keys_unchecked(runner: RunnerIdentity) -> bool:
    """Whether a frozen runner identity declares no way to check config keys (a command
    without `keys` or `config_schema`)."""
    return runner.kind == "command" and runner.keys is None and runner.config_schema is None


def unchecked_note(base: dict[str, Any], keys: list[str]) -> str:
    """The unchecked-keys line, naming keys that are not in [base] but close to one that is
    (`hiden` beside `hidden`): the likeliest typos when nothing checks keys."""
    suspects = []
    for key in dict.fromkeys(keys):
        close = difflib.get_close_matches(key, list(base), n=1, cutoff=0.8)
        if key not in base and close:
            suspects.append(f"{key!r} (did you mean {close[0]!r}?)")
    if not suspects:
        return UNCHECKED_NOTE
    return f"{UNCHECKED_NOTE}; not in [base] but close to a key that is: {', '.join(suspects)}"


UNCHECKED_NOTE = (
    "config keys are unchecked: this runner declares no runner.keys or runner.config_schema, "
    "so a misspelt key would run the script's default instead (docs/campaign.md)"
)


__all__ = [
    "UNCHECKED_NOTE",
    "adapter_problems",
    "config_schema",
    "declared_keys",
    "file_sha256",
    "frozen_keys_unchecked",
    "keys_checked",
    "placeholder_problems",
    "schema_problems",
    "unchecked_note",
    "unknown_key_problems",
]
