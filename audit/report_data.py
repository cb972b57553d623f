"""Assemble what a reviewer reads (report, costs, effects) from the ledger and the audit.

Why separate from rendering: the same dict feeds `ledger report costs|effects --json`, the
HTML/Markdown report and the DVC metrics, so every surface shows the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from audit.compare import comparison
from audit.costs import counterfactuals, split_costs
from audit.evaluation_report import saved_evaluation
from audit.rederive import AuditResult
from audit.summary import caveats, provenance, run_facts, verdict
from ledger.errors import LedgerError
from ledger.store import Store
from stages.pipeline import run_failure_reason
from stages.stats import spearman, variance_decomposition


def signers(store: Store, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Which keys signed the gates, by name (so a demo key is visible as one)."""
    used = {item["manifest"].get("freezer") for item in items}
    used |= {item["decision"].get("decider") for item in items if item["decision"]}
    names = {r["key_id"]: r.get("name", "?") for r in store.keyring().records()}
    shown = sorted(f"{names.get(k, 'unknown')} [{k}]" for k in used if k)
    demo = any("DEMO" in names.get(k, "") for k in used if k)
    detail = ", ".join(shown) + (" (a demo key: not evidence of anything)" if demo else "")
    return {"name": "signing keys", "ok": True, "detail": detail}


def tool_version() -> str:
    try:
        return version("gateledger")
    except PackageNotFoundError:
        return "unknown"


def _body(store: Store, result: AuditResult, kind: str, oid: str) -> dict[str, Any]:
    """A body the audit already read (hash-checked), else read now (raises if damaged)."""
    body = result.bodies.get(kind, {}).get(oid)
    return body if body is not None else store.get_json(oid)["body"]


def _live_stages(store: Store, result: AuditResult) -> list[dict[str, Any]]:
    """One entry per gate in force (amended manifests replaced), in freeze order."""
    return [item for item in live_items(store, result) if not item["baseline"]]


def live_items(store: Store, result: AuditResult) -> list[dict[str, Any]]:
    """Every manifest in force, gates and baselines (`baseline` says which), in freeze order:
    `{"audit", "manifest", "decision", "runs", "baseline"}`."""
    runs_by_manifest: dict[str, list[dict[str, Any]]] = {}
    for body in result.bodies.get("run", {}).values():
        runs_by_manifest.setdefault(body.get("manifest") or "", []).append(body)
    out = []
    for stage_audit in (s for s in result.stages if not s.superseded):
        manifest = _body(store, result, "manifest", stage_audit.manifest)
        decision = (
            _body(store, result, "decision", stage_audit.decision) if stage_audit.decision else None
        )
        # baselines are compared with the protocol (`ledger compare`), not walked as gates
        out.append(
            {
                "audit": stage_audit,
                "manifest": manifest,
                "decision": decision,
                "runs": runs_by_manifest.get(stage_audit.manifest, []),
                "baseline": "baseline" in manifest.get("spec", {}),
            }
        )
    return out


FAILURE_LIMIT = 50  # failed runs listed per gate; the statuses line counts them all

_DEFAULT_REASON = {
    "diverged": "loss became NaN/inf or exploded",
    "timeout": "stopped before the end (SIGTERM, or killed past budget + grace)",
    "crashed": "no summary: the process died",
}


def failure_reason(store: Store, run: dict[str, Any]) -> str:
    """Why a run is not `ok`: the runner's error or its stderr's last line (kept with the
    run), else what its status means."""
    reason = run_failure_reason(store, run)
    return reason or _DEFAULT_REASON.get(str(run.get("status")), str(run.get("status")))


