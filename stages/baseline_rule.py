"""The rule a baseline step's decision follows: pure, so `ledger decide` and the audit agree.

Why apart from `stages.baselines`: that module freezes, runs and decides baseline steps (it
imports `stages.decide`); `stages.decide.derive_decision` dispatches baseline manifests here,
so the pure rule lives below both and neither imports the other back.
"""

from __future__ import annotations

from typing import Any

from stages.observations import decision_head, observations, select_runs
from stages.stats import summarize


def derive_baseline_decision(
    manifest_id: str, manifest: dict[str, Any], runs: list[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    """Pure: the baseline step's decision from its run records (audit calls it too)."""
    used, missing, extra = select_runs(manifest_id, manifest, runs)
    obs = observations(used, manifest.get("analysis", {}).get("metric", "val_bpb"))
    cells = [tuple(c) for c in manifest.get("cells", [])]
    summaries = summarize(obs, cells=cells or None)
    rule = manifest["rule"]
    conds = manifest["conditions"]
    ranked = sorted(
        (s for s in summaries if s.mean is not None), key=lambda s: (s.mean, s.condition)
    )
    trace: list[str] = []
    if rule["baseline"] == "greedy" and rule.get("incumbent"):
        challenger = ranked[0] if ranked else None
        inc, inc_mean = rule["incumbent"], rule.get("incumbent_mean")
        if challenger is not None and (inc_mean is None or challenger.mean < inc_mean):
            promoted, best_mean = [challenger.condition], challenger.mean
            trace.append(
                f"flip kept: {conds[challenger.condition]['name']} mean "
                f"{challenger.mean:.4f} < incumbent {conds[inc]['name']} {inc_mean}"
            )
        else:
            promoted, best_mean = [inc], inc_mean
            shown = f"{challenger.mean:.4f}" if challenger else "no data"
            trace.append(
                f"flip rejected: challenger {shown} does not beat incumbent "
                f"{conds[inc]['name']} {inc_mean}"
            )
    else:
        promoted = [ranked[0].condition] if ranked else []
        best_mean = ranked[0].mean if ranked else None
        for rank, s in enumerate(ranked, 1):
            trace.append(
                f"rank {rank}: {conds[s.condition]['name']} mean {s.mean:.4f} "
                f"over {s.n} cells" + (" (promoted)" if rank == 1 else "")
            )
    return {
        **decision_head(manifest_id, manifest, used, missing, extra),
        "statistics": {
            "conditions": [s.to_dict() for s in summaries],
            "effects": None,
            "effects_note": "baseline step: no effects",
        },
        "rule": rule,
        "outcome": {"promoted": promoted, "best_mean": best_mean, "significant": []},
        "promoted": promoted,
        "conditions": {cid: dict(conds[cid]) for cid in promoted},
        "trace": trace,
        "verdicts": [],
    }
