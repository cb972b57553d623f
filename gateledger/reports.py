"""Reports: the audited data every report is built from, costs and effects views, the HTML
page (with DVC outputs), and the protocol compared with its baselines and other stores.

Apart from `gateledger.review` because the report and comparison draw plots (matplotlib).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from audit.compare import comparison, figure, table_rows
from audit.dvc_outputs import write_dvc_outputs
from audit.rederive import audit_store
from audit.report import _ordered_costs, saved_sentence, write_report
from audit.report_data import build_report_data, headline, live_items
from gateledger.method import CampaignLike, campaign_of
from ledger.errors import LedgerError
from ledger.fsutil import atomic_write
from ledger.store import Store


def report(store: Store, campaign: CampaignLike | None = None) -> dict[str, Any]:
    """The audited report data (what every report shows): stages, effects, costs,
    counterfactuals, flags, the audit verdict. `campaign` supplies factor names.

    Raises:
        CampaignError: a bad campaign file; LedgerError: an unreadable store.
    """
    result = audit_store(store)
    return build_report_data(store, result, campaign_of(campaign) if campaign else None)


def cost_summary(data: dict[str, Any]) -> dict[str, Any]:
    """The costs view of report data (`ledger report costs --json`): protocol, baseline,
    unplanned, interrupted-attempt and all costs, the counterfactuals, and the "saved"
    sentence."""
    return {
        "costs": data["costs"],
        "baseline_costs": data["baseline_costs"],
        "unplanned_costs": data["unplanned_costs"],
        "interrupted_costs": data.get("interrupted_costs"),
        "all_costs": data["all_costs"],
        "counterfactuals": data["counterfactuals"],
        "saved": saved_sentence(data),
    }


def costs_in_protocol_order(data: dict[str, Any]) -> dict[str, Any]:
    """The protocol's costs with `by_stage` in protocol order (as the report tables show)."""
    return _ordered_costs(data)


def effect_summary(data: dict[str, Any]) -> dict[str, Any]:
    """The effects view of report data (`ledger report effects --json`): effects by stage,
    variance shares, rank stability between gates, review flags."""
    return {
        "stages": [
            {
                "stage": s["name"],
                "budget_s": s["budget_s"],
                "analysis": s["analysis"],
                "effects": s["effects"],
                "effects_note": s["effects_note"],
                "significant": s["significant"],
                "failure_rates": s["failure_rates"],
            }
            for s in data["stages"]
        ],
        "variance": data["variance"],
        "rank_stability": data["rank_stability"],
        "flags": data["flags"],
    }


def write_html(
    store: Store,
    campaign: CampaignLike | None = None,
    *,
    out: str | Path = "report",
    metrics: str | Path | None = None,
    plots: str | Path | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write report.html and report.md into `out` (and DVC metrics JSON / plot CSVs when
    asked): (`{"paths", "headline"}`, the report data).

    Raises:
        CampaignError: `campaign` cannot be read; LedgerError: `out` cannot be written.
    """
    data = report(store, campaign)
    paths = write_report(data, Path(out))
    write_dvc_outputs(data, Path(metrics) if metrics else None, Path(plots) if plots else None)
    return {"paths": {k: str(v) for k, v in paths.items()}, "headline": headline(data)}, data


def _audited(store: Store, campaign: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    result = audit_store(store)
    data = build_report_data(store, result, campaign)
    return data, [item for item in live_items(store, result) if item["baseline"]]


def compare(
    store: Store,
    campaign: CampaignLike | None = None,
    *,
    others: Iterable[str | Path] = (),
    plot: str | Path | None = None,
) -> dict[str, Any]:
    """The protocol against its baselines (and the protocols of `others` stores), from
    audited data; `audits` maps each store to its audit verdict. Writes the PNG `plot`.

    Raises:
        LedgerError: the store has no protocol gates.
    """
    data, baselines = _audited(store, campaign_of(campaign) if campaign else None)
    if not data["stages"]:
        raise LedgerError(f"store {store.root} has no protocol gates to compare")
    other_data, verdicts = [], {str(store.root): data["audit"]["verdict"]}
    for path in others:
        other, _ = _audited(Store.open(path, host=store.host), None)
        other["store"] = str(path)
        other_data.append(other)
        verdicts[str(path)] = other["audit"]["verdict"]
    result = comparison(data, baselines, other_data)
    result["audits"] = verdicts
    if plot:
        atomic_write(Path(plot), figure(result))
    return result


def comparison_table(comp: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of a `compare` result as text cells, as `ledger compare` prints them."""
    return table_rows(comp)
