"""Campaign files: the TOML contract, read into typed objects, with one error line per file.

Why a separate module: every command (`design`, `freeze`, `run`, `decide`, `try`) reads the
same file, and every error must name the file and the key. The shape of each table (keys,
types, ranges) is the pydantic model in `stages.campaign_model`, the one source of the
shipped JSON Schema and docs/campaign.md; what relates tables (factor letters in order, a
`from` naming an earlier stage, keys the runner accepts) is checked here. All problems are
reported at once, on one line: `FILE: stages[1].rule.top_k (stage 'gate'): must be ...`.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ledger.document import dotted, value_at
from ledger.errors import CampaignError, LedgerError
from ledger.jsonsafe import MAX_DEPTH, depth_of
from ledger.plan_model import Check, Rule
from runner.config import DEFAULTS
from stages.campaign_model import (
    AdapterRunner,
    CampaignFile,
    CommandRunner,
    StageTable,
    budget_seconds,
)
from stages.campaign_schema import known_keys
from stages.runner_checks import (
    adapter_problems,
    declared_keys,
    placeholder_problems,
    unknown_key_problems,
)
from stages.surface import SimParams

MAX_CAMPAIGN_BYTES = 1 << 20
LETTERS = "ABCDEFGH"

Problem = tuple[str, str]  # (dotted key, what is wrong)


@dataclass(frozen=True)
class Factor:
    """A runner-config key screened at two levels, coded -1 (low) and +1 (high)."""

    letter: str
    key: str
    low: Any
    high: Any

    def level(self, coded: int) -> Any:
        return self.high if coded > 0 else self.low

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "levels": [self.low, self.high]}


@dataclass(frozen=True)
class StageSpec:
    """One `[[stages]]` table: typed (`table`), and as written (`raw`, which the manifest
    freezes and every later command compares with the file)."""

    name: str
    budget_s: float
    table: StageTable
    raw: dict[str, Any]
    index: int

    @property
    def design(self) -> str | None:
        return self.table.design

    @property
    def generators(self) -> list[str]:
        return list(self.table.generators or [])

    @property
    def runs(self) -> int | None:
        return self.table.runs

    @property
    def seeds(self) -> list[int]:
        return list(self.table.seeds)

    @property
    def hosts(self) -> list[str]:
        return list(self.table.hosts)

    @property
    def rule(self) -> Rule:
        return self.table.rule

    @property
    def checks(self) -> list[Check]:
        return list(self.table.checks)

    @property
    def written_rule(self) -> dict[str, Any]:
        """The rule's keys as written (an absent table: none), with their validated values:
        what the manifest freezes and `apply_rule` reads back from it. (A number written
        `1` where the rule takes a float is `1.0`: the same canonical JSON.)"""
        return self.rule.to_dict()

    @property
    def written_checks(self) -> list[dict[str, Any]]:
        """The checks as written (frozen in the manifest), as `written_rule`."""
        return [c.to_dict() for c in self.checks]

    @property
    def parent(self) -> str | None:
        return self.table.from_

    @property
    def add(self) -> list[str]:
        return list(self.table.add)

    @property
    def gpus(self) -> int:
        return self.table.gpus

    @property
    def max_attempts(self) -> int:
        """Attempts each run may have (interrupted ones count), frozen in the manifest."""
        return self.table.max_attempts

    @property
    def cells(self) -> list[tuple[int, str]]:
        return [(s, h) for h in self.hosts for s in self.seeds]


@dataclass
class Campaign:
    """A parsed campaign: factors, base config, named conditions and ordered stages."""

    path: Path
    text: str
    document: CampaignFile
    base: dict[str, Any]
    factors: list[Factor]
    named: dict[str, dict[str, Any]]
    stages: list[StageSpec]

    @property
    def name(self) -> str:
        return self.document.campaign.name

    @property
    def metric(self) -> str:
        return self.document.campaign.metric

    @property
    def data(self) -> str | None:
        return self.document.campaign.data

    @property
    def runner(self) -> CommandRunner | AdapterRunner | None:
        """The campaign's own runner, or None for the builtin runner."""
        return self.document.campaign.runner

    @property
    def runner_table(self) -> dict[str, Any] | None:
        """The runner table as the manifest's spec freezes it (defaults filled in)."""
        runner = self.runner
        return None if runner is None else runner.model_dump(exclude_none=True)

    @property
    def sim(self) -> dict[str, Any]:
        """The `[sim]` table as written (stages.surface fills in its defaults)."""
        table = self.document.sim
        return {} if table is None else table.model_dump(exclude_unset=True)

    def stage(self, name: str) -> StageSpec:
        for spec in self.stages:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.stages)
        raise CampaignError(f"{self.path}: no stage named {name!r} (stages: {known})")

    def factor(self, letter: str) -> Factor:
        for f in self.factors:
            if f.letter == letter:
                return f
        raise CampaignError(f"{self.path}: no factor {letter!r}")

    @property
    def factor_table(self) -> dict[str, dict[str, Any]]:
        return {f.letter: f.to_dict() for f in self.factors}

    @property
    def stage_names(self) -> list[str]:
        """The stages' names in protocol order (the file's order, each after its parent)."""
        return [s.name for s in self.stages]


