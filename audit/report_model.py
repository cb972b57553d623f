"""The report as one typed document: what every surface of a report shows.

Why one model: `ledger report html` (HTML and Markdown, through two templates), `ledger
report costs|effects --json`, `metrics.json` and the DVC plot files must show the same
numbers. They are all views of this model, validated once where it is built
(`audit.report_data`); renderers read attributes and never re-check the shape.

Every model forbids unknown fields and is frozen. Values that come from signed documents
(a frozen rule, a decision's statistics) are copied field by field into these views; the
rule is kept as its pretty JSON, which is all a reader is shown of it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Level = int | float | str | bool | None


class View(BaseModel):
    """Base of every report model: unknown fields are an error, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- the campaign


class Factor(View):
    key: str
    levels: list[Level]


class CampaignInfo(View):
    name: str
    metric: str
    factors: dict[str, Factor]


# --------------------------------------------------------------------------- the audit


class KeyView(View):
    key_id: str
    name: str


class SignerView(View):
    key_id: str
    name: str
    signed: int
    demo: bool


class CaveatView(View):
    kind: str
    text: str


class Check(View):
    name: str
    ok: bool
    detail: str = ""


class ProblemLine(View):
    """A problem as a report lists it: the cause, then what follows from it."""

    text: str
    related: list[str] = []
    consequences: list[str] = []


class AuditView(View):
    """The verdict and what it rests on: problems by cause, checks, caveats, and the trust
    roots and anchors the evidence was checked against."""

    verdict: Literal["clean", "problems", "empty"]
    problems: list[ProblemLine]
    n_problems: int
    checks: list[Check]
    caveats: list[CaveatView]
    trust: Literal["store", "reviewer"]
    trusted: list[KeyView]
    anchors_given: list[str]
    source: str  # the store or bundle the audit read

    def has_caveat(self, *kinds: str) -> bool:
        return any(c.kind in kinds for c in self.caveats)


class Facts(View):
    runs: int
    simulated_runs: int
    signers: list[SignerView]
    demo_key: bool
    anchors: int
    trust: str
    notes: list[str]
    binding: str | None = None  # the least bound stage's logs: builtin, header, status-only


class Provenance(View):
    """Counts of where the evidence came from: manifests (runner, data) and runs (the raw
    logs' headers, hosts); and the versions that wrote this report."""

    runner: dict[str, int]
    data_sha256: dict[str, int]
    torch: dict[str, int]
    devices: dict[str, int]
    log_runners: dict[str, int]
    hosts: dict[str, int]
    report_tools: dict[str, str | None]


# --------------------------------------------------------------------------- a gate


class ConditionView(View):
    condition: str
    name: str
    n: int
    n_runs: int | None = None
    mean: float | None
    sd: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    rank: int | None
    wins: int | None = None
    promoted: bool
    promoted_by: Literal["rule", "keep"] | None = None
    levels: dict[str, Level] = {}
    origin: str | None = None
    gate_rank: int | None = None
    excluded: str | None = None


class EffectRow(View):
    term: str
    effect: float
    se: float | None = None
    p: float | None = None
    q: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    aliases: list[str] = []


class Effects(View):
    method: str
    effects: list[EffectRow]
    pse: float | None = None
    me: float | None = None
    sme: float | None = None
    df_resid: float | None = None
    t_df: float | None = None
    post_selection: bool = False
    dropped: list[str] = []
    dropped_reasons: dict[str, str] = {}
    notes: list[str] = []
    block: str | None = None


class AnalysisView(View):
    """The frozen analysis plan as read: what was fixed before the runs."""

    design: str | None = None
    structure: str | None = None
    points: int = 0
    terms: list[str] = []
    method: str | None = None
    block: str | None = None
    post_selection: bool = False


class LevelFailures(View):
    failed: int
    runs: int


class FactorFailures(View):
    key: str | None
    low: LevelFailures
    high: LevelFailures
    p: float | None
    unequal: bool


