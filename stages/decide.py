"""Gate decisions: the frozen rule applied to a manifest's run records, signed.

`derive_decision` is a pure function of (manifest body, run records): `ledger decide` calls it
to write the decision and `ledger audit` calls it again to re-derive and compare, field by field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ledger.decision_model import Decision
from ledger.errors import AlreadyDecided, AnalysisError, LedgerError, MissingRuns, StorageError
from ledger.ingest import open_attempts
from ledger.keys import SigningKey
from ledger.packing import pack_objects
from ledger.plan_model import BaselineRule, Manifest, Plan
from ledger.provenance import log_source
from ledger.store import Store
from stages.baseline_rule import derive_baseline_decision
from stages.campaign import Campaign, Factor
from stages.claims import close_dead_attempts
from stages.conditions import make_condition
from stages.lookup import Entry, manifest_decision, manifest_runs
from stages.observations import RecordedRun, decision_head, observations, select_runs
from stages.plan import frozen_manifest
from stages.rules import apply_rule
from stages.stats import (
    EffectsResult,
    estimate_effects,
    failures_by_level,
    gate_flags,
    summarize,
)

SIGNING_FIELDS = ("decided_at", "decider")


def _design_points(manifest: Plan) -> dict[str, dict[str, int]]:
    """The frozen plan's effect set: design points by condition id, with their coded levels."""
    letters = sorted(manifest.analysis.factors)
    conds = manifest.conditions
    return {
        cid: {f: _level(conds[cid].coded.get(f), cid, f) for f in letters}
        for cid in manifest.analysis.points or {}
        if cid in conds
    }


def _level(value: float | None, cid: str, letter: str) -> int:
    """A design point's coded level of a factor (-1 or +1), which the plan must carry."""
    if value is None:
        raise AnalysisError(f"design point {cid[:12]} has no coded level for factor {letter}")
    return int(value)


def _effects(obs: list[dict[str, Any]], manifest: Plan) -> tuple[EffectsResult | None, str | None]:
    """Effects as the frozen analysis plan says: its design points (by id), terms, method.

    Anchors and added conditions never enter (they are not in `analysis.points`); failed
    runs have no value and are named in the notes. None (with why) when not estimable.
    """
    analysis = manifest.analysis
    letters = sorted(analysis.factors)
    if not letters:
        return None, "no factors"
    if analysis.points is None:
        return None, "the analysis plan names no design points (frozen by an older version)"
    points = _design_points(manifest)
    if not analysis.terms:
        return None, f"{len(points)} design point(s) in the plan: no effect model"
    rows = [
        {**points[o["condition"]], "value": o["value"], "host": o["host"]}
        for o in obs
        if o["condition"] in points
    ]
    try:
        result = estimate_effects(
            rows,
            letters,
            response="value",
            terms=analysis.terms,
            block=analysis.block,
            method=analysis.method,
            post_selection=analysis.post_selection,
            drop_inestimable=True,
        )
    except LedgerError as exc:
        return None, f"effects not estimable: {exc}"
    result.dropped = list(analysis.dropped) + result.dropped
    result.dropped_reasons = {**analysis.dropped_reasons, **result.dropped_reasons}
    result.notes = _missing_notes(obs, analysis.points) + result.notes
    return result, None


def _missing_notes(obs: list[dict[str, Any]], points: dict[str, str]) -> list[str]:
    """Say which design-point runs failed: they are not in the model, and not at random."""
    runs = [o for o in obs if o["condition"] in points]
    failed = [o for o in runs if o["value"] is None]
    if not failed:
        return []
    with_value = {o["condition"] for o in runs if o["value"] is not None}
    empty = sorted(points[cid] for cid in points if cid not in with_value)
    note = (
        f"{len(failed)} of {len(runs)} design-point runs failed and are not in the model "
        f"(statistics.failures has the failure rate at each factor level)"
    )
    if empty:
        note += f"; no ok run at all for {', '.join(empty)}: the design is incomplete"
    return [note]


def _factor_objects(manifest: Plan) -> list[Factor]:
    table = manifest.analysis.factors
    return [Factor(k, v.key, v.levels[0], v.levels[1]) for k, v in sorted(table.items())]