def parse_budget(value: Any, where: str) -> float:
    """Budget strings `90s`, `2m`, `12h` or plain seconds -> seconds (float > 0)."""
    try:
        return budget_seconds(value)
    except ValueError as exc:
        raise CampaignError(f"{where}: budget {exc}") from None


def budget_label(seconds: Any) -> str:
    """The inverse of :func:`parse_budget` in its shortest unit: ``7200 -> "2h"``, ``90 -> "90s"``."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
    ):
        return "?"
    s = float(seconds)
    if s >= 3600 and s % 3600 == 0:
        return f"{s / 3600:g}h"
    if s >= 60 and s % 60 == 0:
        return f"{s / 60:g}m"
    return f"{s:g}s"


def load_campaign(path: str | Path, *, runner_keys: bool = True) -> Campaign:
    """Read and validate a campaign file; every error names the file and the key.

    `runner_keys=False` skips the check of config keys against the builtin runner: for a
    campaign only ever replayed from a table (`ledger evaluate --executor replay`), whose
    conditions carry the table's keys and which runs nothing.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CampaignError(f"campaign file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignError(f"cannot read campaign file {path}: {exc}") from None
    return parse_campaign(text, path, runner_keys=runner_keys)


def parse_campaign(
    text: str, path: str | Path = "campaign.toml", *, runner_keys: bool = True
) -> Campaign:
    """Parse campaign TOML text (docs/campaign.md); CampaignError names file and keys.

    `runner_keys=False`: see `load_campaign` (the builtin runner's keys are not checked)."""
    path = Path(path)
    doc = _toml(text, path)
    try:
        document = CampaignFile.model_validate(doc)
    except ValidationError as exc:
        raise _error(path, [_shape_problem(e, doc) for e in exc.errors()], doc) from None
    factors, problems = _factors(document)
    named, more = _named(document, factors)
    problems += more + _stage_problems(document, named)
    problems += _runner_problems(document, factors, named, builtin_keys=runner_keys)
    if not problems:
        problems += _sim_problems(document, factors)
    if problems:
        raise _error(path, problems, doc)
    stages = [
        StageSpec(s.name, budget_seconds(s.budget), s, dict(doc["stages"][i]), i)
        for i, s in enumerate(document.stages)
    ]
    return Campaign(path, text, document, dict(document.base), factors, named, stages)


def _toml(text: str, path: Path) -> dict[str, Any]:
    if len(text) > MAX_CAMPAIGN_BYTES:
        raise CampaignError(
            f"{path}: {len(text)} characters, more than the "
            f"{MAX_CAMPAIGN_BYTES} a campaign file may have"
        )
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignError(f"{path}: malformed TOML: {exc}") from None
    except RecursionError:
        raise CampaignError(f"{path}: nested too deeply to be a campaign file") from None
    if depth_of(doc) > MAX_DEPTH:
        raise CampaignError(f"{path}: nested more than {MAX_DEPTH} levels deep")
    return doc


def _error(path: Path, problems: list[Problem], doc: dict[str, Any]) -> CampaignError:
    """One line: `FILE: key: what; key: what` (a stage's key also names the stage)."""
    parts = []
    for key, message in dict.fromkeys(problems):
        parts.append(f"{_with_stage_name(key, doc)}: {message}")
    return CampaignError(f"{path}: " + "; ".join(parts))