class FailureRates(View):
    n_failed: int
    n_runs: int
    factors: dict[str, FactorFailures]


class FailedRun(View):
    condition: str
    seed: int | None
    host: str | None
    status: str
    reason: str


class Flag(View):
    stage: str
    kind: str
    detail: str


class Excluded(View):
    condition: str
    reason: str


class CheckVerdict(View):
    name: str
    passed: bool
    detail: str = ""


class Cell(View):
    seed: int | str
    host: str


class StageView(View):
    """One gate as the report shows it (protocol order)."""

    name: str
    from_stage: str | None = Field(default=None, alias="from")
    budget_s: float
    manifest: str
    decision: str | None
    frozen_at: str | None = None
    decided_at: str | None = None
    rule_json: str  # the frozen rule, pretty JSON
    keep: list[str] = []  # names the rule always carries (anchors)
    cells: list[Cell]
    n_runs: int
    statuses: dict[str, int]
    failures: list[FailedRun] = []
    executed_gpu_hours: float = 0.0
    conditions: list[ConditionView]
    effects: Effects | None = None
    effects_note: str | None = None
    analysis: AnalysisView = AnalysisView()
    failure_rates: FailureRates | None = None
    flags: list[Flag] = []
    excluded: list[Excluded] = []
    significant: list[str] = []
    promoted: list[str] = []  # names
    trace: list[str] = []
    verdicts: list[CheckVerdict] = []
    candidates: list[str] = []  # condition ids
    promoted_ids: list[str] = []
    gpus: int = 1


class RankRow(View):
    from_stage: str = Field(alias="from")
    to_stage: str = Field(alias="to")
    rho: float | None
    n: int
    flag: str | None = None


class VarianceShares(View):
    n: int
    components: list[str]  # those fitted (more than one level), in the order attributed
    shares: dict[str, float | None]


class Variance(View):
    campaign: VarianceShares | None
    campaigns: dict[str, VarianceShares | None] = {}
    by_stage: dict[str, VarianceShares | None]


# --------------------------------------------------------------------------- the verdict


class Side(View):
    name: str
    condition: str
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    promoted: bool
    stage: str  # where this mean was measured


class Verdict(View):
    """Who the final gate put first, against its closest competitor where the two were
    last measured together (not an always-kept anchor), and whether they are separated."""

    sentence: str
    stage: str | None
    winner: Side | None
    runner_up: Side | None  # the closest competitor (an anchor only when there is no other)
    anchor: Side | None = None  # an always-carried anchor at the final gate, for scale
    margin: float | None
    separated: bool | None
    flags: list[str]


# --------------------------------------------------------------------------- costs


class CostPart(View):
    n_runs: int
    training_gpu_hours: float
    wall_gpu_hours: float


class ConditionCost(CostPart):
    name: str


class SumCheck(View):
    name: str
    ok: bool
    difference: float


class CostBreakdown(View):
    """GPU-hours by stage, host, condition and status (DESIGN §8), with the sum checks.
    Tables are in a reader's order: stages in protocol order, conditions by name."""

    n_runs: int
    training_gpu_hours: float
    wall_gpu_hours: float
    by_stage: dict[str, CostPart]
    by_host: dict[str, CostPart]
    by_condition: dict[str, ConditionCost]
    by_status: dict[str, CostPart]
    checks: list[SumCheck]


class Counterfactual(View):
    """What continuing every candidate of one gate would have cost: at the next stage, at
    the final stage, and over the whole campaign (numbers only; sentences in CostText)."""

    gate: str
    next: str
    final: str
    lineage: list[str]
    n_candidates: int
    n_promoted: int
    executed_gpu_hours: float
    next_if_all: float
    next_planned: float
    final_if_all: float
    final_planned: float
    protocol_remaining: float
    campaign_if_all: float  # the campaign's total had this gate continued everything
    saved_gpu_hours: float  # campaign_if_all - the protocol's total


