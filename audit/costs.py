"""GPU-hour accounting and counterfactuals (DESIGN §8, a contract).

Why pure functions over small typed values (`CostRow` and `StagePlan` in; the report's
`CostBreakdown` and `Counterfactual` out): `ledger audit`, `ledger report costs` and the HTML
report must show the same numbers, and a reviewer must be able to redo them by hand. Sums
use `math.fsum` so that "the parts add up to the total" is a check, not a rounding accident.

Definitions: training GPU-hours = sum(training_seconds x gpus) / 3600; wall GPU-hours uses
wall_seconds. Failed runs (diverged, crashed, timeout) count for the seconds they used.

Where each input comes from (docs/threat-model.md, "Provenance"): `training_seconds` from the
raw log as parsed under the manifest's runner kind; `gpus` from the manifest; `wall_seconds`
from the journal (the run's journaled start to its record; the simulator's own figure for
simulated runs, the log's total for unplanned compute, which has no journaled start);
the stage a run is booked under is its manifest's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audit.report_model import ConditionCost, CostBreakdown, CostPart, Counterfactual, SumCheck
from ledger.errors import InputError
from ledger.plan_model import Plan

if TYPE_CHECKING:
    from audit.runs import ObservedRun

STATUSES = ("ok", "diverged", "crashed", "timeout")
# an attempt that ended without a run record (`ledger.attempts`): its own cost heading
ATTEMPT_STATUSES = (*STATUSES, "interrupted")
BREAKDOWNS = ("stage", "host", "condition", "status")
REL_TOL = 1e-9


@dataclass(frozen=True)
class CostRow:
    """One run's (or interrupted attempt's) cost input: where it is booked, how it ended,
    its training and wall seconds (finite, >= 0) and its GPUs (>= 1). `name` is the
    condition's name, shown beside its id."""

    stage: str
    condition: str
    name: str
    host: str
    status: str  # one of ATTEMPT_STATUSES
    training_seconds: float
    wall_seconds: float
    gpus: int = 1


def _number(value: Any, where: str, *, minimum: float | None = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}: expected a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out) or (minimum is not None and out < minimum):
        raise InputError(f"{where}: expected a finite number >= {minimum:g}, got {value!r}")
    return out


def _count(value: Any, where: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _part(rows: Sequence[CostRow]) -> CostPart:
    return CostPart(
        n_runs=len(rows),
        training_gpu_hours=math.fsum(r.training_seconds * r.gpus for r in rows) / 3600.0,
        wall_gpu_hours=math.fsum(r.wall_seconds * r.gpus for r in rows) / 3600.0,
    )


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)


def cost_breakdown(rows: Sequence[CostRow]) -> CostBreakdown:
    """Totals and parts by stage, host, condition (with its name) and status, with the
    checks that the parts add up to the totals. Keys of each breakdown are sorted."""
    total = _part(rows)
    parts: dict[str, dict[str, CostPart]] = {}
    names: dict[str, str] = {}
    for field in BREAKDOWNS:
        groups: dict[str, list[CostRow]] = {}
        for row in rows:
            groups.setdefault(getattr(row, field), []).append(row)  # (each breakdown a row field)
        parts[field] = {key: _part(groups[key]) for key in sorted(groups)}
        if field == "condition":
            names = {key: group[0].name for key, group in groups.items()}
    out = CostBreakdown(
        n_runs=total.n_runs,
        training_gpu_hours=total.training_gpu_hours,
        wall_gpu_hours=total.wall_gpu_hours,
        by_stage=parts["stage"],
        by_host=parts["host"],
        by_condition={
            key: ConditionCost(name=names[key], **part.model_dump())
            for key, part in parts["condition"].items()
        },
        by_status=parts["status"],
        checks=[],
    )
    return out.model_copy(update={"checks": partition_checks(out)})


def partition_checks(breakdown: CostBreakdown) -> list[SumCheck]:
    """Do the parts of each breakdown add up to its totals? One check per breakdown.

    Why separate: a breakdown travels (report data, bundles, `--json`); re-checking the one a
    reader holds, not only the one just computed, is what makes the check able to fail.
    """
    checks = []
    by_field: dict[str, Mapping[str, CostPart]] = {
        "stage": breakdown.by_stage,
        "host": breakdown.by_host,
        "condition": breakdown.by_condition,
        "status": breakdown.by_status,
    }
    for field in BREAKDOWNS:
        parts = by_field[field].values()
        sum_train = math.fsum(p.training_gpu_hours for p in parts)
        sum_wall = math.fsum(p.wall_gpu_hours for p in parts)
        ok = (
            sum(p.n_runs for p in parts) == breakdown.n_runs
            and _close(sum_train, breakdown.training_gpu_hours)
            and _close(sum_wall, breakdown.wall_gpu_hours)
        )
        checks.append(
            SumCheck(
                name=f"by_{field} sums to total",
                ok=bool(ok),
                difference=max(
                    abs(sum_train - breakdown.training_gpu_hours),
                    abs(sum_wall - breakdown.wall_gpu_hours),
                ),
            )
        )
    return checks