def failures(
    store: Store, manifest: dict[str, Any], runs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The gate's runs that are not `ok`, with a reason, at most FAILURE_LIMIT of them."""
    names = {cid: info.get("name", cid[:8]) for cid, info in manifest.get("conditions", {}).items()}
    bad = sorted(
        (r for r in runs if r.get("status") != "ok"),
        key=lambda r: (
            str(names.get(r.get("condition"), "")),
            r.get("seed") or 0,
            str(r.get("host")),
        ),
    )
    return [
        {
            "condition": names.get(r.get("condition"), str(r.get("condition"))[:8]),
            "seed": r.get("seed"),
            "host": r.get("host"),
            "status": r.get("status"),
            "reason": failure_reason(store, r),
        }
        for r in bad[:FAILURE_LIMIT]
    ]


def stage_view(item: dict[str, Any], store: Store) -> dict[str, Any]:
    """One gate as the report shows it."""
    stage_audit, manifest, decision, runs = (
        item["audit"],
        item["manifest"],
        item["decision"],
        item["runs"],
    )
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run.get("status", "?")] = statuses.get(run.get("status", "?"), 0) + 1
    executed = (
        sum(
            float(r.get("metrics", {}).get("training_seconds") or 0.0) * int(r.get("gpus") or 1)
            for r in runs
        )
        / 3600.0
    )
    names = {cid: info["name"] for cid, info in manifest["conditions"].items()}
    promoted = set(decision["promoted"]) if decision else set()
    factors = (manifest.get("analysis") or {}).get("factors") or {}
    conditions = []
    effects = None
    significant: list[str] = []
    if decision:
        outcome = decision.get("outcome", {})
        gate_rank = {cid: i for i, cid in enumerate(outcome.get("ranking", []), start=1)}
        excluded = {e["condition"]: e["reason"] for e in outcome.get("excluded", [])}
        for s in decision["statistics"]["conditions"]:
            cid = s["condition"]
            info = manifest["conditions"].get(cid, {})
            conditions.append(
                {
                    **s,
                    "name": names.get(cid, cid[:8]),
                    "promoted": cid in promoted,
                    "promoted_by": promoted_by(cid, info, decision) if cid in promoted else None,
                    "levels": factor_levels(info, factors),
                    "origin": info.get("origin"),
                    "gate_rank": gate_rank.get(cid),
                    "excluded": excluded.get(cid),
                }
            )
        effects = decision["statistics"].get("effects")
        significant = list(decision.get("outcome", {}).get("significant", []))
    return {
        "name": stage_audit.stage,
        "from": manifest.get("spec", {}).get("stage", {}).get("from"),
        "budget_s": stage_audit.budget_s,
        "manifest": stage_audit.manifest,
        "decision": stage_audit.decision,
        "frozen_at": manifest.get("frozen_at"),
        "decided_at": decision.get("decided_at") if decision else None,
        "rule": manifest.get("rule", {}),
        "cells": manifest.get("cells", []),
        "n_runs": len(runs),
        "statuses": statuses,
        "failures": failures(store, manifest, runs),
        "executed_gpu_hours": executed,
        "conditions": conditions,
        "effects": effects,
        "effects_note": decision["statistics"].get("effects_note") if decision else None,
        "analysis": _analysis_view(manifest.get("analysis", {})),
        "failure_rates": decision["statistics"].get("failures") if decision else None,
        "flags": list(decision["statistics"].get("flags", [])) if decision else [],
        "excluded": list(decision.get("outcome", {}).get("excluded", [])) if decision else [],
        "significant": significant,
        "promoted": [decision["conditions"][c]["name"] for c in decision["promoted"]]
        if decision
        else [],
        "trace": decision.get("trace", []) if decision else [],
        "verdicts": decision.get("verdicts", []) if decision else [],
        "candidates": sorted(manifest["conditions"]),
        "promoted_ids": list(decision["promoted"]) if decision else [],
        "gpus": manifest.get("gpus", 1),
    }


def factor_levels(info: dict[str, Any], factors: dict[str, Any]) -> dict[str, Any]:
    """A condition's value of each factor's config key, by factor letter (design points
    decoded: `bce` reads as A 1024, B 4, ...); values between the levels stay as they are."""
    config = info.get("config") or {}
    return {letter: config.get((f or {}).get("key")) for letter, f in sorted(factors.items())}


def promoted_by(cid: str, info: dict[str, Any], decision: dict[str, Any]) -> str:
    """`rule` when the gate's rule promoted it on its merits (rank, margin, wins, reduce);
    `keep` when it is only there because the frozen rule always carries it (an anchor).

    Read from the decision's trace, which the audit re-derives byte for byte: the rule
    writes `promoted NAME [id8]: ...` for a merit and `kept NAME [id8]: always carried`.
    """
    label = f"{info.get('name', cid)} [{cid[:8]}]"
    trace = decision.get("trace") or []
    if any(line.startswith(f"promoted {label}") for line in trace):
        return "rule"
    if any(line.startswith(f"kept {label}") for line in trace):
        return "keep"
    return "rule"


def _analysis_view(analysis: dict[str, Any]) -> dict[str, Any]:
    """The frozen analysis plan as a reviewer reads it (what was fixed before the runs)."""
    structure = analysis.get("structure") or {}
    return {
        "design": (analysis.get("design") or {}).get("label"),
        "structure": structure.get("label"),
        "points": len(analysis.get("points") or {}),
        "terms": list(analysis.get("terms") or []),
        "method": analysis.get("method"),
        "block": analysis.get("block"),
        "post_selection": bool(analysis.get("post_selection")),
    }


