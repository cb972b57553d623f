"""The rule a baseline step's decision follows: pure, so `ledger decide` and the audit agree.

Why apart from `stages.baselines`: that module freezes, runs and decides baseline steps (it
imports `stages.decide`); `stages.decide.derive_decision` dispatches baseline manifests here,
so the pure rule lives below both and neither imports the other back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.plan_model import BaselineRule, Plan
from stages.observations import RecordedRun, decision_head, observations, select_runs
from stages.stats import summarize


def derive_baseline_decision(
    manifest_id: str, manifest: Plan, rule: BaselineRule, runs: Sequence[tuple[str, RecordedRun]]
) -> dict[str, Any]:
    """Pure: the baseline step's decision from its run records (audit calls it too)."""
    used, missing, extra = select_runs(manifest_id, manifest, runs)
    obs = observations(used, manifest.metric)
    summaries = summarize(obs, cells=list(manifest.cells or []) or None)
    names = {cid: info.name for cid, info in manifest.conditions.items()}
    ranked = sorted(
        (s for s in summaries if s.mean is not None), key=lambda s: (s.mean, s.condition)
    )
    trace: list[str] = []
    best_mean: float | None
    if rule.baseline == "greedy" and rule.incumbent:
        challenger = ranked[0] if ranked else None
        inc, inc_mean = rule.incumbent, rule.incumbent_mean
        if (
            challenger is not None
            and challenger.mean is not None
            and (inc_mean is None or challenger.mean < inc_mean)
        ):
            promoted, best_mean = [challenger.condition], challenger.mean
            trace.append(
                f"flip kept: {names[challenger.condition]} mean "
                f"{challenger.mean:.4f} < incumbent {names[inc]} {inc_mean}"
            )
        else:
            promoted, best_mean = [inc], inc_mean
            shown = f"{challenger.mean:.4f}" if challenger else "no data"
            trace.append(
                f"flip rejected: challenger {shown} does not beat incumbent {names[inc]} {inc_mean}"
            )
    else:
        promoted = [ranked[0].condition] if ranked else []
        best_mean = ranked[0].mean if ranked else None
        for rank, s in enumerate(ranked, 1):
            trace.append(
                f"rank {rank}: {names[s.condition]} mean {s.mean:.4f} "
                f"over {s.n} cells" + (" (promoted)" if rank == 1 else "")
            )
    return {
        **decision_head(manifest_id, manifest, used, missing, extra),
        "statistics": {
            "conditions": [s.to_dict() for s in summaries],
            "effects": None,
            "effects_note": "baseline step: no effects",
        },
        "rule": rule.to_dict(),
        "outcome": {"promoted": promoted, "best_mean": best_mean, "significant": []},
        "promoted": promoted,
        "conditions": {cid: manifest.conditions[cid].to_dict() for cid in promoted},
        "trace": trace,
        "verdicts": [],
    }
