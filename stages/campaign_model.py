"""The campaign file as typed documents: one pydantic model per TOML table.

Why one model: the loader, the shipped JSON Schema (`stages/campaign.schema.json`, printed by
`ledger campaign --schema`) and the key table of docs/campaign.md all come from these classes,
so a key the loader accepts is a key the schema and the docs describe, and none other.
Every model forbids unknown keys and is strict (no silent `"2"` -> 2 coercion): a typo in a
screening campaign must fail before anything is signed. Rules that relate several tables
(a `from` that names an earlier stage, factor letters in order) are checked by
`stages.campaign` after this shape check; both raise one line naming the dotted key.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ledger.plan_model import Check, Rule
from ledger.rawlog import METRICS
from stages.surface import DEFAULTS as SIM_DEFAULTS

SIMPLE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
BUDGET_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$"
PLACEHOLDERS = ("config", "seed", "declared_seed", "budget", "log", "manifest", "host")
_BUDGET = re.compile(BUDGET_PATTERN)

Name = Annotated[str, Field(pattern=SIMPLE_NAME)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def budget_seconds(value: Any) -> float:
    """Budget strings `90s`, `2m`, `12h` or plain seconds -> seconds (ValueError if not > 0)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be like '90s', '2m' or '12h', not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _BUDGET.match(str(value))
        if not match:
            raise ValueError(f"must be like '90s', '2m' or '12h', not {value!r}")
        seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"must be positive, not {value!r}")
    return seconds