WEAK_RHO = 0.5  # a rank correlation below this between consecutive gates is flagged "weak"


def rank_stability(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spearman correlation of condition ranks between consecutive decided stages, flagged.

    `flag`: "negative" (rho < 0), "weak" (0 <= rho < WEAK_RHO), "too few shared conditions"
    (rho undefined: fewer than 3 shared, or constant ranks), else None.
    """
    out = []
    decided = [s for s in stages if s["conditions"]]
    for a, b in zip(decided, decided[1:], strict=False):
        ranks_a = {c["condition"]: c["rank"] for c in a["conditions"] if c.get("rank")}
        ranks_b = {c["condition"]: c["rank"] for c in b["conditions"] if c.get("rank")}
        rho, n = spearman(ranks_a, ranks_b)
        if rho is None:
            flag = "too few shared conditions"
        elif rho < 0:
            flag = "negative"
        elif rho < WEAK_RHO:
            flag = "weak"
        else:
            flag = None
        out.append({"from": a["name"], "to": b["name"], "rho": rho, "n": n, "flag": flag})
    return out


def _variance_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per run of a gate: budget, condition, host, seed and its metric (None if failed)."""
    rows = []
    for item in items:
        metric = item["manifest"].get("analysis", {}).get("metric", "val_bpb")
        for run in item["runs"]:
            value = run.get("metrics", {}).get(metric) if run.get("status") == "ok" else None
            rows.append(
                {
                    "campaign": item["manifest"].get("campaign"),
                    "stage": item["manifest"]["stage"],
                    "budget": item["manifest"]["budget_s"],
                    "condition": run.get("condition"),
                    "host": run.get("host"),
                    "seed": run.get("seed"),
                    "value": value,
                }
            )
    return rows


def variance(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Variance decomposition (budget, condition, host, seed) over every gate's ok runs, and
    (condition, host, seed) within each stage. Components with one level get share 0."""
    rows = _variance_rows(items)

    def one(subset: list[dict[str, Any]], components: tuple[str, ...]) -> dict[str, Any] | None:
        try:
            return variance_decomposition(subset, components).to_dict()
        except LedgerError:
            return None  # fewer than two ok runs: nothing to decompose

    of_campaign: dict[str, list[dict[str, Any]]] = defaultdict(list)
    of_stage: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:  # grouped once: a store of 100k runs has hundreds of stages
        of_campaign[str(r["campaign"])].append(r)
        of_stage[str(r["campaign"]), r["stage"]].append(r)
    campaigns = sorted(of_campaign)
    single = len(campaigns) <= 1
    by_stage = {}
    for item in items:
        camp, name = str(item["manifest"].get("campaign")), item["manifest"]["stage"]
        key = name if single else f"{camp}/{name}"
        by_stage[key] = one(of_stage.get((camp, name), []), ("condition", "host", "seed"))
    # across gates within one campaign: conditions of different campaigns are different
    # recipes, so a store holding several gets one decomposition per campaign
    per_campaign = {
        c: one(of_campaign[c], ("budget", "condition", "host", "seed")) for c in campaigns
    }
    return {
        "campaign": per_campaign[campaigns[0]] if single and campaigns else None,
        "campaigns": per_campaign,
        "by_stage": by_stage,
    }


def review_flags(stages: list[dict[str, Any]], ranks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every flag a reviewer needs in one list: each gate's (from its decision) and the rank
    correlations between consecutive gates. Each `{"stage", "kind", "detail"}`."""
    out = [{"stage": s["name"], **f} for s in stages for f in s.get("flags", [])]
    for r in ranks:
        if r["flag"] in ("negative", "weak"):
            out.append(
                {
                    "stage": r["to"],
                    "kind": f"{r['flag']}_rank_correlation",
                    "detail": f"Spearman rho {r['rho']:.3f} over {r['n']} shared conditions "
                    f"between {r['from']} and {r['to']}",
                }
            )
    return out


def gate_plans(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Counterfactual inputs: lineage, candidates, cells, budget and executed GPU-hours."""
    return [
        {
            "name": s["name"],
            "from": s.get("from"),
            "budget_s": s["budget_s"],
            "cells": len(s["cells"]) or 1,
            "gpus": s["gpus"],
            "candidates": s["candidates"],
            "promoted": s["promoted_ids"],
            "executed_gpu_hours": s["executed_gpu_hours"],
        }
        for s in stages
    ]


def build_report_data(store: Store, result: AuditResult, campaign=None) -> dict[str, Any]:
    """The full report dict (shape documented in docs/reports.md).

    `costs` is the protocol's own breakdown (its gates' runs); baselines and unplanned
    compute are `baseline_costs` and `unplanned_costs` (None when there are none), and
    `all_costs` is the audit's breakdown over every run record, whose sum checks it ran.
    """
    everything = live_items(store, result)
    items = [item for item in everything if not item["baseline"]]
    stages = [stage_view(item, store) for item in items]
    ranks = rank_stability(stages)
    campaign_info = {
        "name": campaign.name if campaign else (items[0]["manifest"]["campaign"] if items else "?"),
        "metric": campaign.metric if campaign else "val_bpb",
        "factors": campaign.factor_table
        if campaign
        else (items[0]["manifest"]["analysis"].get("factors", {}) if items else {}),
    }
    split = split_costs(result.bodies.get("run", {}), result.bodies.get("manifest", {}))
    facts = run_facts(store, result)
    flags = review_flags(stages, ranks)
    data = {
        "campaign": campaign_info,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tool_version": tool_version(),
        "audit": {
            "verdict": result.verdict,
            "problems": [str(f) for f in result.findings],
            "checks": [
                {"name": f"{s.stage}: {c['name']}", "ok": c["ok"], "detail": c["detail"]}
                for s in result.stages
                for c in s.checks
            ]
            + [signers(store, items)],
            "caveats": caveats(facts),
        },
        "facts": facts,
        "provenance": provenance(result),
        "verdict": verdict(stages, flags, campaign_info["metric"], facts),
        "stages": stages,
        "rank_stability": ranks,
        "variance": variance(items),
        "flags": flags,
        "costs": split["protocol"],
        "baseline_costs": split["baselines"],
        "unplanned_costs": split["unplanned"],
        # attempts that ended without a record (killed, refused): wall time from the journal
        "interrupted_costs": result.costs.get("interrupted"),
        "all_costs": result.costs,  # the audit's own breakdown over every run record
        "counterfactuals": counterfactuals(gate_plans(stages)) if len(stages) > 1 else [],
        # `ledger evaluate --save`: a forecast kept outside the evidence (None when not run)
        "evaluation": saved_evaluation(store.root, campaign_info["name"]),
    }
    baselines = [item for item in everything if item["baseline"]]
    data["comparison"] = comparison(data, baselines) if baselines else None
    return data


def headline(data: dict[str, Any]) -> dict[str, Any]:
    """The numbers `dvc metrics show` displays: best condition, cost, savings, verdict, and
    what the evidence is (simulated runs, demo key, anchors). GPU-hours are the protocol's;
    baselines are `baseline_gpu_hours`."""
    final = next((s for s in reversed(data["stages"]) if s["conditions"]), None)
    # the gate's own first (its `failed` policy may exclude the lowest mean), else the lowest mean
    best = (
        min(final["conditions"], key=lambda c: (c.get("gate_rank") or 1e9, c["rank"] or 1e9))
        if final
        else None
    )
    saved = None
    if data["counterfactuals"]:
        first = data["counterfactuals"][0]
        saved = first.get("final_if_all", 0) - first.get("protocol_remaining", 0)
    facts = data.get("facts") or {}
    verdict = data.get("verdict") or {}
    baselines = data.get("baseline_costs")
    return {
        "best_condition": best["name"] if best else None,
        "best_val_bpb": best["mean"] if best else None,
        "best_ci_low": best.get("ci_low") if best else None,
        "best_ci_high": best.get("ci_high") if best else None,
        "margin_to_runner_up": verdict.get("margin"),
        "separated_from_runner_up": verdict.get("separated"),
        "final_stage": final["name"] if final else None,
        "training_gpu_hours": data["costs"]["training_gpu_hours"],
        "wall_gpu_hours": data["costs"]["wall_gpu_hours"],
        "baseline_gpu_hours": baselines["training_gpu_hours"] if baselines else 0.0,
        "gpu_hours_saved_vs_all": saved,
        "audit_clean": data["audit"]["verdict"] == "clean",
        "problems": len(data["audit"]["problems"]),
        "flags": len(data.get("flags") or []),
        "runs": facts.get("runs"),
        "simulated_runs": facts.get("simulated_runs"),
        "demo_key": facts.get("demo_key"),
        "anchors": facts.get("anchors"),
        "trust": facts.get("trust"),
        # the least bound stage's logs: builtin, header or status-only (audit.binding)
        "binding": (facts.get("binding") or {}).get("weakest"),
    }
