"""Files for `dvc metrics show` and `dvc plots show`: a headline JSON and two small CSVs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from audit.report_data import headline
from ledger.fsutil import atomic_write


def effects_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (stage, main effect) with a 95% interval where one is known."""
    rows = []
    for stage in data["stages"]:
        eff = stage.get("effects") or {}
        for e in eff.get("effects", []):
            half = eff.get("me") if eff.get("method") == "lenth" else (
                1.96 * e["se"] if e.get("se") is not None else None)
            rows.append({
                "term": f"{e['term']} @ {stage['name']}",
                "stage": stage["name"],
                "budget_s": stage["budget_s"],
                "effect": e["effect"],
                "low": e["effect"] - half if half is not None else "",
                "high": e["effect"] + half if half is not None else "",
                "q": e.get("q") if e.get("q") is not None else "",
                "significant": e["term"] in stage.get("significant", []),
            })
    return rows


def cost_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Executed GPU-hours per stage, then each gate's continue-everything counterfactual."""
    rows = [
        {"label": f"{name} executed", "gpu_hours": part["training_gpu_hours"]}
        for name, part in data["costs"].get("by_stage", {}).items()
    ]
    for cf in data.get("counterfactuals", []):
        rows.append({"label": f"{cf['gate']}: continue all to final",
                     "gpu_hours": cf["final_if_all"]})
    return rows


def _csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_dvc_outputs(data: dict[str, Any], metrics: Path | None, plots: Path | None) -> None:
    if metrics is not None:
        atomic_write(metrics, (json.dumps(headline(data), indent=2, sort_keys=True) + "\n").encode())
    if plots is not None:
        atomic_write(plots / "effects.csv", _csv(effects_rows(data), [
            "term", "stage", "budget_s", "effect", "low", "high", "q", "significant"]).encode())
        atomic_write(plots / "costs.csv", _csv(cost_rows(data), ["label", "gpu_hours"]).encode())
