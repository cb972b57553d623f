"""Reports: the audited report model every report is built from, its costs and effects
views, the HTML page (with DVC outputs), and the protocol compared with its baselines and
other stores. Each from a store, or from a reviewer's bundle under the reviewer's trust
roots and published anchors.

Apart from `gateledger.review` because the report and comparison draw plots (matplotlib).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from audit.compare import comparison, figure, table_rows
from audit.dvc_outputs import write_dvc_outputs
from audit.rederive import audit_store
from audit.report import write_report
from audit.report_data import Report, build_report, effects_report, headline, live_items
from audit.report_model import CostReport, EffectsReport, ReportData
from gateledger.integrity import reviewer_inputs
from gateledger.method import CampaignLike, campaign_of
from gateledger.review import opened_bundle, with_problems
from ledger.errors import LedgerError
from ledger.fsutil import atomic_write
from ledger.store import Store


def _build(
    store: Store | str | Path | None,
    campaign: CampaignLike | None,
    *,
    bundle: str | Path | None,
    host: str | None,
    trust: Iterable[str],
    trust_files: Iterable[str | Path],
    anchors: Iterable[str | Path],
) -> Report:
    chosen, published = reviewer_inputs(trust, trust_files, anchors)
    camp = campaign_of(campaign) if campaign else None
    if bundle is not None:
        with opened_bundle(bundle, host=host) as (opened, problems):
            result = with_problems(audit_store(opened, trust=chosen, anchors=published), problems)
        # a bundle carries no saved evaluation (a forecast is not evidence)
        return build_report(None, result, camp, source=f"bundle {bundle}")
    if store is None:
        raise LedgerError("give a store or a bundle to report on")
    opened = store if isinstance(store, Store) else Store.open(store, host=host)
    result = audit_store(opened, trust=chosen, anchors=published)
    return build_report(opened.root, result, camp, source=f"store {opened.root}")


def report(
    store: Store | str | Path | None = None,
    campaign: CampaignLike | None = None,
    *,
    bundle: str | Path | None = None,
    host: str | None = None,
    trust: Iterable[str] = (),
    trust_files: Iterable[str | Path] = (),
    anchors: Iterable[str | Path] = (),
) -> ReportData:
    """The audited report (what every report shows): stages, effects, costs,
    counterfactuals, flags, the audit verdict and its caveats. `campaign` supplies factor
    names. With `bundle`, the reviewer's bundle is audited in a scratch folder under the
    reviewer's `trust` keys, `trust_files` and published `anchors` (as `audit_bundle`).

    Raises:
        CampaignError: a bad campaign file; BundleError: a bad bundle; TrustError: a bad
            trust root; LedgerError: an unreadable store.
    """
    return _build(
        store,
        campaign,
        bundle=bundle,
        host=host,
        trust=trust,
        trust_files=trust_files,
        anchors=anchors,
    ).data


def cost_summary(data: ReportData) -> CostReport:
    """The costs view (`ledger report costs --json`): the protocol's GPU-hours by stage,
    host, condition and status, baselines and unplanned compute apart, the counterfactuals
    at each gate, the campaign's total beside each counterfactual total, and one "saved";
    numbers only, the sentences under `text`."""
    return data.cost_report


def effect_summary(data: ReportData) -> EffectsReport:
    """The effects view (`ledger report effects --json`): effects by stage, variance shares,
    rank stability between gates, review flags."""
    return effects_report(data)


def write_html(
    store: Store | str | Path | None = None,
    campaign: CampaignLike | None = None,
    *,
    out: str | Path = "report",
    metrics: str | Path | None = None,
    plots: str | Path | None = None,
    bundle: str | Path | None = None,
    host: str | None = None,
    trust: Iterable[str] = (),
    trust_files: Iterable[str | Path] = (),
    anchors: Iterable[str | Path] = (),
) -> tuple[dict[str, Any], ReportData]:
    """Write report.html and report.md into `out` (and DVC metrics JSON / plot PNGs and CSVs
    when asked): (`{"paths", "headline"}`, the report). Store or bundle as in `report`.

    Raises:
        CampaignError: `campaign` cannot be read; LedgerError: `out` cannot be written.
    """
    built = _build(
        store,
        campaign,
        bundle=bundle,
        host=host,
        trust=trust,
        trust_files=trust_files,
        anchors=anchors,
    )
    paths = write_report(built, Path(out))
    figs = {name: Path(path).read_bytes() for name, path in paths.items() if name.endswith(".png")}
    write_dvc_outputs(
        built.data, figs, Path(metrics) if metrics else None, Path(plots) if plots else None
    )
    return {
        "paths": {k: str(v) for k, v in paths.items()},
        "headline": headline(built.data).model_dump(mode="json"),
    }, built.data


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
    camp = campaign_of(campaign) if campaign else None
    result = audit_store(store)
    data = build_report(store.root, result, camp).data
    if not data.stages:
        raise LedgerError(f"store {store.root} has no protocol gates to compare")
    baselines = [item.compare_item() for item in live_items(result) if item.baseline]
    other_data, verdicts = [], {str(store.root): data.audit.verdict}
    for path in others:
        other_store = Store.open(path, host=store.host)
        other = build_report(other_store.root, audit_store(other_store)).data
        other_data.append((str(path), other))
        verdicts[str(path)] = other.audit.verdict
    out = comparison(data, baselines, other_data)
    out["audits"] = verdicts
    if plot:
        atomic_write(Path(plot), figure(out))
    return out


def comparison_table(comp: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of a `compare` result as text cells, as `ledger compare` prints them."""
    return table_rows(comp)


__all__ = [
    "compare",
    "comparison_table",
    "cost_summary",
    "effect_summary",
    "report",
    "write_html",
]
