"""`ledger audit`: re-derive every number and decision from objects and journals alone.

Never trusts the index, nor a run record's copy of its numbers: every observation comes from
parsing the raw-log bytes (`audit.runs`), and each decision is re-derived from those with
the frozen rule (`audit.gates`). Each finding names the object it concerns. The checks, per
the brief: changed bytes, non-canonical objects, bad, unknown or untrusted signatures (via
`ledger.verify`); logs that do not bind to their run or whose status lacks evidence; runs
that predate or do not cite their manifest; declared runs missing or undeclared extras;
decisions the frozen rule does not reproduce from the raw logs, replayed or grafted;
manifests replaced after runs began or chained to the wrong parent; journals that no longer
extend a published anchor; and GPU-hours that do not add up.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from audit.attempt_checks import interrupted_rows
from audit.baseline_checks import protocol_hours_before
from audit.binding_summary import BindingSummary, binding_summary
from audit.causes import Cause, group
from audit.caveats import Caveat, CaveatInputs, KeyName, Signer, caveats, signers
from audit.costs import AuditCosts, audit_costs
from audit.evidence import Evidence
from audit.gates import BaselineContext, StageAudit, audit_manifest
from audit.locate import Locator
from audit.runs import Found, LogProvenance, ObservedRun, RunCheck, check_run
from audit.spotcheck import SpotCheckRequest, spot_check
from audit.throughput import throughput_findings
from audit.witness import bounds, order_findings, stage_witness
from ledger.decision_model import Decision
from ledger.parallel import fork_map, shared, without_gc_pauses
from ledger.plan_model import Manifest
from ledger.problems import Problem
from ledger.store import Store
from ledger.trust import Trust
from ledger.verify import Verified, verify_with_evidence

RUN_STATUSES = ("ok", "diverged", "crashed", "timeout")


@dataclass(frozen=True)
class AuditedRun:
    """A run record as the audit read it: `observed` is the run with status and metrics as
    its raw log supports them (never the record's own numbers), `log` what its header says."""

    id: str
    observed: ObservedRun
    log: LogProvenance | None
    simulated: bool
    reason: str  # why a run that is not ok ended, or why it has no evidence


@dataclass
class AuditResult:
    """Everything `ledger audit` found, ready for JSON, text or the report.

    `manifests`, `decisions` and `runs` are the hash-checked evidence the audit re-derived
    from (accepted objects the journals cite), so a report is built from what the audit
    read instead of reading every object again.
    """

    problems: list[Problem]
    stages: list[StageAudit]
    unplanned: list[str]
    amendments: list[str]
    costs: AuditCosts
    objects: int
    anchors: int
    trust: dict[str, Any] = field(default_factory=lambda: {"trust": "store", "trusted_keys": []})
    notes: list[str] = field(default_factory=list)
    timestamps: dict[str, Any] = field(default_factory=dict)  # tokens, roots, anchors' bounds
    reproduction: dict[str, Any] | None = None  # `--reproduce N`: the spot-check's replays
    caveats: list[Caveat] = field(default_factory=list)
    signers: list[Signer] = field(default_factory=list)
    trusted: list[KeyName] = field(default_factory=list)  # the reviewer's keys, by name
    anchors_given: list[str] = field(default_factory=list)  # ids of the reviewer's anchors
    manifests: dict[str, Manifest] = field(default_factory=dict, repr=False, compare=False)
    decisions: dict[str, Decision] = field(default_factory=dict, repr=False, compare=False)
    runs: dict[str, AuditedRun] = field(default_factory=dict, repr=False, compare=False)

    @property
    def verdict(self) -> str:
        """`problems`, `empty` (nothing to audit is not clean), or `clean`."""
        if self.problems:
            return "problems"
        return "empty" if not self.stages and not self.unplanned else "clean"

    @property
    def ok(self) -> bool:
        return self.verdict == "clean"

    @property
    def causes(self) -> list[Cause]:
        """The findings grouped by root cause (`audit.causes`)."""
        return group(self.problems)

    @property
    def binding(self) -> BindingSummary:
        """How strongly the logs of the stages in force are bound (`audit.binding_summary`)."""
        return binding_summary(self.stages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "binding": self.binding.to_dict(),
            "problems": [f.to_dict() for f in self.problems],
            "causes": [c.to_dict() for c in self.causes],
            "caveats": [c.to_dict() for c in self.caveats],
            "signers": [s.to_dict() for s in self.signers],
            "stages": [s.to_dict() for s in self.stages],
            "unplanned_runs": self.unplanned,
            "amendments": self.amendments,
            "costs": self.costs.to_dict(),
            "objects": self.objects,
            "anchors": self.anchors,
            "anchors_given": self.anchors_given,
            **self.trust,
            "trusted": [k.to_dict() for k in self.trusted],
            "notes": self.notes,
            "timestamps": self.timestamps,
            "reproduction": self.reproduction,
        }


@without_gc_pauses
def audit_store(
    store: Store,
    *,
    progress: bool = False,
    trust: Trust | None = None,
    anchors: dict[str, dict[str, Any]] | None = None,
    tsa_roots: list[Any] | None = None,
    reproduce: SpotCheckRequest | None = None,
    allow_undecided: bool = False,
) -> AuditResult:
    """Run every check; return findings (empty = clean) and per-stage verdicts.

    Args:
        store: the store (or an opened reviewer bundle) to audit.
        progress: show a progress bar on a terminal.
        trust, anchors, tsa_roots: the reviewer's trust roots, published anchors and TSA
            root certificates (see `ledger.verify.verify_with_evidence`).
        reproduce: replay a reviewer-drawn sample of runs (`audit.spotcheck`); a replay
            that does not reproduce its record is a finding.
        allow_undecided: a plan in force that was never decided is not a finding (a
            campaign in progress); by default it is (an abandoned plan is not clean).

    Raises:
        LedgerError: the store cannot be read (a missing store, bad reviewer input).
    """
    verified = verify_with_evidence(
        store,
        check_index=False,
        progress=progress,
        trust=trust,
        anchors=anchors,
        tsa_roots=tsa_roots,
    )
    findings = list(verified.problems)
    ev = Evidence(store, verified)
    manifests = ev.manifests
    checks = check_runs(ev, manifests)
    by_manifest: dict[str | None, list[RunCheck]] = defaultdict(list)
    for check in checks.values():
        by_manifest[check.record.manifest].append(check)
    observed = {rid: c.observed for rid, c in checks.items()}
    context = BaselineContext(manifests, protocol_hours_before(ev, manifests, observed))
    stages = audit_manifests(
        ev, manifests, by_manifest, allow_undecided=allow_undecided, baselines=context
    )
    for stage_audit in stages:
        findings += stage_audit.problems
    for mid, runs in by_manifest.items():
        if mid is not None and mid not in manifests:
            findings += [p for r in runs for p in r.problems]
    findings += _shared_logs(checks)
    findings += throughput_findings(checks, manifests)
    findings += _second_freezes(ev)
    unplanned = sorted(r.id for r in by_manifest[None])
    findings += [p for r in by_manifest[None] for p in r.problems]
    costs = audit_costs(
        (c.observed for c in checks.values()), manifests, interrupted_rows(ev, manifests)
    )
    for part in costs.parts:
        findings += [
            Problem("costs", f"GPU-hours do not add up: {check.name}", check="costs")
            for check in part.checks
            if not check.ok
        ]
    findings += _uncounted(checks)
    timestamps, order = _witness(ev, verified, stages)
    findings += order
    # trust is said once: as a caveat when store-asserted, as a note naming the keys else
    trust_note = verified.trust.describe(verified.keyring)
    notes = [n for n in verified.notes() if n != trust_note or verified.trust.mode != "store"]
    notes += _unsigned_note(ev)
    reproduction = None
    if reproduce is not None:
        spot = spot_check(ev, checks, manifests, reproduce)
        findings += spot.problems
        notes += spot.notes()
        reproduction = spot.to_dict()
    locator = Locator(manifests, ev.decisions, ev.runs)
    anchors_made = sum(1 for e in ev.events if e.kind == "anchor")
    names = {r.key_id: r.name for r in store.keyring().records()}
    trust_used = verified.trust
    trusted = [KeyName(kid, n) for kid, n in trust_used.key_names(store.keyring()).items()]
    names.update({k.key_id: k.name for k in trusted})
    who = signers(names, manifests.values(), ev.decisions.values())
    facts = CaveatInputs(
        runs=sum(s.runs for s in stages) + len(unplanned),
        simulated_by_stage=tuple((s.stage, s.sim_runs) for s in stages if s.sim_runs),
        signers=tuple(who),
        anchors_in_store=anchors_made,
        anchors_given=len(verified.anchors.given),
        trust=trust_used.mode,
        trusted=tuple(trusted),
        binding=tuple((s.stage, s.binding) for s in stages if not s.superseded),
    )
    return AuditResult(
        _unique(locator.locate_all(findings)),
        stages,
        unplanned,
        amendments=sorted(mid for mid, m in manifests.items() if m.amends),
        costs=costs,
        objects=len(verified.scan.objects) + len(verified.scan.raw),
        anchors=anchors_made + len(verified.anchors.given),
        trust=trust_used.to_dict(),
        notes=notes,
        timestamps=timestamps,
        reproduction=reproduction,
        caveats=caveats(facts),
        signers=who,
        trusted=trusted,
        anchors_given=list(verified.anchors.given),
        manifests=manifests,
        decisions=ev.decisions,
        runs={
            rid: AuditedRun(rid, c.observed, c.log, c.simulated, c.reason)
            for rid, c in checks.items()
        },
    )


def _uncounted(checks: dict[str, RunCheck]) -> list[Problem]:
    """A run whose training seconds the totals cannot count as its record claims (its log
    is not evidence, or says otherwise): the GPU-hours changed, said as a consequence."""
    out = []
    for rid, check in checks.items():
        claimed = _seconds(check.record.metrics.training_seconds)
        counted = _seconds(check.observed.metrics.training_seconds)
        if claimed == counted:
            continue
        gpus = max(check.observed.gpus, 1)
        out.append(
            Problem(
                rid,
                f"GPU-hours: the totals count {counted:g} training seconds of this run, its "
                f"record claims {claimed:g} ({(counted - claimed) * gpus / 3600:+.4f} "
                f"GPU-hours)",
                check="costs",
                recorded=claimed,
                found=counted,
            )
        )
    return out


PARALLEL_MIN_RUNS = 2000  # below this, starting workers costs more than it saves
# ... except for the run checks: their workers start before statsmodels is imported, which
# this process does meanwhile (~0.5 s of a reviewer's audit of a paper-sized store)
PARALLEL_MIN_RUN_CHECKS = 400


def check_runs(ev: Evidence, manifests: dict[str, Manifest]) -> dict[str, RunCheck]:
    """`check_run` for every run record: in forked worker processes when the store is big
    (parsing every raw log, hundreds of lines each, is most of an audit), while this
    process imports the statistics the decisions are re-derived with."""
    rids = sorted(ev.runs)
    found = fork_map(
        _check_chunk,
        rids,
        (ev, manifests),
        serial=len(rids) < PARALLEL_MIN_RUN_CHECKS,
        meanwhile=_import_statistics if manifests else None,
    )
    return {rid: RunCheck.of_found(rid, ev.runs[rid], run) for rid, run in sorted(found)}


def _import_statistics() -> None:
    """statsmodels' OLS (~0.5 s to import; `stages.stats` imports it where it fits)."""
    import statsmodels.regression.linear_model  # noqa: F401


def _check_chunk(rids: list[str]) -> list[tuple[str, Found]]:
    ev, manifests = shared()
    return [(rid, check_run(ev, rid, ev.runs[rid], manifests).found) for rid in rids]


def audit_manifests(
    ev: Evidence,
    manifests: dict[str, Manifest],
    by_manifest: dict[str | None, list[RunCheck]],
    *,
    allow_undecided: bool = False,
    baselines: BaselineContext | None = None,
) -> list[StageAudit]:
    """`audit_manifest` for every manifest, in freeze order; in workers on big stores (each
    re-derives its decision with the statistics, the other large cost)."""
    order = sorted(manifests, key=lambda mid: (manifests[mid].frozen_at, mid))
    if order:  # (done by `check_runs` already: once before forking, not in each worker)
        _import_statistics()
    superseded = {m.amends for m in manifests.values() if m.amends}
    done = fork_map(
        _audit_chunk,
        order,
        (ev, manifests, by_manifest, superseded, allow_undecided, baselines),
        serial=sum(len(v) for v in by_manifest.values()) < PARALLEL_MIN_RUNS,
    )
    by_id = {stage_audit.manifest: stage_audit for stage_audit in done}
    return [by_id[mid] for mid in order]


def _audit_chunk(mids: list[str]) -> list[StageAudit]:
    ev, manifests, by_manifest, superseded, allow_undecided, baselines = shared()
    return [
        audit_manifest(
            ev,
            mid,
            manifests[mid],
            by_manifest[mid],
            mid in superseded,
            allow_undecided=allow_undecided,
            baselines=baselines,
        )
        for mid in mids
    ]


def _witness(
    ev: Evidence, verified: Verified, stages: list[StageAudit]
) -> tuple[dict[str, Any], list[Problem]]:
    """Each stage's witnessed interval (frozen / decided no later than), the order check
    between a decision's and its manifest's timestamps, and the anchors' bounds."""
    report = verified.timestamps
    anchors = ev.anchors
    found = bounds(report, ev.events, anchors)
    decisions = {
        stage_audit.manifest: stage_audit.decision for stage_audit in stages if stage_audit.decision
    }
    problems = order_findings(found, ev.manifests, decisions)
    for stage_audit in stages:
        stage_audit.witness = stage_witness(
            found, stage_audit.manifest, stage_audit.decision, report.witnessed
        )
        if stage_audit.manifest in found or (
            stage_audit.decision and stage_audit.decision in found
        ):
            stage_audit.check(
                "timestamps in order",
                [p for p in problems if p.object in (stage_audit.manifest, stage_audit.decision)],
            )
    summary = {
        "tokens": len(report.tokens),
        "verified": sum(t.verified for t in report.tokens.values()),
        "tsa_roots": report.roots,
        "checked_against": "reviewer TSA roots" if report.witnessed else None,
        "anchors": {aid: found[aid].to_dict(aid) for aid in sorted(anchors) if aid in found},
    }
    return summary, problems


def _second_freezes(ev: Evidence) -> list[Problem]:
    """A stage has one plan at a time: a second first-freeze (not an amendment) of the same
    campaign stage is a plan slipped in beside the signed one (a graft)."""
    first: dict[tuple[str, str], str] = {}
    out = []
    frozen = [e for e in ev.events if e.kind == "manifest_frozen" and e.object in ev.manifests]
    for event in sorted(frozen, key=lambda e: (e.at, e.host, e.index)):
        if event.object is None:
            continue  # (none: each names a manifest, filtered above)
        manifest = ev.manifests[event.object]
        key = (manifest.campaign, manifest.stage)
        if key in first and first[key] != event.object:
            out.append(
                Problem(
                    event.object,
                    f"stage {key[0]}/{key[1]} frozen a second time "
                    f"without --amend (first: {first[key][:12]})",
                    check="one plan per stage",
                    stage=key[1],
                )
            )
        first.setdefault(key, event.object)
    return out


def _shared_logs(checks: dict[str, RunCheck]) -> list[Problem]:
    """One log backs one run: a log that reports a result (ok or diverged) and is cited by a
    second record is a finding. Identical crash output (a process that died the same way
    for two seeds) is not: it reports nothing."""
    first: dict[str, str] = {}
    out = []
    for rid, check in sorted(checks.items(), key=lambda rc: (rc[1].record.recorded_at, rc[0])):
        raw = check.record.raw_log
        if check.observed.status not in ("ok", "diverged"):
            continue
        if raw in first:
            out.append(
                Problem(
                    rid,
                    f"raw log {raw[:12]} already backs run record "
                    f"{first[raw][:12]}: one log backs one run",
                    check="one log per run",
                )
            )
        else:
            first[raw] = rid
    return out


def _unique(findings: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for f in findings:
        if (f.object, f.message) not in seen:
            seen.add((f.object, f.message))
            out.append(f)
    return out


def _unsigned_note(ev: Evidence) -> list[str]:
    """Old stores keep verifying with unsigned run records; say what that leaves open."""
    unsigned = sum(1 for rid in ev.runs if "signature" not in ev.objects[rid])
    if not unsigned:
        return []
    return [
        f"{unsigned} run record(s) are unsigned (recorded before records were signed, or "
        f"unplanned without a key): anyone with write access to the store could have "
        f"replaced them before a decision cited them"
    ]


def _seconds(value: Any) -> float:
    """Seconds as a finite non-negative float; anything else counts 0 (and is a run finding)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) and value >= 0 else 0.0


__all__ = ["AuditResult", "AuditedRun", "LogProvenance", "StageAudit", "audit_store"]
