"""Files for `dvc metrics show` and `dvc plots show`: a headline JSON and two small CSVs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from audit.plots import effect_interval
from audit.report_data import headline
from ledger.fsutil import atomic_write


def effects_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (stage, term) with its 95% interval (t with the residual df, or ± Lenth's
    ME: the decision's own numbers); post-selection rows say so and have no q."""
    rows = []
    for stage in data["stages"]:
        stage_effects = stage.get("effects") or {}
        for e in stage_effects.get("effects", []):
            interval = effect_interval(stage_effects, e)
            rows.append(
                {
                    "term": f"{e['term']} @ {stage['name']}",
                    "stage": stage["name"],
                    "budget_s": stage["budget_s"],
                    "effect": e["effect"],
                    "low": interval[0] if interval else "",
                    "high": interval[1] if interval else "",
                    "q": e.get("q") if e.get("q") is not None else "",
                    "significant": e["term"] in stage.get("significant", []),
                    "post_selection": bool(stage_effects.get("post_selection")),
                }
            )
    return rows


def cost_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Executed GPU-hours per stage, then each gate's continue-everything counterfactual."""
    rows = [
        {"label": f"{name} executed", "gpu_hours": part["training_gpu_hours"]}
        for name, part in data["costs"].get("by_stage", {}).items()
    ]
    for counterfactual in data.get("counterfactuals", []):
        rows.append(
            {
                "label": f"{counterfactual['gate']}: continue all to final",
                "gpu_hours": counterfactual["final_if_all"],
            }
        )
    return rows


def _csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_dvc_outputs(data: dict[str, Any], metrics: Path | None, plots: Path | None) -> None:
    if metrics is not None:
        atomic_write(
            metrics, (json.dumps(headline(data), indent=2, sort_keys=True) + "\n").encode()
        )
    if plots is not None:
        atomic_write(
            plots / "effects.csv",
            _csv(
                effects_rows(data),
                [
                    "term",
                    "stage",
                    "budget_s",
                    "effect",
                    "low",
                    "high",
                    "q",
                    "significant",
                    "post_selection",
                ],
            ).encode(),
        )
        atomic_write(plots / "costs.csv", _csv(cost_rows(data), ["label", "gpu_hours"]).encode())