@dataclass(frozen=True)
class StagePlan:
    """One stage as the counterfactuals read it, in protocol order: its name, the stage it
    continues (`from_stage`, None for an independent screen), budget, cells and GPUs per
    run, its candidates and promoted condition ids, and the GPU-hours it executed."""

    name: str
    budget_s: float
    cells: int
    candidates: Sequence[str]
    promoted: Sequence[str] = ()
    from_stage: str | None = None
    gpus: int = 1
    executed_gpu_hours: float = 0.0


@dataclass(frozen=True)
class CampaignTotals:
    """The protocol's total against its root gate's counterfactual (see `campaign_totals`)."""

    executed_gpu_hours: float
    planned_gpu_hours: float
    root: str | None  # the first gate some later stage continues (None: no gate is)
    all_from_first_gate_gpu_hours: float
    saved_gpu_hours: float | None
    n_candidates: int | None
    lineage: list[str]


def _check_stage(i: int, stage: StagePlan) -> StagePlan:
    """`stage` with every number checked (finite, non-negative; counts >= 1)."""
    for key, value in (("candidates", stage.candidates), ("promoted", stage.promoted)):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise InputError(f"stages[{i}].{key}: expected a list of condition ids")
    return StagePlan(
        name=_text(stage.name, f"stages[{i}].name"),
        from_stage=(
            _text(stage.from_stage, f"stages[{i}].from") if stage.from_stage is not None else None
        ),
        budget_s=_number(stage.budget_s, f"stages[{i}].budget_s"),
        cells=_count(stage.cells, f"stages[{i}].cells"),
        gpus=_count(stage.gpus, f"stages[{i}].gpus"),
        candidates=list(stage.candidates),
        promoted=list(stage.promoted),
        executed_gpu_hours=_number(stage.executed_gpu_hours, f"stages[{i}].executed_gpu_hours"),
    )


def _per_condition(stage: StagePlan) -> float:
    """GPU-hours one condition costs at a stage: cells x budget x gpus."""
    return stage.cells * stage.budget_s * stage.gpus / 3600.0


def _planned(stage: StagePlan) -> float:
    return len(stage.candidates) * _per_condition(stage)


def _fmt(x: float) -> str:
    """One decimal as in "432.0 GPU-hours"; more for the small numbers of CPU demo campaigns."""
    if abs(x) >= 10 or x == 0:
        return f"{x:.1f}"
    return f"{x:.2f}" if abs(x) >= 0.1 else f"{x:.4f}"


def _continuations(plan: list[StagePlan], lineage: bool) -> list[int | None]:
    """For each stage, the index of the stage that continues its candidates (or None).

    With `lineage`: the first later stage whose `from_stage` names it. Without: the first
    later stage whose candidates include the whole promoted set.
    """
    out: list[int | None] = []
    for i, gate in enumerate(plan):
        later = range(i + 1, len(plan))
        if lineage:
            next_stage = next((j for j in later if plan[j].from_stage == gate.name), None)
        else:
            promoted = set(gate.promoted)
            next_stage = next(
                (j for j in later if promoted and promoted <= set(plan[j].candidates)), None
            )
        out.append(next_stage)
    return out


def _lineage(nexts: list[int | None], i: int) -> list[int]:
    """The stages after gate `i` along its continuations, to the end of the lineage."""
    out = []
    j = nexts[i]
    while j is not None and j not in out:
        out.append(j)
        j = nexts[j]
    return out


def _executed(plan: list[StagePlan], total_gpu_hours: float | None) -> float:
    if total_gpu_hours is None:
        return math.fsum(s.executed_gpu_hours for s in plan)
    return _number(total_gpu_hours, "total_gpu_hours")