def derive_decision(
    manifest_id: str, manifest: Plan, runs: Sequence[tuple[str, RecordedRun]]
) -> dict[str, Any]:
    """The decision body (without signer and time) that the frozen rule gives on these runs."""
    if isinstance(manifest.rule, BaselineRule):
        return derive_baseline_decision(manifest_id, manifest, manifest.rule, runs)
    used, missing, extra = select_runs(manifest_id, manifest, runs)
    obs = observations(used, manifest.metric)
    summaries = summarize(obs, cells=list(manifest.cells or []) or None)
    effects, effects_note = _effects(obs, manifest)
    conds = manifest.conditions
    names = {cid: info.name for cid, info in conds.items()}
    coded = _design_points(manifest)  # `reduce` maps onto design points only
    factors = manifest.analysis.factors
    outcome = apply_rule(
        manifest.rule,
        summaries,
        names=names,
        effects=effects,
        coded=coded,
        factors=factors,
        checks=manifest.checks,
    )
    failures = failures_by_level(obs, coded, factors) if coded else None
    flags = gate_flags(summaries, outcome.ranking, outcome.promoted, names, failures)
    promoted = list(outcome.promoted)
    table = {cid: conds[cid].to_dict() for cid in promoted}
    screened = _factor_objects(manifest)
    base = manifest.spec.get("base", {})  # a plan frozen without a campaign file has no spec
    for point in outcome.new_points:
        levels = {f.key: f.level(point.coded[f.letter]) for f in screened}
        cond = make_condition(base, screened, levels, point.name, "reduce")
        if cond.id not in table:
            promoted.append(cond.id)
            table[cond.id] = cond.to_dict()
    return {
        **decision_head(manifest_id, manifest, used, missing, extra),
        "statistics": {
            "conditions": [s.to_dict() for s in summaries],
            "effects": effects.to_dict() if effects is not None else None,
            "effects_note": effects_note,
            "failures": failures.to_dict() if failures is not None else None,
            "flags": [f.to_dict() for f in flags],
        },
        "rule": manifest.rule.to_dict(),
        "outcome": outcome.to_dict(),
        "promoted": promoted,
        "conditions": table,
        "trace": list(outcome.trace),
        "verdicts": [v.to_dict() for v in outcome.verdicts],
    }


def decide_stage(
    store: Store, campaign: Campaign, stage: str, key: SigningKey, *, allow_missing: bool = False
) -> tuple[str, Decision]:
    """Apply the stage's frozen rule to its recorded runs and write a signed decision."""
    manifest = frozen_manifest(store, campaign, stage)
    return decide_manifest(store, manifest, key, allow_missing=allow_missing)


def decide_manifest(
    store: Store, manifest: Entry[Manifest], key: SigningKey, *, allow_missing: bool = False
) -> tuple[str, Decision]:
    """Decide one manifest (campaign stage or baseline step): derive, sign, journal, then
    pack the objects of its runs that lie in this host's part (`ledger.packing`).

    Raises:
        AlreadyDecided: the manifest already has a signed decision (decisions are final).
        MissingRuns: declared runs are not recorded and `allow_missing` is False.
    """
    stage = manifest.body.stage
    existing = manifest_decision(store, manifest.id)
    if existing is not None:
        raise AlreadyDecided(
            f"stage {stage!r} is already decided (decision {existing.id[:12]}); decisions are final"
        )
    close_dead_attempts(store, manifest.id, key=key, fmt=log_source(manifest.body).fmt)
    live = open_attempts(store, manifest.id)
    if live:
        raise LedgerError(
            f"stage {stage!r} has {sum(live.values())} run(s) in flight on this host (first: "
            f"{min(live)}); let `ledger run` finish before deciding"
        )
    runs = [(e.id, e.body) for e in manifest_runs(store, manifest.id)]
    body = derive_decision(manifest.id, manifest.body, runs)
    if body["missing"] and not allow_missing:
        raise MissingRuns(
            f"stage {stage!r} has {len(body['missing'])} of {len(manifest.body.runs)} declared "
            f"runs not recorded yet (first: {body['missing'][0]}); finish `ledger run {stage}` "
            f"or pass --allow-missing to decide on what is there (recorded in the decision)"
        )
    body["decided_at"] = datetime.now(UTC).isoformat(timespec="microseconds")
    body["decider"] = key.key_id
    decision_id = store.put_signed("decision", body, key)
    store.journal().append("decision_made", object=decision_id, manifest=manifest.id, key=key)
    cited = [oid for rid, run in runs for oid in (rid, run.raw_log, run.stderr) if oid]
    try:
        pack_objects(store, cited)  # the stage is final: its records and logs in one file
    except LedgerError as exc:
        raise StorageError(
            f"stage {stage!r} is decided (decision {decision_id[:12]}), but its objects stay "
            f"loose: {exc} (`ledger pack` packs them later)"
        ) from None
    return decision_id, Decision.model_validate(body)