class Table(BaseModel):
    """A TOML table: unknown keys are refused, values keep the type they were written with."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)


class CommandRunner(Table):
    """Your own training command (a foreign runner)."""

    command: str = Field(
        description="Shell command run once per run, in the directory `ledger` runs in. "
        "Placeholders: {config} (a JSON file of the condition's config; required), {seed} "
        "(the effective seed, in [0, 2**32-1]), {declared_seed}, {budget} (seconds), "
        "{log} (where a jsonl log goes), {manifest} (the manifest id), {host}. Any other "
        "placeholder is refused when the campaign loads."
    )
    format: Literal["autoresearch", "jsonl"] = Field(
        "autoresearch",
        description="How the run's output is read: `jsonl` (the command writes the raw-log "
        "schema to {log}: header, step, eval, summary lines) or `autoresearch` (its stdout "
        "is kept and its final `---` summary block is read; no header, so its logs are "
        "bound by their status evidence only).",
    )
    keys: list[str] | None = Field(
        None,
        min_length=1,
        description="The config keys your script accepts: every [base], factor and "
        "condition key outside this list is refused at load and at freeze.",
    )
    config_schema: str | None = Field(
        None,
        description="Path (relative to where `ledger` runs) of a JSON Schema of the config "
        "object: keys outside its `properties` are refused at load, and every condition's "
        "config is validated against it at freeze; its SHA-256 is frozen in the manifest.",
    )

    @model_validator(mode="after")
    def _one_key_source(self) -> CommandRunner:
        if self.keys is not None and self.config_schema is not None:
            raise ValueError("give keys or config_schema, not both")
        return self


class AdapterRunner(Table):
    """An autoresearch-shaped script run unchanged: module constants overridden per run."""

    adapter: Literal["autoresearch"] = Field(
        description="The adapter: `autoresearch` runs a script whose hyperparameters are "
        "module-level constants (no flags), prints autoresearch's `---` summary block, and "
        "reads its budget from `TIME_BUDGET`.",
    )
    script: str = Field(
        description="The training script (relative to where `ledger` runs). It is never "
        "edited: each run executes its source with the constants replaced; its SHA-256 is "
        "frozen in the manifest and written in each log's header.",
    )
    constants: dict[str, Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] | None = Field(
        None,
        description="Config key -> module constant, where the constant is not the key "
        "in upper case (the default: `matrix_lr` sets `MATRIX_LR`).",
    )
    python: str | None = Field(
        None,
        description="Python interpreter that runs the script (e.g. the script's own "
        "virtual environment); default: the interpreter running `ledger`.",
    )


def _runner_kind(value: Any) -> str:
    return "adapter" if isinstance(value, dict) and "adapter" in value else "command"


Runner = Annotated[
    Annotated[CommandRunner, Tag("command")] | Annotated[AdapterRunner, Tag("adapter")],
    Discriminator(_runner_kind),
]


class CampaignTable(Table):
    """`[campaign]`: what the campaign is called, its metric, its data and its runner."""

    name: str = Field(
        min_length=1,
        pattern=r"\S",
        description="The campaign's name (manifests, reports and the store group by it).",
    )
    metric: Literal[METRICS] = Field(  # type: ignore[valid-type]
        "val_bpb",
        description="The metric gates minimise, one the runner reports.",
    )
    description: str | None = Field(None, description="Free text shown in reports.")
    data: str | None = Field(
        None,
        description="Training data of the builtin runner (file or folder, relative to where "
        "`ledger` runs); its hash is frozen in each manifest. Default: data/corpus.",
    )
    runner: Runner | None = Field(
        None,
        description="Your own training script instead of the builtin runner: a command "
        "table `{ command = ..., format = ... }` or an adapter table "
        '`{ adapter = "autoresearch", script = ... }`. Absent: the builtin runner.',
    )


class FactorTable(Table):
    """One `[factors]` entry: a config key screened at two levels."""

    key: str = Field(min_length=1, description="The config key this factor varies.")
    levels: list[Any] = Field(
        min_length=2,
        max_length=2,
        description="[low, high]: two different values, coded -1 and +1.",
    )

    @field_validator("levels")
    @classmethod
    def _two_levels(cls, value: list[Any]) -> list[Any]:
        if value[0] == value[1]:
            raise ValueError(f"must be two different values, not {value!r}")
        return value


class StageTable(Table):
    """One `[[stages]]` entry: a budget, candidates, cells (seeds x hosts) and a gate rule."""

    name: Name = Field(description="The stage's name, like `screen-2m` (letters, digits, ._-).")
    budget: Annotated[
        Any,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "pattern": BUDGET_PATTERN},
                    {"type": "number", "exclusiveMinimum": 0},
                ]
            }
        ),
    ] = Field(description="Training time per run: `90s`, `2m`, `12h`, or seconds.")
    design: Literal["full", "fractional"] | None = Field(
        None,
        description="Candidates from a two-level design of [factors]: `full` (2^k) or "
        "`fractional` (2^(k-p), needs runs or generators).",
    )
    generators: list[str] | None = Field(
        None, description='Generators of a fractional design, like `["E=ABCD"]`.'
    )
    runs: int | None = Field(
        None,
        ge=2,
        description="Runs of a fractional design (a power of two); without generators the "
        "minimum-aberration design of that size.",
    )
    seeds: list[int] = Field(
        [0], min_length=1, description="Declared seeds: each is one replicate per host."
    )
    hosts: list[Name] = Field(
        ["local"], min_length=1, description="Host names; each host runs its own block."
    )
    rule: Rule = Field(
        default_factory=Rule,
        description="The gate rule, frozen before the runs (absent: an empty rule, which "
        "promotes nothing by ranking).",
    )
    checks: list[Check] = Field(
        [], description="Recorded yes/no verdicts `{ name, a, b, within }`."
    )
    from_: str | None = Field(
        None,
        alias="from",
        description="An earlier stage: its promoted conditions are candidates here.",
    )
    add: list[str] = Field([], description="Named conditions added to the candidates.")
    gpus: int = Field(1, ge=1, description="GPUs per run (GPU-hours = seconds x gpus / 3600).")
    max_attempts: int = Field(
        1,
        ge=1,
        description="Attempts each run may have, interrupted ones included (Ctrl-C, a "
        "killed run, a refused log); `ledger run` starts no more, the audit fails more.",
    )

    @field_validator("budget")
    @classmethod
    def _budget(cls, value: Any) -> Any:
        budget_seconds(value)  # ValueError: the loader names stages[i].budget
        return value

    @field_validator("runs")
    @classmethod
    def _power_of_two(cls, value: int | None) -> int | None:
        if value is not None and value & (value - 1):
            raise ValueError(f"must be a power of two >= 2, not {value}")
        return value

    @field_validator("seeds", "hosts")
    @classmethod
    def _distinct(cls, value: list[Any]) -> list[Any]:
        if len(set(value)) != len(value):
            raise ValueError(f"has duplicates: {value!r}")
        return value


class SimTable(Table):
    """`[sim]`: the synthetic surface `--executor sim` draws from (stages/surface.py)."""

    intercept: float = Field(SIM_DEFAULTS["intercept"], description="val_bpb at ref_budget.")
    ref_budget: float = Field(
        SIM_DEFAULTS["ref_budget"], gt=0, description="Reference budget in seconds."
    )
    budget_gain: float = Field(
        SIM_DEFAULTS["budget_gain"], description="val_bpb gained per e-fold of budget."
    )
    effects: dict[str, float] = Field(
        {}, description="Main effects by factor letter (mean(+) - mean(-))."
    )
    interactions: dict[str, float] = Field({}, description="Interaction effects, like AB.")
    penalties: dict[str, float] = Field(
        {}, description="Effects by letter that shrink as the budget grows."
    )
    penalty_decay: float = Field(
        SIM_DEFAULTS["penalty_decay"], description="Exponent of (ref_budget / budget)."
    )
    hosts: dict[str, float] = Field({}, description="Offset added on each host.")
    noise: float = Field(SIM_DEFAULTS["noise"], ge=0, description="Noise sd per run.")
    diverge: list[str] = Field([], description="Condition names that diverge in every run.")
    overhead_s: float = Field(
        SIM_DEFAULTS["overhead_s"], ge=0, description="Wall seconds beyond training per run."
    )
    tokens_per_s: float = Field(
        SIM_DEFAULTS["tokens_per_s"], gt=0, description="Throughput written in the logs."
    )


class CampaignFile(Table):
    """A whole campaign file (DESIGN §6)."""

    campaign: CampaignTable = Field(description="Name, metric, data and runner.")
    base: dict[str, Any] = Field(
        {}, description="Runner config shared by every condition: `key = value`."
    )
    factors: dict[Annotated[str, Field(pattern=r"^[A-H]$")], FactorTable] = Field(
        {},
        description="Factors named A, B, C, ... (in order, up to H): "
        "`A = { key = ..., levels = [low, high] }`.",
        json_schema_extra={"additionalProperties": False},
    )
    conditions: dict[str, dict[str, Any]] = Field(
        {},
        description="Named conditions: `name = { key = value, A = 1, ... }` (config "
        "overrides of [base]; a factor letter takes a coded level -1 or 1).",
    )
    stages: list[StageTable] = Field(
        min_length=1, description="The stages, in protocol order (`[[stages]]`)."
    )
    sim: SimTable | None = Field(None, description="The simulator's planted surface.")


__all__ = [
    "AdapterRunner",
    "CampaignFile",
    "CampaignTable",
    "CommandRunner",
    "FactorTable",
    "PLACEHOLDERS",
    "SimTable",
    "StageTable",
    "budget_seconds",
]