def _with_stage_name(key: str, doc: dict[str, Any]) -> str:
    if not key.startswith("stages["):
        return key
    index = key[len("stages[") : key.index("]")]
    name = value_at(doc, ("stages", int(index), "name")) if index.isdigit() else None
    if isinstance(name, str):
        head, _, tail = key.partition("]")
        return f"{head}]{tail} (stage {name!r})"
    return key


_TYPE_WORDS = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_PATTERN_WORDS = {
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$": "a simple name like 'screen-2m' (letters, digits, . _ -)",
    r"^[A-H]$": "a factor letter A-H",
    r"\S": "a non-empty string",
}


def _shape_problem(error: Any, doc: dict[str, Any]) -> Problem:
    """A pydantic error as (dotted key, message in the campaign's words)."""
    loc = _strip_tags(tuple(error["loc"]))
    # pydantic's ErrorDetails: `type`, `loc`, `msg`, `input` always; `ctx` for the kinds
    # that carry one (each branch below that reads it), with the keys read there
    kind, value = error["type"], error["input"]
    if kind == "extra_forbidden":
        known = ", ".join(known_keys(loc[:-1], value_at(doc, loc[:-1]))) or "none"
        return dotted(loc), f"unknown key (known: {known})"
    if kind == "missing":
        return dotted(loc), "is required"
    if kind in _TYPE_WORDS:
        return dotted(loc), f"must be {_TYPE_WORDS[kind]}, not {value!r}"
    if kind == "finite_number":
        return dotted(loc), f"must be a finite number, not {value!r}"
    if kind == "literal_error":
        return dotted(loc), f"must be {error['ctx']['expected']}, not {value!r}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
                "less_than": "<"}[kind]  # fmt: skip
        bound = next(iter(error["ctx"].values()))
        return dotted(loc), f"must be {sign} {bound}, not {value!r}"
    if kind in ("too_short", "too_long"):
        return dotted(loc), _length_message(loc, error["ctx"], value)
    if kind == "string_pattern_mismatch":
        pattern = str(error["ctx"]["pattern"])
        words = _PATTERN_WORDS.get(pattern, f"match {pattern}")
        if loc and loc[0] == "factors":
            return dotted(loc[:2]), "factor names are single letters A-H"
        return dotted(loc), f"must be {words}, not {value!r}"
    if kind == "value_error":
        return dotted(loc), str(error["ctx"]["error"])
    return dotted(loc), str(error["msg"]).lower()