class CampaignCosts(View):
    """The protocol's total beside each gate's counterfactual total."""

    protocol_gpu_hours: float  # executed, every protocol stage
    planned_gpu_hours: float  # nominal: candidates x cells x budget x gpus, summed
    root: str | None  # the first gate a later stage continues: the headline's
    saved_gpu_hours: float | None  # the root's counterfactual total - protocol_gpu_hours


class CostText(View):
    """The sentences of the costs view, apart from its numbers."""

    saved: str | None
    campaign: str
    counterfactuals: list[str]


class CostReport(View):
    """`ledger report costs --json`: numbers, and the sentences under `text`."""

    campaign_name: str
    costs: CostBreakdown
    baseline_costs: CostBreakdown | None
    unplanned_costs: CostBreakdown | None
    # attempts that ended without a run record (killed, refused): never in any total above
    interrupted_costs: CostBreakdown | None = None
    all_costs: CostBreakdown
    counterfactuals: list[Counterfactual]
    campaign: CampaignCosts
    text: CostText


# --------------------------------------------------------------------------- extras


class TableView(View):
    """A section built elsewhere as plain-text cells (comparison, evaluation)."""

    title: str
    intro: str
    headers: list[str]
    rows: list[list[str]]
    items: list[str] = []
    figure: str  # the PNG file name


# --------------------------------------------------------------------------- the report


class ReportData(View):
    campaign: CampaignInfo
    generated_at: str
    tool_version: str
    audit: AuditView
    facts: Facts
    provenance: Provenance
    verdict: Verdict
    stages: list[StageView]
    rank_stability: list[RankRow]
    variance: Variance | None
    flags: list[Flag]
    cost_report: CostReport
    comparison: TableView | None = None
    evaluation: TableView | None = None

    def final_stage(self) -> StageView | None:
        """The last decided gate (the one the verdict reads)."""
        return next((s for s in reversed(self.stages) if s.conditions), None)


class EffectsStage(View):
    stage: str
    budget_s: float
    analysis: AnalysisView
    effects: Effects | None
    effects_note: str | None
    significant: list[str]
    failure_rates: FailureRates | None


class EffectsReport(View):
    """`ledger report effects --json`."""

    stages: list[EffectsStage]
    variance: Variance | None
    rank_stability: list[RankRow]
    flags: list[Flag]


class Headline(View):
    """`metrics.json` (`dvc metrics show`): the numbers a budget holder looks at first."""

    best_condition: str | None
    best_val_bpb: float | None
    best_ci_low: float | None
    best_ci_high: float | None
    runner_up: str | None
    margin_to_runner_up: float | None
    separated_from_runner_up: bool | None
    final_stage: str | None
    training_gpu_hours: float
    wall_gpu_hours: float
    baseline_gpu_hours: float
    gpu_hours_saved_vs_all: float | None
    audit_clean: bool
    problems: int
    flags: int
    runs: int
    simulated_runs: int
    demo_key: bool
    anchors: int
    trust: str
    binding: str | None  # the least bound stage's logs: builtin, header or status-only
    caveats: str  # the caveats' kinds, comma-separated ("none"): `dvc metrics show` shows text


__all__ = [
    "AnalysisView",
    "AuditView",
    "CampaignCosts",
    "CampaignInfo",
    "CaveatView",
    "Cell",
    "Check",
    "CheckVerdict",
    "ConditionCost",
    "ConditionView",
    "CostBreakdown",
    "CostPart",
    "CostReport",
    "CostText",
    "Counterfactual",
    "EffectRow",
    "Effects",
    "EffectsReport",
    "EffectsStage",
    "Excluded",
    "Facts",
    "FailedRun",
    "FailureRates",
    "Flag",
    "Headline",
    "KeyView",
    "ProblemLine",
    "Provenance",
    "RankRow",
    "ReportData",
    "Side",
    "SignerView",
    "StageView",
    "SumCheck",
    "TableView",
    "Variance",
    "VarianceShares",
    "Verdict",
]
