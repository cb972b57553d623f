"""The plan a manifest signs: run list, conditions, rule, analysis plan, runner, seeds.

Why a model: a plan is signed before any run and then read by every later step (run,
ingest, decide, the audit, the reports), so its keys are a contract. `Plan` is what
`ledger freeze --plan` accepts (the keys a plan must and may have, each typed); `Manifest`
is a stored manifest's body: the plan plus what freezing adds (`frozen_at`, `freezer`,
`amends`). Both are views over the signed JSON: a manifest is never re-serialised from its
model (ledger/document.py). The rule vocabulary (`Rule`, `BaselineRule`) lives here too, as
the shape frozen in every manifest: the campaign file's `[[stages]].rule` table is the same
model (stages/campaign_model.py), and the method's meaning of it is stages/rules.py.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from ledger.document import Document
from ledger.run_key import Cell, RunKey

NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
FAILED_POLICIES = ("exclude", "worst", "ignore")


class MaxGap(Document):
    """`rule.max_gap`: promote a named condition if its mean is close enough to the best."""

    condition: str = Field(description="The condition's name.")
    gap: NonNegative = Field(description="Largest mean gap to the best mean that promotes it.")


class Rule(Document):
    """A gate's rule: which conditions it promotes (docs/statistics.md, Gate rules)."""

    top_k: int | None = Field(
        None, ge=1, description="Promote the first k of the ranking (by mean, ties by id)."
    )
    within: NonNegative | None = Field(
        None,
        description="Promote conditions whose mean is at most this above the best mean "
        "(with top_k: the first k of those).",
    )
    keep: list[str] | None = Field(
        None, description="Conditions always carried, with or without data (anchors)."
    )
    wins_all_cells: bool | None = Field(
        None, description="Also promote conditions that rank first in every planned cell."
    )
    max_gap: MaxGap | None = Field(
        None, description="`{ condition = NAME, gap = X }`: promote NAME iff mean - best <= X."
    )
    fdr: float | None = Field(
        None,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="Benjamini-Hochberg level over this budget's main effects (needs an "
        "orthogonal design: the stage's own, or a factorial its parent made).",
    )
    reduce: bool | None = Field(
        None,
        description="Fix BH-significant factors at their better level and promote the full "
        "factorial of the rest instead of the ranking (needs fdr).",
    )
    min_cells: int | None = Field(
        None, ge=1, description="A condition with fewer ok cells is excluded, and said so."
    )
    failed: Literal[FAILED_POLICIES] | None = Field(  # type: ignore[valid-type]
        None,
        description="Conditions with a non-ok run: `exclude` (default: not eligible), "
        "`worst` (ranked after the rest) or `ignore` (ranked on their ok runs).",
    )

    @model_validator(mode="after")
    def _reduce_needs_fdr(self) -> Rule:
        if self.reduce and self.fdr is None:
            raise ValueError("reduce requires fdr (the BH level that picks factors)")
        return self

    @property
    def policy(self) -> str:
        """What the gate does with a condition that has failed runs (default `exclude`)."""
        return self.failed or "exclude"


class BaselineRule(Document):
    """The rule of a baseline step (stages/baselines.py): greedy keeps a flip that beats the
    incumbent's mean, random promotes the best of its sample."""

    baseline: Literal["greedy", "random"]
    incumbent: str | None = None
    incumbent_mean: float | None = None
    top_k: int | None = None


def _rule_kind(value: Any) -> str:
    """A rule naming a `baseline` is a baseline step's; any other is a gate's. (Tags are
    class names: ledger.document leaves them out of the keys it names.) A model is tagged
    by its class, so dumping one picks its own serializer."""
    baseline = isinstance(value, BaselineRule) or (isinstance(value, dict) and "baseline" in value)
    return "BaselineRule" if baseline else "Rule"


AnyRule = Annotated[
    Annotated[Rule, Tag("Rule")] | Annotated[BaselineRule, Tag("BaselineRule")],
    Discriminator(_rule_kind),
]


class Check(Document):
    """A recorded yes/no verdict at a gate; it never changes what is promoted."""

    name: str = Field(description="The verdict's name.")
    a: str = Field(description="A condition name, or `best` (the gate's rank-1 condition).")
    b: str = Field(description="A condition name, or `best`.")
    within: NonNegative = Field(description="Pass iff |mean(a) - mean(b)| <= within.")


class PlannedRun(Document):
    """One declared run: a condition (id) in a cell (declared seed, host)."""

    condition: str = Field(min_length=1, pattern=r"^[^/]+$")
    seed: int
    host: str = Field(min_length=1, pattern=r"^[^/]+$")

    @property
    def key(self) -> RunKey:
        return RunKey(self.condition, self.seed, self.host)