def counterfactuals(
    stages: Sequence[StagePlan], total_gpu_hours: float | None = None, *, lineage: bool = True
) -> list[Counterfactual]:
    """One entry per gate whose candidates some later stage continues: what continuing every
    candidate would have cost at the next stage, at the final stage, and for the campaign.

    `stages` is in protocol order. "next" is the stage whose `from_stage` names the gate
    (with `lineage=False`, for stages that do not say what they continue: the first later
    stage whose candidates hold the gate's promoted set), "final" the end of that chain; an
    independent screen is nobody's next. Planned costs are nominal (candidates x cells x
    budget x gpus), so they compare like with like against the counterfactual; what was
    actually spent is in `executed_gpu_hours`.

    The campaign figures are the one definition of "saved": `campaign_if_all` is the
    protocol's total (`total_gpu_hours`, default the stages' executed sum) with the gate's
    lineage charged for all its candidates instead of what it executed, and
    `saved_gpu_hours` is that minus the protocol's total.
    """
    plan = [_check_stage(i, s) for i, s in enumerate(stages)]
    nexts = _continuations(plan, lineage)
    total = _executed(plan, total_gpu_hours)
    out = []
    for i, gate in enumerate(plan):
        chain = _lineage(nexts, i)
        if not chain:
            continue
        next_stage, last = plan[chain[0]], plan[chain[-1]]
        k = len(gate.candidates)
        campaign_if_all = math.fsum(
            [
                total,
                *(-plan[j].executed_gpu_hours for j in chain),
                *(k * _per_condition(plan[j]) for j in chain),
            ]
        )
        out.append(
            Counterfactual(
                gate=gate.name,
                next=next_stage.name,
                final=last.name,
                lineage=[plan[j].name for j in chain],
                n_candidates=k,
                n_promoted=len(gate.promoted),
                executed_gpu_hours=gate.executed_gpu_hours,
                next_if_all=k * _per_condition(next_stage),
                next_planned=_planned(next_stage),
                final_if_all=k * _per_condition(last),
                final_planned=_planned(last),
                protocol_remaining=math.fsum(_planned(plan[j]) for j in chain),
                campaign_if_all=campaign_if_all,
                saved_gpu_hours=campaign_if_all - total,
            )
        )
    return out


def campaign_totals(
    stages: Sequence[StagePlan], total_gpu_hours: float | None = None, *, lineage: bool = True
) -> CampaignTotals:
    """The protocol's total against its root gate's counterfactual (the headline "saved").

    The root is the first stage some later stage continues; its counterfactual is
    `counterfactuals(...)`'s `campaign_if_all` (every stage outside the root's lineage as
    executed, each stage of the lineage charged `len(candidates_root) x cells x budget x
    gpus`). `planned_gpu_hours` is the nominal plan. Without a root, nothing was saved.
    """
    plan = [_check_stage(i, s) for i, s in enumerate(stages)]
    executed = _executed(plan, total_gpu_hours)
    root = next(iter(counterfactuals(plan, executed, lineage=lineage)), None)
    return CampaignTotals(
        executed_gpu_hours=executed,
        planned_gpu_hours=math.fsum(_planned(s) for s in plan),
        root=root.gate if root else None,
        all_from_first_gate_gpu_hours=root.campaign_if_all if root else executed,
        saved_gpu_hours=root.saved_gpu_hours if root else None,
        n_candidates=root.n_candidates if root else None,
        lineage=list(root.lineage) if root else [],
    )


# -- the same figures in words (what `report costs` and the report print) -------------------


def counterfactual_sentences(cf: Counterfactual) -> list[str]:
    """A gate's counterfactual in words: at its next stage (when that is not the final),
    at its final stage, and for the whole campaign."""
    k, gate = cf.n_candidates, cf.gate
    out = []
    if cf.next != cf.final:
        out.append(
            f"continuing all {k} candidates of {gate} to {cf.next} would have spent "
            f"{_fmt(cf.next_if_all)} GPU-hours there; the protocol planned "
            f"{_fmt(cf.next_planned)}"
        )
    out.append(
        f"continuing all {k} candidates of {gate} to {cf.final} would have spent "
        f"{_fmt(cf.final_if_all)} GPU-hours there; the protocol planned "
        f"{_fmt(cf.final_planned)}"
    )
    out.append(
        f"continuing all {k} candidates of {gate} through {', '.join(cf.lineage)} would "
        f"have cost the campaign {_fmt(cf.campaign_if_all)} GPU-hours instead of "
        f"{_fmt(cf.campaign_if_all - cf.saved_gpu_hours)}"
    )
    return out


