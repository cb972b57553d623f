"""Campaign files: parse and validate the TOML contract into plain, typed objects.

Why a separate module: every command (`design`, `freeze`, `run`, `decide`) reads the same file,
and every error must name the file and the key, so validation lives in one place.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.errors import CampaignError, LedgerError
from ledger.jsonsafe import MAX_DEPTH, depth_of
from ledger.rawlog import METRICS
from runner.config import DEFAULTS
from stages.rules import validate_checks, validate_rule

MAX_CAMPAIGN_BYTES = 1 << 20

LETTERS = "ABCDEFGH"
STAGE_KEYS = {
    "name",
    "budget",
    "design",
    "generators",
    "runs",
    "seeds",
    "hosts",
    "rule",
    "checks",
    "from",
    "add",
    "gpus",
    "max_attempts",
}
CAMPAIGN_KEYS = {"name", "metric", "runner", "description", "data"}
TOP_KEYS = {"campaign", "base", "factors", "conditions", "stages", "sim"}
_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


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
    """One `[[stages]]` table as written, plus its parsed budget."""

    name: str
    budget_s: float
    raw: dict[str, Any]
    index: int

    @property
    def design(self) -> str | None:
        return self.raw.get("design")

    @property
    def seeds(self) -> list[int]:
        return list(self.raw.get("seeds", [0]))

    @property
    def hosts(self) -> list[str]:
        return list(self.raw.get("hosts", ["local"]))

    @property
    def rule(self) -> dict[str, Any]:
        return dict(self.raw.get("rule", {}))

    @property
    def checks(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self.raw.get("checks", [])]

    @property
    def parent(self) -> str | None:
        return self.raw.get("from")

    @property
    def add(self) -> list[str]:
        return list(self.raw.get("add", []))

    @property
    def gpus(self) -> int:
        return int(self.raw.get("gpus", 1))

    @property
    def max_attempts(self) -> int:
        """Attempts each run may have (interrupted ones count), frozen in the manifest."""
        return int(self.raw.get("max_attempts", 1))

    @property
    def cells(self) -> list[tuple[int, str]]:
        return [(s, h) for h in self.hosts for s in self.seeds]


@dataclass
class Campaign:
    """A parsed campaign: factors, base config, named conditions and ordered stages."""

    path: Path
    text: str
    name: str
    metric: str
    base: dict[str, Any]
    factors: list[Factor]
    named: dict[str, dict[str, Any]]
    stages: list[StageSpec]
    runner: dict[str, Any] | None = None
    sim: dict[str, Any] = field(default_factory=dict)
    data: str | None = None

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
    if isinstance(value, bool):
        raise CampaignError(f"{where}: budget must be like '90s', '2m' or '12h', not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _BUDGET.match(str(value))
        if not match:
            raise CampaignError(f"{where}: budget must be like '90s', '2m' or '12h', not {value!r}")
        unit = {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
        seconds = float(match.group(1)) * unit
    if not math.isfinite(seconds) or seconds <= 0:
        raise CampaignError(f"{where}: budget must be positive, not {value!r}")
    return seconds


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


def load_campaign(path: str | Path) -> Campaign:
    """Read and validate a campaign file; every error names the file and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CampaignError(f"campaign file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignError(f"cannot read campaign file {path}: {exc}") from None
    return parse_campaign(text, path)


def parse_campaign(text: str, path: str | Path = "campaign.toml") -> Campaign:
    """Parse campaign TOML text (see DESIGN §6); raises LedgerError naming file and key."""
    path = Path(path)
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
    _reject_unknown(doc, TOP_KEYS, f"{path}", "top-level table")

    head = _table(doc, "campaign", path, required=True)
    _reject_unknown(head, CAMPAIGN_KEYS, f"{path}: [campaign]", "key")
    name = head.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CampaignError(f"{path}: [campaign] name must be a non-empty string")
    metric = head.get("metric", "val_bpb")
    if metric not in METRICS:
        raise CampaignError(
            f"{path}: [campaign] metric {metric!r} is not one the runner reports "
            f"({', '.join(METRICS)})"
        )
    runner = head.get("runner")
    if runner is not None:
        runner = _validate_runner(runner, path)
    data = head.get("data")
    if data is not None and not isinstance(data, str):
        raise CampaignError(f"{path}: [campaign] data must be a path string")

    base = dict(_table(doc, "base", path))
    factors = _parse_factors(_table(doc, "factors", path), path)
    named = _parse_named(_table(doc, "conditions", path), factors, path)
    if runner is None:
        _check_runner_keys(base, factors, named, path)
    stages = _parse_stages(doc.get("stages", []), factors, named, path)
    sim = dict(_table(doc, "sim", path))
    return Campaign(
        path=path,
        text=text,
        name=name,
        metric=metric,
        base=base,
        factors=factors,
        named=named,
        stages=stages,
        runner=runner,
        sim=sim,
        data=data,
    )


def _check_runner_keys(
    base: dict[str, Any], factors: list[Factor], named: dict[str, dict[str, Any]], path: Path
) -> None:
    """The builtin runner refuses unknown config keys: say so now, naming the table and key,
    not after every run has crashed on it."""
    known = ", ".join(DEFAULTS)
    for key in base:
        if key not in DEFAULTS:
            raise CampaignError(
                f"{path}: [base] {key!r} is not a runner config key (known: {known})"
            )
    for factor in factors:
        if factor.key not in DEFAULTS:
            raise CampaignError(
                f"{path}: [factors] {factor.letter}.key {factor.key!r} is not a "
                f"runner config key (known: {known})"
            )
    for name, overrides in named.items():
        for key in overrides:
            if key not in DEFAULTS:
                raise CampaignError(
                    f"{path}: [conditions] {name}: {key!r} is not a runner config "
                    f"key or a factor letter (known: {known})"
                )


def _table(doc: dict, key: str, path: Path, required: bool = False) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        if required:
            raise CampaignError(f"{path}: missing [{key}] table")
        return {}
    if not isinstance(value, dict):
        raise CampaignError(f"{path}: [{key}] must be a table")
    return value


def _reject_unknown(table: dict, allowed: set[str], where: str, what: str) -> None:
    for key in table:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise CampaignError(f"{where}: unknown {what} {key!r} (known: {known})")


def _validate_runner(runner: Any, path: Path) -> dict[str, Any]:
    if not isinstance(runner, dict) or not isinstance(runner.get("command"), str):
        raise CampaignError(
            f"{path}: [campaign] runner must be {{ command = '...', format = ... }}"
        )
    fmt = runner.get("format", "autoresearch")
    if fmt not in ("autoresearch", "jsonl"):
        raise CampaignError(f"{path}: [campaign] runner.format must be 'autoresearch' or 'jsonl'")
    if "{config}" not in runner["command"]:
        raise CampaignError(f"{path}: [campaign] runner.command must contain {{config}}")
    return {"command": runner["command"], "format": fmt}


def _parse_factors(table: dict, path: Path) -> list[Factor]:
    factors: list[Factor] = []
    seen_keys: set[str] = set()
    for letter, spec in table.items():
        where = f"{path}: [factors] {letter}"
        if len(letter) != 1 or letter not in LETTERS:
            raise CampaignError(f"{where}: factor names are single letters A-H")
        if not isinstance(spec, dict) or set(spec) - {"key", "levels"}:
            raise CampaignError(f"{where}: must be {{ key = '...', levels = [low, high] }}")
        key, levels = spec.get("key"), spec.get("levels")
        if not isinstance(key, str) or not key:
            raise CampaignError(f"{where}.key must be a runner config key")
        if not isinstance(levels, list) or len(levels) != 2 or levels[0] == levels[1]:
            raise CampaignError(f"{where}.levels must be two different values [low, high]")
        if key in seen_keys:
            raise CampaignError(f"{where}.key {key!r} is already screened by another factor")
        seen_keys.add(key)
        factors.append(Factor(letter, key, levels[0], levels[1]))
    letters = [f.letter for f in factors]
    if letters != sorted(letters) or letters != list(LETTERS[: len(letters)]):
        raise CampaignError(f"{path}: [factors] must be named A, B, C, ... in order without gaps")
    return factors


def _parse_named(table: dict, factors: list[Factor], path: Path) -> dict[str, dict[str, Any]]:
    """Named conditions: factor letters take coded levels (-1/+1), other keys are overrides."""
    by_letter = {f.letter: f for f in factors}
    named: dict[str, dict[str, Any]] = {}
    for name, spec in table.items():
        where = f"{path}: [conditions] {name}"
        if not isinstance(spec, dict):
            raise CampaignError(f"{where}: must be a table of overrides or coded levels")
        if name in ("best",):
            raise CampaignError(f"{where}: 'best' is reserved for checks")
        overrides: dict[str, Any] = {}
        for key, value in spec.items():
            if key in by_letter:
                if value not in (-1, 1):
                    raise CampaignError(f"{where}.{key}: coded levels are -1 or 1, not {value!r}")
                overrides[by_letter[key].key] = by_letter[key].level(value)
            else:
                overrides[key] = value
        named[name] = overrides
    return named


def _parse_stages(
    raw_stages: Any, factors: list[Factor], named: dict[str, dict], path: Path
) -> list[StageSpec]:
    if not isinstance(raw_stages, list) or not raw_stages:
        raise CampaignError(f"{path}: at least one [[stages]] table is required")
    stages: list[StageSpec] = []
    names: set[str] = set()
    for i, raw in enumerate(raw_stages):
        where = f"{path}: stages[{i}]"
        if not isinstance(raw, dict):
            raise CampaignError(f"{where}: must be a table")
        name = raw.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise CampaignError(f"{where}.name must be a simple name like 'screen-2m'")
        where = f"{path}: stage {name!r}"
        if name in names:
            raise CampaignError(f"{where}: duplicate stage name")
        names.add(name)
        _reject_unknown(raw, STAGE_KEYS, where, "key")
        budget = parse_budget(raw.get("budget"), f"{where}.budget")
        _validate_stage(raw, where, factors, named, names)
        stages.append(StageSpec(name=name, budget_s=budget, raw=dict(raw), index=i))
    return stages


def _validate_stage(
    raw: dict, where: str, factors: list[Factor], named: dict[str, dict], earlier: set[str]
) -> None:
    design = raw.get("design")
    if design is not None:
        if design not in ("full", "fractional"):
            raise CampaignError(f"{where}.design must be 'full' or 'fractional'")
        if not factors:
            raise CampaignError(f"{where}.design needs a [factors] table")
        if design == "fractional" and "runs" not in raw and "generators" not in raw:
            raise CampaignError(f"{where}: a fractional design needs runs = N or generators")
    runs = raw.get("runs")
    if runs is not None and (not isinstance(runs, int) or runs < 2 or runs & (runs - 1)):
        raise CampaignError(f"{where}.runs must be a power of two >= 2")
    gens = raw.get("generators")
    if gens is not None and (
        not isinstance(gens, list) or not all(isinstance(g, str) for g in gens)
    ):
        raise CampaignError(f"{where}.generators must be a list like ['E=ABCD']")
    for key in ("seeds",):
        value = raw.get(key, [0])
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            raise CampaignError(f"{where}.{key} must be a non-empty list of integers")
        if len(set(value)) != len(value):
            raise CampaignError(f"{where}.{key} has duplicates")
    hosts = raw.get("hosts", ["local"])
    if (
        not isinstance(hosts, list)
        or not hosts
        or not all(
            isinstance(h, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", h) for h in hosts
        )
    ):
        raise CampaignError(f"{where}.hosts must be a non-empty list of simple host names")
    if len(set(hosts)) != len(hosts):
        raise CampaignError(f"{where}.hosts has duplicates")
    parent = raw.get("from")
    if parent is not None and parent not in earlier - {raw["name"]}:
        raise CampaignError(f"{where}.from names {parent!r}, which is not an earlier stage")
    add = raw.get("add", [])
    if not isinstance(add, list):
        raise CampaignError(f"{where}.add must be a list of condition names")
    for item in add:
        if item not in named:
            raise CampaignError(f"{where}.add names {item!r}, which is not in [conditions]")
    if design is None and parent is None and not add:
        raise CampaignError(f"{where}: no candidates (set design, from or add)")
    for key in ("gpus", "max_attempts"):
        value = raw.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CampaignError(f"{where}.{key} must be a positive integer")
    rule = raw.get("rule", {})
    checks = raw.get("checks", [])
    if not isinstance(checks, list):
        raise CampaignError(f"{where}.checks must be a list of tables")
    try:
        validate_rule(rule)
        validate_checks(checks)
    except LedgerError as exc:
        raise CampaignError(f"{where}: {exc}") from None
    for name in rule.get("keep", []):
        if name not in named:
            raise CampaignError(f"{where}.rule.keep names {name!r}, which is not in [conditions]")
    for j, check in enumerate(checks):
        if not isinstance(check, dict) or not {"name", "a", "b", "within"} <= set(check):
            raise CampaignError(f"{where}.checks[{j}] needs name, a, b and within")