def _strip_tags(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Drop the union tag pydantic adds after `campaign.runner` (`command`/`adapter`)."""
    if loc[:2] == ("campaign", "runner") and loc[2:3] in (("command",), ("adapter",)):
        return loc[:2] + loc[3:]
    return loc


def _length_message(loc: tuple[str | int, ...], ctx: dict[str, Any], value: Any) -> str:
    if loc[-1:] == ("levels",):
        return f"must be two different values [low, high], not {value!r}"
    if loc == ("stages",):
        return "at least one [[stages]] table is required"
    least = ctx["min_length"]  # too_short: only `levels` has a max_length (said above)
    return f"must have at least {least} item(s), not {value!r}"


def _factors(document: CampaignFile) -> tuple[list[Factor], list[Problem]]:
    factors: list[Factor] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for letter, spec in document.factors.items():
        where = f"factors.{letter}"
        low, high = spec.levels  # two different values (the model says so)
        if spec.key in seen:
            problems.append(
                (f"{where}.key", f"{spec.key!r} is already screened by factor {seen[spec.key]}")
            )
        seen.setdefault(spec.key, letter)
        factors.append(Factor(letter, spec.key, low, high))
    letters = [f.letter for f in factors]
    if letters != list(LETTERS[: len(letters)]):
        problems.append(
            (
                "factors",
                f"must be named A, B, C, ... in order without gaps, not {', '.join(letters)}",
            )
        )
    return factors, problems


def _named(
    document: CampaignFile, factors: list[Factor]
) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Named conditions: factor letters take coded levels (-1/+1), other keys are overrides."""
    by_letter = {f.letter: f for f in factors}
    named: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    for name, spec in document.conditions.items():
        where = f"conditions.{name}"
        if name == "best":
            problems.append((where, "'best' is reserved for checks (the gate's rank-1 condition)"))
        overrides: dict[str, Any] = {}
        for key, value in spec.items():
            if key in by_letter:
                if type(value) is not int or value not in (-1, 1):
                    problems.append((f"{where}.{key}", f"coded levels are -1 or 1, not {value!r}"))
                    continue
                overrides[by_letter[key].key] = by_letter[key].level(value)
            else:
                overrides[key] = value
        named[name] = overrides
    return named, problems


def _stage_problems(document: CampaignFile, named: dict[str, dict[str, Any]]) -> list[Problem]:
    problems: list[Problem] = []
    earlier: list[str] = []
    for i, stage in enumerate(document.stages):
        where = f"stages[{i}]"
        if stage.name in earlier:
            problems.append((f"{where}.name", f"duplicate stage name {stage.name!r}"))
        problems += _design_problems(document, stage, where)
        if stage.from_ is not None and stage.from_ not in earlier:
            problems.append(
                (f"{where}.from", f"names {stage.from_!r}, which is not an earlier stage")
            )
        for j, item in enumerate(stage.add):
            if item not in named:
                problems.append(
                    (f"{where}.add[{j}]", f"names {item!r}, which is not in [conditions]")
                )
        if stage.design is None and stage.from_ is None and not stage.add:
            problems.append((where, "no candidates (set design, from or add)"))
        for j, item in enumerate(stage.rule.keep or []):
            if item not in named:
                problems.append(
                    (f"{where}.rule.keep[{j}]", f"names {item!r}, which is not in [conditions]")
                )
        earlier.append(stage.name)
    return problems


def _design_problems(document: CampaignFile, stage: StageTable, where: str) -> list[Problem]:
    out: list[Problem] = []
    if stage.design is not None and not document.factors:
        out.append((f"{where}.design", "needs a [factors] table"))
    if stage.design == "fractional" and stage.runs is None and stage.generators is None:
        out.append((f"{where}.design", "a fractional design needs runs = N or generators"))
    return out


def config_keys_used(
    document: CampaignFile, factors: list[Factor], named: dict[str, dict[str, Any]]
) -> list[tuple[str, str]]:
    """(dotted key, config key) for every config key the campaign sets: [base], each
    factor's key, each named condition's overrides."""
    letters = {f.letter for f in factors}
    used = [(f"base.{k}", k) for k in document.base]
    used += [(f"factors.{f.letter}.key", f.key) for f in factors]
    for name, spec in document.conditions.items():
        used += [(f"conditions.{name}.{k}", k) for k in spec if k not in letters]
    return used


def _runner_problems(
    document: CampaignFile,
    factors: list[Factor],
    named: dict[str, dict[str, Any]],
    *,
    builtin_keys: bool = True,
) -> list[Problem]:
    """Keys the runner refuses (builtin schema, runner.keys, config_schema, the adapter
    script's constants) and unknown command placeholders."""
    runner = document.campaign.runner
    used = config_keys_used(document, factors, named)
    if runner is None:
        if not builtin_keys:
            return []
        return unknown_key_problems(used, list(DEFAULTS), "the builtin runner")
    if isinstance(runner, AdapterRunner):
        return adapter_problems(runner, used)
    problems = placeholder_problems(runner.command)
    try:
        keys = declared_keys(runner)
    except CampaignError as exc:
        key, _, message = str(exc).partition(": ")
        return [*problems, (key, message)]
    if keys is not None:
        what = "runner.keys" if runner.keys is not None else "runner.config_schema"
        problems += unknown_key_problems(used, keys, what)
    return problems


def _sim_problems(document: CampaignFile, factors: list[Factor]) -> list[Problem]:
    if document.sim is None:
        return []
    letters = "".join(f.letter for f in factors)
    try:
        SimParams.from_table(document.sim.model_dump(exclude_unset=True), letters, "sim")
    except LedgerError as exc:
        key, _, message = str(exc).partition(": ")
        return [(key, message)]
    return []