class PlannedCondition(Document):
    """A candidate: its name, runner config, coded factor levels, where it came from, and
    (builtin runner) the config resolved with the runner's defaults written out."""

    name: str
    config: dict[str, Any]
    coded: dict[str, int | float | None] = {}
    origin: str | None = None
    runner_config: dict[str, Any] | None = None

    @property
    def run_config(self) -> dict[str, Any]:
        """The config a run's header must carry: the resolved one, else the condition's."""
        return self.runner_config or self.config


class FactorSpec(Document):
    """A factor as the analysis plan freezes it: its config key and its two levels."""

    key: str
    levels: list[Any]


class DesignInfo(Document):
    """The stage's two-level design, as frozen: label, generators, defining relation."""

    label: str
    generators: list[str]
    defining_relation: list[str]
    resolution: int | None


class PointStructure(Document):
    """What the effect set's points are: which factors vary, whether they form a regular
    fraction, its defining relation and resolution (stages/designs.py `point_structure`)."""

    label: str
    varying: list[str]
    constant: dict[str, int]
    n_points: int
    regular: bool
    defining_relation: list[str]
    resolution: int | None


class AnalysisPlan(Document):
    """The analysis `decide` and the audit carry out, frozen with the rule
    (docs/statistics.md): the metric, the effect set (design points by condition id), the
    terms and how the error is estimated."""

    metric: str = "val_bpb"
    factors: dict[str, FactorSpec] = {}
    design: DesignInfo | None = None
    points: dict[str, str] | None = None  # None: frozen before the plan named its points
    block: str | None = None
    replicates: str | None = None
    fdr: float | None = None
    structure: PointStructure | None = None
    terms: list[str] | Literal["main", "all"] = []  # words, or every main effect / term
    method: str | None = None
    post_selection: bool = False
    dropped: list[str] = []
    dropped_reasons: dict[str, str] = {}


class RunnerIdentity(Document):
    """Which trainer the plan commits to: the builtin runner (version, code hash), a
    campaign's command (its log format, declared keys or config schema), or an adapted
    script (its SHA-256 and constants)."""

    kind: str
    version: str | None = None
    code_sha256: str | None = None
    command: str | None = None
    format: str | None = None
    keys: list[str] | None = None
    config_schema: str | None = None
    config_schema_sha256: str | None = None
    adapter: str | None = None
    script: str | None = None
    script_sha256: str | None = None
    constants: dict[str, str] | None = None
    python: str | None = None


class SeedPlan(Document):
    """How each run's effective seed is derived from the manifest id (ledger/seeds.py)."""

    rule: str


class Plan(Document):
    """What `freeze` signs: one stage's exact run list and everything that judges it."""

    campaign: str = Field(min_length=1)
    stage: str = Field(min_length=1)
    budget_s: int | float = Field(description="Training seconds per run (> 0).")
    runs: list[PlannedRun] = Field(min_length=1)
    conditions: dict[str, PlannedCondition] = Field(min_length=1)
    rule: AnyRule
    analysis: AnalysisPlan
    runner: RunnerIdentity
    data_sha256: str | None
    parent: str | None
    gpus: int = Field(1, ge=1)
    cells: list[Cell] | None = Field(None, strict=False)
    checks: list[Check] = []
    parent_stage: str | None = None
    spec: dict[str, Any] = {}  # the campaign file's part it froze, as written (compared)
    seeds: SeedPlan | None = None
    max_attempts: int | None = Field(None, ge=1)

    @field_validator("budget_s")
    @classmethod
    def _budget_positive(cls, value: int | float) -> int | float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"must be a number > 0, not {value!r}")
        return value

    @property
    def keys(self) -> list[RunKey]:
        """The declared runs, in the plan's order."""
        return [r.key for r in self.runs]

    @property
    def metric(self) -> str:
        return self.analysis.metric

    @property
    def is_baseline(self) -> bool:
        return isinstance(self.rule, BaselineRule)


class Manifest(Plan):
    """A stored manifest's body: the plan, when it was frozen, by which key, and the
    manifest it amends (None for a first freeze)."""

    frozen_at: str
    freezer: str
    amends: str | None
    records: str | None = None


__all__ = [
    "AnalysisPlan",
    "AnyRule",
    "BaselineRule",
    "Check",
    "DesignInfo",
    "FAILED_POLICIES",
    "FactorSpec",
    "Manifest",
    "MaxGap",
    "Plan",
    "PlannedCondition",
    "PlannedRun",
    "PointStructure",
    "Rule",
    "RunnerIdentity",
    "SeedPlan",
]
