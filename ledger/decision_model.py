"""The body of a signed decision: which runs a gate judged, its statistics, its outcome.

Why a model: reports, the audit, the next stage's freeze and `ledger runs` all read
decisions; each reads attributes of this view instead of guessing keys. The bytes the gate
signed stay as they are and are never re-serialised from this model (ledger/document.py):
the audit re-derives a `DecisionBody` and compares it with the signed one field by field
(audit/gates.py), the signature having been checked on the bytes. The statistics are
computed by stages/stats.py and stages/rules.py; these classes are their stored shape.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ledger.document import Document
from ledger.plan_model import AnyRule, PlannedCondition

Number = int | float


class FailedRun(Document):
    """A run that gave no value: its cell and what its status was."""

    seed: Any  # the record's declared seed, shown as it was recorded
    host: Any
    status: str | None


class ConditionStats(Document):
    """One condition at a gate: n, mean, sd, 95% t interval, rank, cells, wins, by host."""

    condition: str
    n: int
    n_runs: int
    n_failed: int
    failed: list[FailedRun]
    n_cells: int
    mean: Number | None
    sd: Number | None
    ci_low: Number | None
    ci_high: Number | None
    rank: int | None
    n_cells_expected: int
    complete: bool
    wins: int
    ranks_per_cell: dict[str, int]
    by_host: dict[str, Number | None]


class EffectStats(Document):
    """One model term: effect (= 2 x coef), se, t, p, BH q, 95% interval, alias chain."""

    term: str
    effect: Number | None
    coef: Number | None
    se: Number | None
    t: Number | None
    p: Number | None
    q: Number | None
    ci_low: Number | None
    ci_high: Number | None
    aliases: list[str]


class EffectsTable(Document):
    """The effect model a gate fitted: its terms, method (OLS or Lenth), dfs and notes."""

    effects: list[EffectStats]
    method: str | None
    df_resid: Number | None
    t_df: Number | None
    n: int
    n_points: int
    pse: Number | None
    me: Number | None
    sme: Number | None
    block: str | None
    dropped: list[str]
    dropped_reasons: dict[str, str]
    post_selection: bool
    notes: list[str]

    def term(self, name: str) -> EffectStats | None:
        return next((e for e in self.effects if e.term == name), None)


class LevelFailures(Document):
    """Runs and failures of the design points at one level of a factor."""

    runs: int
    failed: int
    rate: Number | None


class FactorFailures(Document):
    """A factor's failure rate at each level, and Fisher's exact test between them."""

    key: str | None
    low: LevelFailures
    high: LevelFailures
    p: Number | None
    unequal: bool


class Failures(Document):
    """How the design points' failed runs fall across each factor's levels."""

    n_runs: int
    n_failed: int
    factors: dict[str, FactorFailures]
    flagged: list[str]


class Flag(Document):
    """What a reviewer must not miss at a gate (winner overlapping the runner-up...)."""

    kind: str
    detail: str


class Statistics(Document):
    """A gate's statistics: per condition, the effect model (or why none), failures, flags."""

    conditions: list[ConditionStats]
    effects: EffectsTable | None
    effects_note: str | None
    failures: Failures | None = None
    flags: list[Flag] = []

    def of(self, condition: str) -> ConditionStats | None:
        return next((c for c in self.conditions if c.condition == condition), None)


class Verdict(Document):
    """A recorded yes/no check (or `max_gap` verdict): it never changes the promotion."""

    name: str
    passed: bool = Field(alias="pass")
    detail: str


class Exclusion(Document):
    """A condition the gate could not rank, and why."""

    condition: str
    name: str | None
    reason: str
    failed: list[FailedRun]


class NewPoint(Document):
    """A point of the reduced factorial that no run has yet (`reduce`)."""

    name: str
    coded: dict[str, int]


class Outcome(Document):
    """What the rule gave: promoted ids, reduced-space points, exclusions, significant
    factors, verdicts, the trace, the best and the ranking (a baseline step: the best mean)."""

    promoted: list[str]
    new_points: list[NewPoint] = []
    excluded: list[Exclusion] = []
    significant: list[str] = []
    verdicts: list[Verdict] = []
    trace: list[str] = []
    best: str | None = None
    ranking: list[str] = []
    best_mean: Number | None = None


class DecisionBody(Document):
    """What the frozen rule gives on a manifest's runs: the manifest and the run records it
    judged (missing and extra runs named), its statistics and rule, what it promoted (with
    their configs, so the next stage can freeze them), the trace and verdicts. The audit
    re-derives one of these and compares it with the signed `Decision`, field by field."""

    campaign: str
    stage: str
    manifest: str
    budget_s: Number
    runs: list[str]
    missing: list[str]
    extra: list[str]
    statistics: Statistics
    rule: AnyRule
    outcome: Outcome
    promoted: list[str]
    conditions: dict[str, PlannedCondition]
    trace: list[str]
    verdicts: list[Verdict]

    def name(self, condition: str) -> str:
        """A promoted condition's name (its id when the decision does not carry it)."""
        info = self.conditions.get(condition)
        return info.name if info is not None else condition


class Decision(DecisionBody):
    """A signed decision's body: what the rule gave, when and by which key."""

    decided_at: str
    decider: str


__all__ = [
    "ConditionStats",
    "Decision",
    "DecisionBody",
    "EffectStats",
    "EffectsTable",
    "Exclusion",
    "FactorFailures",
    "FailedRun",
    "Failures",
    "Flag",
    "LevelFailures",
    "NewPoint",
    "Outcome",
    "Statistics",
    "Verdict",
]
