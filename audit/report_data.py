"""Build the report model (`audit.report_model.ReportData`) from the audit's result.

Why from the audit's public result alone: the report shows what the audit re-derived and
hash-checked (`AuditResult.manifests`, `.decisions`, `.runs`: status and metrics as each raw
log supports them), so a report never reads an object the audit did not, and a reviewer's
report from a bundle shows exactly what their audit checked. The store is read for one thing
outside the evidence: the saved evaluation (a forecast, `ledger evaluate --save`).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from audit import evaluation_report
from audit.causes import short_ids
from audit.compare import TITLE as COMPARE_TITLE
from audit.compare import BaselineStep, comparison, table_rows
from audit.costs import (
    StagePlan,
    campaign_sentence,
    campaign_totals,
    counterfactual_sentences,
    counterfactuals,
    saved_sentence,
)
from audit.evaluation_report import SavedEvaluation, saved_evaluation
from audit.frozen_spec import stage_from
from audit.gates import StageAudit
from audit.rederive import AuditedRun, AuditResult
from audit.report_model import (
    AnalysisView,
    AuditView,
    CampaignCosts,
    CampaignInfo,
    CaveatView,
    Cell,
    Check,
    CheckVerdict,
    ConditionView,
    CostBreakdown,
    CostReport,
    CostText,
    EffectRow,
    Effects,
    EffectsReport,
    EffectsStage,
    Excluded,
    FailedRun,
    FailureRates,
    Flag,
    Headline,
    KeyView,
    ProblemLine,
    RankRow,
    ReportData,
    StageView,
    TableView,
    Variance,
    VarianceShares,
)
from audit.summary import provenance, run_facts, verdict
from ledger.decision_model import ConditionStats, Decision, EffectsTable, Failures
from ledger.errors import LedgerError
from ledger.plan_model import AnalysisPlan, FactorSpec, Manifest, Plan, PlannedCondition, Rule
from stages.stats import spearman, variance_decomposition


def tool_version() -> str:
    try:
        return version("gateledger")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Item:
    """A manifest in force (amended ones replaced) with its decision (None: not decided)
    and its runs, as the audit read them."""

    audit: StageAudit
    plan: Manifest
    decision: Decision | None
    runs: list[AuditedRun]
    baseline: bool

    def compare_item(self) -> BaselineStep:
        """The step `audit.compare` reads (a baseline the audit does not find clean is left
        out there)."""
        return BaselineStep(
            self.plan,
            self.decision,
            self.audit,
            tuple(gpu_seconds(r, self.plan) for r in self.runs),
        )


def live_items(result: AuditResult) -> list[Item]:
    """Every manifest in force, gates and baselines (`baseline` says which), in freeze order."""
    runs_by_manifest: dict[str, list[AuditedRun]] = defaultdict(list)
    for run in result.runs.values():
        runs_by_manifest[run.observed.manifest or ""].append(run)
    return [
        Item(
            stage_audit,
            result.manifests[stage_audit.manifest],
            result.decisions[stage_audit.decision] if stage_audit.decision else None,
            runs_by_manifest[stage_audit.manifest],
            # baselines are compared with the protocol (`ledger compare`), not walked
            "baseline" in result.manifests[stage_audit.manifest].spec,
        )
        for stage_audit in result.stages
        if not stage_audit.superseded
    ]


def gpu_seconds(run: AuditedRun, plan: Plan) -> float:
    """A run's training GPU-seconds (DESIGN §8): its log's training seconds (0 when it gives
    none) times the GPUs its plan fixes."""
    return (_float(run.observed.metrics.training_seconds) or 0.0) * plan.gpus


FAILURE_LIMIT = 50  # failed runs listed per gate; the statuses line counts them all

_DEFAULT_REASON = {
    "diverged": "loss became NaN/inf or exploded",
    "timeout": "stopped before the end (SIGTERM, or killed past budget + grace)",
    "crashed": "no summary: the process died",
}


def failures(plan: Plan, runs: list[AuditedRun]) -> list[FailedRun]:
    """The gate's runs that are not `ok`, with why (the runner's error or stderr's last
    line, as the audit read them, else what the status means), at most FAILURE_LIMIT."""
    names = {cid: info.name for cid, info in plan.conditions.items()}
    bad = sorted(
        (r for r in runs if r.observed.status != "ok"),
        key=lambda r: (
            str(names.get(str(r.observed.condition), "")),
            r.observed.seed or 0,
            str(r.observed.host),
        ),
    )
    out = []
    for run in bad[:FAILURE_LIMIT]:
        status = run.observed.status
        seed, host, cid = run.observed.seed, run.observed.host, run.observed.condition
        out.append(
            FailedRun(
                condition=str(names.get(str(cid), str(cid)[:8])),
                seed=seed,
                host=host,
                status=status,
                reason=run.reason or _DEFAULT_REASON.get(status, status),
            )
        )
    return out


def _float(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def _condition(
    s: ConditionStats,
    info: PlannedCondition | None,
    factors: dict[str, FactorSpec],
    decision: Decision,
    gate_rank: dict[str, int],
    excluded: dict[str, str],
) -> ConditionView:
    cid = s.condition
    promoted = cid in set(decision.promoted)
    name = info.name if info is not None and info.name else cid[:8]
    return ConditionView(
        condition=cid,
        name=name,
        n=s.n,
        n_runs=s.n_runs,
        mean=_float(s.mean),
        sd=_float(s.sd),
        ci_low=_float(s.ci_low),
        ci_high=_float(s.ci_high),
        rank=s.rank,
        wins=s.wins,
        promoted=promoted,
        promoted_by=promoted_by(cid, name if info is not None else cid, decision)
        if promoted
        else None,
        levels=factor_levels(info, factors),
        origin=info.origin if info is not None else None,
        gate_rank=gate_rank.get(cid),
        excluded=excluded.get(cid),
    )


def _effects(table: EffectsTable | None) -> Effects | None:
    if table is None:
        return None
    return Effects(
        method=str(table.method),
        effects=[
            EffectRow(
                term=e.term,
                effect=float(e.effect),
                se=_float(e.se),
                p=_float(e.p),
                q=_float(e.q),
                ci_low=_float(e.ci_low),
                ci_high=_float(e.ci_high),
                aliases=list(e.aliases),
            )
            for e in table.effects
            if e.effect is not None and _float(e.effect) is not None
        ],
        pse=_float(table.pse),
        me=_float(table.me),
        sme=_float(table.sme),
        df_resid=_float(table.df_resid),
        t_df=_float(table.t_df),
        post_selection=table.post_selection,
        dropped=list(table.dropped),
        dropped_reasons=dict(table.dropped_reasons),
        notes=list(table.notes),
        block=table.block,
    )


def _failure_rates(failed: Failures | None) -> FailureRates | None:
    if failed is None:
        return None
    return FailureRates(
        n_failed=failed.n_failed,
        n_runs=failed.n_runs,
        factors={
            letter: {
                "key": row.key,
                "low": {"failed": row.low.failed, "runs": row.low.runs},
                "high": {"failed": row.high.failed, "runs": row.high.runs},
                "p": _float(row.p),
                "unequal": row.unequal,
            }
            for letter, row in failed.factors.items()
        },
    )


def stage_view(item: Item) -> StageView:
    """One gate as the report shows it."""
    plan, decision, runs = item.plan, item.decision, item.runs
    statuses = Counter(run.observed.status for run in runs)
    executed = math.fsum(gpu_seconds(r, plan) for r in runs) / 3600.0
    views: list[ConditionView] = []
    statistics = decision.statistics if decision is not None else None
    outcome = decision.outcome if decision is not None else None
    if decision is not None:
        gate_rank = {cid: i for i, cid in enumerate(decision.outcome.ranking, start=1)}
        excluded = {e.condition: e.reason for e in decision.outcome.excluded}
        views = [
            _condition(
                s,
                plan.conditions.get(s.condition),
                plan.analysis.factors,
                decision,
                gate_rank,
                excluded,
            )
            for s in decision.statistics.conditions
        ]
    return StageView(
        name=item.audit.stage,
        from_stage=stage_from(plan),
        budget_s=float(item.audit.budget_s),
        manifest=item.audit.manifest,
        decision=item.audit.decision,
        frozen_at=plan.frozen_at,
        decided_at=decision.decided_at if decision is not None else None,
        # shown as frozen: the keys it was read with
        rule_json=json.dumps(
            plan.rule.to_dict(), indent=2, sort_keys=True, ensure_ascii=False, default=str
        ),
        keep=list(plan.rule.keep or []) if isinstance(plan.rule, Rule) else [],
        cells=[Cell(seed=c.seed, host=c.host) for c in plan.cells or []],
        n_runs=len(runs),
        statuses=dict(statuses),
        failures=failures(plan, runs),
        executed_gpu_hours=executed,
        conditions=views,
        effects=_effects(statistics.effects if statistics is not None else None),
        effects_note=statistics.effects_note if statistics is not None else None,
        analysis=_analysis_view(plan.analysis),
        failure_rates=_failure_rates(statistics.failures if statistics is not None else None),
        flags=[
            Flag(stage=item.audit.stage, kind=f.kind, detail=f.detail)
            for f in (statistics.flags if statistics is not None else [])
        ],
        excluded=[
            Excluded(condition=e.condition, reason=e.reason)
            for e in (outcome.excluded if outcome is not None else [])
        ],
        significant=list(outcome.significant) if outcome is not None else [],
        promoted=[decision.name(c) for c in decision.promoted] if decision is not None else [],
        trace=list(decision.trace) if decision is not None else [],
        verdicts=[
            CheckVerdict(name=v.name, passed=v.passed, detail=v.detail)
            for v in (decision.verdicts if decision is not None else [])
        ],
        candidates=sorted(plan.conditions),
        promoted_ids=list(decision.promoted) if decision is not None else [],
        gpus=plan.gpus,
    )


def factor_levels(info: PlannedCondition | None, factors: dict[str, FactorSpec]) -> dict[str, Any]:
    """A condition's value of each factor's config key, by factor letter (design points
    decoded: `bce` reads as A 1024, B 4, ...); values between the levels stay as they are."""
    config = info.config if info is not None else {}
    return {letter: config.get(f.key) for letter, f in sorted(factors.items())}


def promoted_by(cid: str, name: str, decision: Decision) -> str:
    """`rule` when the gate's rule promoted it on its merits (rank, margin, wins, reduce);
    `keep` when it is only there because the frozen rule always carries it (an anchor).

    Read from the decision's trace, which the audit re-derives byte for byte: the rule
    writes `promoted NAME [id8]: ...` for a merit and `kept NAME [id8]: always carried`.
    """
    label = f"{name} [{cid[:8]}]"
    if any(line.startswith(f"promoted {label}") for line in decision.trace):
        return "rule"
    if any(line.startswith(f"kept {label}") for line in decision.trace):
        return "keep"
    return "rule"


def _analysis_view(analysis: AnalysisPlan) -> AnalysisView:
    """The frozen analysis plan as a reviewer reads it (what was fixed before the runs)."""
    return AnalysisView(
        design=analysis.design.label if analysis.design is not None else None,
        structure=analysis.structure.label if analysis.structure is not None else None,
        points=len(analysis.points or {}),
        terms=[analysis.terms] if isinstance(analysis.terms, str) else list(analysis.terms),
        method=analysis.method,
        block=analysis.block,
        post_selection=analysis.post_selection,
    )


WEAK_RHO = 0.5  # a rank correlation below this between consecutive gates is flagged "weak"


def rank_stability(stages: list[StageView]) -> list[RankRow]:
    """Spearman correlation of condition ranks between consecutive decided stages, flagged.

    `flag`: "negative" (rho < 0), "weak" (0 <= rho < WEAK_RHO), "too few shared conditions"
    (rho undefined: fewer than 3 shared, or constant ranks), else None.
    """
    out = []
    decided = [s for s in stages if s.conditions]
    for a, b in zip(decided, decided[1:], strict=False):
        ranks_a = {c.condition: float(c.rank) for c in a.conditions if c.rank}
        ranks_b = {c.condition: float(c.rank) for c in b.conditions if c.rank}
        rho, n = spearman(ranks_a, ranks_b)
        if rho is None:
            flag = "too few shared conditions"
        elif rho < 0:
            flag = "negative"
        elif rho < WEAK_RHO:
            flag = "weak"
        else:
            flag = None
        out.append(RankRow(from_stage=a.name, to_stage=b.name, rho=rho, n=n, flag=flag))
    return out


def _variance_rows(items: list[Item]) -> list[dict[str, Any]]:
    """One row per run of a gate: budget, condition, host, seed and its metric (None if failed)."""
    rows = []
    for item in items:
        metric = item.plan.metric
        for run in item.runs:
            observed = run.observed
            value = observed.value(metric) if observed.status == "ok" else None
            rows.append(
                {
                    "campaign": item.plan.campaign,
                    "stage": item.plan.stage,
                    "budget": item.plan.budget_s,
                    "condition": observed.condition,
                    "host": observed.host,
                    "seed": observed.seed,
                    "value": value,
                }
            )
    return rows


def variance(items: list[Item]) -> Variance:
    """Variance decomposition (budget, condition, host, seed) over every gate's ok runs, and
    (condition, host, seed) within each stage. Components with one level get share 0."""
    rows = _variance_rows(items)

    def one(subset: list[dict[str, Any]], components: tuple[str, ...]) -> VarianceShares | None:
        try:
            out = variance_decomposition(subset, components)
        except LedgerError:
            return None  # fewer than two ok runs: nothing to decompose
        shares = out.to_dict()["shares"]  # non-finite shares as None
        return VarianceShares(n=out.n, components=list(out.components), shares=shares)

    of_campaign: dict[str, list[dict[str, Any]]] = defaultdict(list)
    of_stage: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:  # grouped once: a store of 100k runs has hundreds of stages
        of_campaign[str(r["campaign"])].append(r)
        of_stage[str(r["campaign"]), r["stage"]].append(r)
    campaigns = sorted(of_campaign)
    single = len(campaigns) <= 1
    by_stage = {}
    for item in items:
        camp, name = item.plan.campaign, item.plan.stage
        key = name if single else f"{camp}/{name}"
        by_stage[key] = one(of_stage[camp, name], ("condition", "host", "seed"))
    # across gates within one campaign: conditions of different campaigns are different
    # recipes, so a store holding several gets one decomposition per campaign
    per_campaign = {
        c: one(of_campaign[c], ("budget", "condition", "host", "seed")) for c in campaigns
    }
    return Variance(
        campaign=per_campaign[campaigns[0]] if single and campaigns else None,
        campaigns=per_campaign,
        by_stage=by_stage,
    )


def review_flags(stages: list[StageView], ranks: list[RankRow]) -> list[Flag]:
    """Every flag a reviewer needs in one list: each gate's (from its decision) and the rank
    correlations between consecutive gates."""
    out = [f for s in stages for f in s.flags]
    for r in ranks:
        if r.flag in ("negative", "weak") and r.rho is not None:
            out.append(
                Flag(
                    stage=r.to_stage,
                    kind=f"{r.flag}_rank_correlation",
                    detail=f"Spearman rho {r.rho:.3f} over {r.n} shared conditions "
                    f"between {r.from_stage} and {r.to_stage}",
                )
            )
    return out


def gate_plans(stages: list[StageView]) -> list[StagePlan]:
    """Counterfactual inputs: lineage, candidates, cells, budget and executed GPU-hours."""
    return [
        StagePlan(
            name=s.name,
            from_stage=s.from_stage,
            budget_s=s.budget_s,
            cells=len(s.cells) or 1,
            gpus=s.gpus,
            candidates=s.candidates,
            promoted=s.promoted_ids,
            executed_gpu_hours=s.executed_gpu_hours,
        )
        for s in stages
    ]


def breakdown(costs: CostBreakdown, stage_order: Sequence[str] = ()) -> CostBreakdown:
    """A `cost_breakdown` in a reader's order: stages in protocol order (then by name),
    hosts and statuses by name, conditions by name (then id)."""
    by_stage = costs.by_stage
    order = [s for s in stage_order if s in by_stage] + sorted(
        k for k in by_stage if k not in stage_order
    )
    conditions = sorted(costs.by_condition.items(), key=lambda kv: (kv[1].name, kv[0]))
    return costs.model_copy(
        update={
            "by_stage": {k: by_stage[k] for k in order},
            "by_host": dict(sorted(costs.by_host.items())),
            "by_condition": dict(conditions),
            "by_status": dict(sorted(costs.by_status.items())),
        }
    )


def cost_report(result: AuditResult, stages: list[StageView], campaign_name: str) -> CostReport:
    """The costs view: the protocol's breakdown (baselines, unplanned compute and interrupted
    attempts apart), the
    counterfactuals at each gate, and the campaign block, with one definition of saved."""
    costs = result.costs
    order = [s.name for s in stages]
    protocol = breakdown(costs.protocol, order)
    plans = gate_plans(stages)
    total = protocol.training_gpu_hours
    cfs = counterfactuals(plans, total) if len(stages) > 1 else []
    totals = campaign_totals(plans, total)
    sentences: list[str] = []
    for cf in cfs:
        sentences += [t for t in counterfactual_sentences(cf) if t not in sentences]
    return CostReport(
        campaign_name=campaign_name,
        costs=protocol,
        baseline_costs=breakdown(costs.baselines, order) if costs.baselines else None,
        unplanned_costs=breakdown(costs.unplanned, order) if costs.unplanned else None,
        interrupted_costs=breakdown(costs.interrupted, order) if costs.interrupted else None,
        all_costs=breakdown(costs.all, order),
        counterfactuals=cfs,
        campaign=CampaignCosts(
            protocol_gpu_hours=totals.executed_gpu_hours,
            planned_gpu_hours=totals.planned_gpu_hours,
            root=totals.root,
            saved_gpu_hours=totals.saved_gpu_hours,
        ),
        text=CostText(
            saved=saved_sentence(totals),
            campaign=campaign_sentence(totals),
            counterfactuals=sentences,
        ),
    )


def audit_view(result: AuditResult, source: str) -> AuditView:
    """The verdict, problems by cause (ids cut to 12 hex), every stage check, caveats, and
    what the evidence was checked against."""
    return AuditView(
        verdict=result.verdict,
        problems=[
            ProblemLine(
                text=short_ids(str(c.problem)),
                related=[short_ids(str(p)) for p in c.related],
                consequences=[short_ids(str(p)) for p in c.consequences],
            )
            for c in result.causes
        ],
        n_problems=len(result.problems),
        checks=[
            Check(name=f"{s.stage}: {c.name}", ok=c.ok, detail=c.detail)
            for s in result.stages
            for c in s.checks
        ],
        caveats=[CaveatView(kind=c.kind, text=c.text) for c in result.caveats],
        trust="reviewer" if result.trust.get("trust") == "reviewer" else "store",
        trusted=[KeyView(key_id=k.key_id, name=k.name) for k in result.trusted],
        anchors_given=list(result.anchors_given),
        source=source,
    )


def _campaign_info(campaign: Any, items: list[Item]) -> CampaignInfo:
    if campaign is not None:
        return CampaignInfo(
            name=campaign.name, metric=campaign.metric, factors=campaign.factor_table
        )
    if not items:
        return CampaignInfo(name="?", metric="val_bpb", factors={})
    first = items[0].plan
    return CampaignInfo(
        name=first.campaign,
        metric=first.metric,
        factors={
            letter: {"key": f.key, "levels": list(f.levels)}
            for letter, f in first.analysis.factors.items()
        },
    )


@dataclass(frozen=True)
class Report:
    """The report model and what two of its figures are drawn from: the comparison's rows
    (`audit.compare`) and the saved evaluation (`audit.evaluation_report`)."""

    data: ReportData
    comparison: dict[str, Any] | None = None
    evaluation: SavedEvaluation | None = None


def build_report(
    store_root: Path | None,
    result: AuditResult,
    campaign: Any = None,
    *,
    source: str | None = None,
) -> Report:
    """The report from the audit's result (shape: `audit.report_model`).

    `store_root` is where a saved evaluation is looked up (None: none); `campaign` (a
    loaded campaign) supplies factor names and the metric; `source` names the store or
    bundle the audit read, for the page's banner.
    """
    everything = live_items(result)
    items = [item for item in everything if not item.baseline]
    stages = [stage_view(item) for item in items]
    ranks = rank_stability(stages)
    info = _campaign_info(campaign, items)
    facts = run_facts(result)
    flags = review_flags(stages, ranks)
    data = ReportData(
        campaign=info,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        tool_version=tool_version(),
        audit=audit_view(result, source or (str(store_root) if store_root else "?")),
        facts=facts,
        provenance=provenance(result),
        verdict=verdict(stages, flags, info.metric, facts),
        stages=stages,
        rank_stability=ranks,
        variance=variance(items),
        flags=flags,
        cost_report=cost_report(result, stages, info.name),
    )
    comp = None
    baselines = [item for item in everything if item.baseline]
    if baselines:
        comp = comparison(data, [b.compare_item() for b in baselines])
        headers, rows = table_rows(comp)
        data = data.model_copy(
            update={
                "comparison": TableView(
                    title=COMPARE_TITLE,
                    intro="Best condition each search found, its mean with 95% interval, and "
                    "the training GPU-hours it spent (baselines are not in the protocol's "
                    "cost totals). "
                    + comp["note"]
                    + "".join(
                        f" Left out, not audited clean: {left['method']} ({left['why']})."
                        for left in comp["not_audited"]
                    ),
                    headers=headers,
                    rows=rows,
                    figure="compare.png",
                )
            }
        )
    saved = saved_evaluation(store_root, info.name) if store_root is not None else None
    if saved is not None:
        data = data.model_copy(update={"evaluation": evaluation_report.section(saved)})
    return Report(data, comp, saved)


def build_report_data(
    store_root: Path | None, result: AuditResult, campaign: Any = None
) -> ReportData:
    """`build_report(...).data`: the model alone (what `--json` views are made of)."""
    return build_report(store_root, result, campaign).data


def headline(data: ReportData) -> Headline:
    """The numbers `dvc metrics show` displays: best condition, its closest competitor, cost,
    savings, verdict, and what the evidence is (simulated runs, demo key, anchors, caveats).
    GPU-hours are the protocol's; baselines are `baseline_gpu_hours`."""
    winner = data.verdict.winner
    runner = data.verdict.runner_up
    costs = data.cost_report
    return Headline(
        best_condition=winner.name if winner else None,
        best_val_bpb=winner.mean if winner else None,
        best_ci_low=winner.ci_low if winner else None,
        best_ci_high=winner.ci_high if winner else None,
        runner_up=runner.name if runner else None,
        margin_to_runner_up=data.verdict.margin,
        separated_from_runner_up=data.verdict.separated,
        final_stage=data.verdict.stage,
        training_gpu_hours=costs.costs.training_gpu_hours,
        wall_gpu_hours=costs.costs.wall_gpu_hours,
        baseline_gpu_hours=costs.baseline_costs.training_gpu_hours if costs.baseline_costs else 0.0,
        gpu_hours_saved_vs_all=costs.campaign.saved_gpu_hours,
        audit_clean=data.audit.verdict == "clean",
        problems=data.audit.n_problems,
        flags=len(data.flags),
        runs=data.facts.runs,
        simulated_runs=data.facts.simulated_runs,
        demo_key=data.facts.demo_key,
        anchors=data.facts.anchors,
        trust=data.facts.trust,
        binding=data.facts.binding,
        caveats=", ".join(c.kind for c in data.audit.caveats) or "none",
    )


def effects_report(data: ReportData) -> EffectsReport:
    """The effects view (`ledger report effects --json`): effects by stage, variance shares,
    rank stability between gates, review flags."""
    return EffectsReport(
        stages=[
            EffectsStage(
                stage=s.name,
                budget_s=s.budget_s,
                analysis=s.analysis,
                effects=s.effects,
                effects_note=s.effects_note,
                significant=s.significant,
                failure_rates=s.failure_rates,
            )
            for s in data.stages
        ],
        variance=data.variance,
        rank_stability=data.rank_stability,
        flags=data.flags,
    )


__all__ = [
    "FAILURE_LIMIT",
    "Item",
    "Report",
    "build_report",
    "build_report_data",
    "cost_report",
    "effects_report",
    "factor_levels",
    "headline",
    "live_items",
    "promoted_by",
    "rank_stability",
    "review_flags",
    "stage_view",
    "variance",
]