def campaign_sentence(totals: CampaignTotals) -> str:
    """The campaign-level line: the protocol's total and its root gate's counterfactual."""
    spent = f"the protocol spent {_fmt(totals.executed_gpu_hours)} training GPU-hours"
    if totals.root is None:
        return f"{spent}; no gate's candidates are continued by a later stage"
    return (
        f"{spent}; continuing all {totals.n_candidates} candidates of {totals.root} "
        f"through {', '.join(totals.lineage)} would have cost "
        f"{_fmt(totals.all_from_first_gate_gpu_hours)}"
    )


def saved_sentence(totals: CampaignTotals) -> str | None:
    """The headline: GPU-hours saved, by the one definition (`campaign_totals`)."""
    if totals.root is None or totals.saved_gpu_hours is None:
        return None
    return (
        f"Saved {_fmt(totals.saved_gpu_hours)} GPU-hours: continuing all "
        f"{totals.n_candidates} candidates of {totals.root} through "
        f"{', '.join(totals.lineage)} would have cost the campaign "
        f"{_fmt(totals.all_from_first_gate_gpu_hours)} GPU-hours; the protocol spent "
        f"{_fmt(totals.executed_gpu_hours)}."
    )


def cost_row(run: ObservedRun, manifest: Plan | None) -> CostRow:
    """One run's cost input from the run as the audit observed it (`audit.runs.ObservedRun`:
    status and seconds as its raw log supports them, stage and GPUs as its manifest fixes
    them, wall seconds as the journal measured them) and its manifest (for the name).
    Seconds that are not finite non-negative numbers count 0 (the audit reports the run)."""
    condition = run.condition or "?"
    info = manifest.conditions.get(condition) if manifest is not None else None
    return CostRow(
        stage=run.stage or "(unplanned)",
        condition=condition,
        name=(info.name if info is not None else "") or condition[:8],
        host=run.host or "?",
        status=run.status if run.status in STATUSES else "crashed",
        training_seconds=_seconds(run.metrics.training_seconds),
        wall_seconds=_seconds(run.wall_seconds),
        gpus=run.gpus if run.gpus >= 1 else 1,
    )


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) and value >= 0 else 0.0


@dataclass(frozen=True)
class AuditCosts:
    """The GPU-hours the audit counted (DESIGN §8): every run, and apart from each other the
    protocol's runs, the baselines' and unplanned compute; interrupted attempts (no run
    record) under a heading of their own, never in any total.

    Why baselines apart: a baseline is a comparison bought next to the protocol, not part of
    what the protocol cost; counting it in the protocol's totals (and its savings) would make
    the protocol look dearer by exactly what was spent checking it."""

    all: CostBreakdown
    protocol: CostBreakdown
    baselines: CostBreakdown | None
    unplanned: CostBreakdown | None
    interrupted: CostBreakdown | None

    @property
    def parts(self) -> list[CostBreakdown]:
        """The breakdowns whose sums the audit checks: every run's, and the interrupted."""
        return [self.all] + ([self.interrupted] if self.interrupted is not None else [])

    def to_dict(self) -> dict[str, Any]:
        """The audit's `costs` (every run) with the interrupted attempts under `interrupted`."""
        interrupted = self.interrupted.model_dump() if self.interrupted is not None else None
        return {**self.all.model_dump(), "interrupted": interrupted}


def audit_costs(
    runs: Iterable[ObservedRun], manifests: Mapping[str, Plan], interrupted: Sequence[CostRow]
) -> AuditCosts:
    """Every run's cost row (`cost_row`) broken down, all together and per group (protocol,
    baselines, unplanned: a run whose manifest is not one of `manifests`), and the
    interrupted attempts' rows apart."""
    groups: dict[str, list[CostRow]] = {"protocol": [], "baselines": [], "unplanned": []}
    rows = []
    for run in runs:
        manifest = manifests.get(run.manifest) if run.manifest is not None else None
        row = cost_row(run, manifest)
        rows.append(row)
        if manifest is None:
            group = "unplanned"
        elif "baseline" in manifest.spec:
            group = "baselines"
        else:
            group = "protocol"
        groups[group].append(row)
    return AuditCosts(
        all=cost_breakdown(rows),
        protocol=cost_breakdown(groups["protocol"]),
        baselines=cost_breakdown(groups["baselines"]) if groups["baselines"] else None,
        unplanned=cost_breakdown(groups["unplanned"]) if groups["unplanned"] else None,
        interrupted=cost_breakdown(interrupted) if interrupted else None,
    )
