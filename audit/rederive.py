"""`ledger audit`: re-derive every number and decision from objects and journals alone.

Never trusts the index. Each finding names the object it concerns. The checks, per the brief:
changed bytes and bad signatures (via `ledger.verify`), runs that predate or do not cite their
manifest, declared runs missing or undeclared extras, decisions the frozen rule does not
reproduce from the raw logs, manifests replaced after runs began, journals that no longer
extend a published anchor, and GPU-hours that do not add up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ledger.canonical import canonical_bytes
from ledger.ingest import parse_raw_log
from ledger.store import Store
from ledger.verify import verify

from ledger.errors import LedgerError
from stages.decide import SIGNING_FIELDS, derive_decision, run_key, select_runs

METRIC_KEYS = ("val_bpb", "training_seconds", "total_seconds", "num_steps")
ORCHESTRATOR_STATUSES = ("timeout", "crashed")


@dataclass
class Finding:
    """One audit problem: the object it concerns and what is wrong."""

    object: str
    message: str

    def __str__(self) -> str:
        return f"{self.object}: {self.message}"


@dataclass
class StageAudit:
    """Verdict and checks of one manifest (one frozen stage plan)."""

    campaign: str
    stage: str
    manifest: str
    decision: str | None
    budget_s: float
    amends: str | None
    superseded: bool
    checks: list[dict[str, Any]] = field(default_factory=list)
    runs: int = 0
    sim_runs: int = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append({"name": name, "ok": bool(ok), "detail": detail})
        return ok

    @property
    def ok(self) -> bool:
        return all(c["ok"] for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "stage": self.stage,
            "manifest": self.manifest,
            "decision": self.decision,
            "budget_s": self.budget_s,
            "amends": self.amends,
            "superseded": self.superseded,
            "runs": self.runs,
            "sim_runs": self.sim_runs,
            "verdict": "clean" if self.ok else "problems",
            "checks": self.checks,
        }


@dataclass
class AuditResult:
    """Everything `ledger audit` found, ready for JSON, text or the report."""

    findings: list[Finding]
    stages: list[StageAudit]
    unplanned: list[str]
    amendments: list[str]
    costs: dict[str, Any]
    objects: int
    anchors: int

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": "clean" if self.ok else "problems",
            "problems": [{"object": f.object, "message": f.message} for f in self.findings],
            "stages": [s.to_dict() for s in self.stages],
            "unplanned_runs": self.unplanned,
            "amendments": self.amendments,
            "costs": self.costs,
            "objects": self.objects,
            "anchors": self.anchors,
        }


class _Evidence:
    """Objects and journal events loaded once, indexed for the checks."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.objects: dict[str, dict[str, Any]] = {}
        self.unreadable: set[str] = set()
        for oid, _path in store.iter_objects():
            try:
                data = store.get_bytes(oid)
            except LedgerError:
                self.unreadable.add(oid)
                continue
            if data[:1] == b"{" and b"\n" not in data.rstrip(b"\n"):
                try:
                    obj = _json(data)
                except ValueError:
                    continue
                if isinstance(obj, dict) and "kind" in obj and "body" in obj:
                    self.objects[oid] = obj
        self.events: list[tuple[str, dict]] = []
        self._by: dict[tuple, list[tuple[str, dict]]] = defaultdict(list)
        for journal in store.journals():
            for event in journal.events():
                item = (journal.host, event)
                self.events.append(item)
                kind = event.get("kind")
                self._by[(kind, "object", event.get("object"))].append(item)
                self._by[(kind, "manifest", event.get("manifest"))].append(item)
                self._by[(kind, "run", event.get("manifest"), event.get("run"))].append(item)

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {oid: o["body"] for oid, o in self.objects.items() if o.get("kind") == kind}

    def events_for(self, kind: str, manifest: str) -> list[tuple[str, dict]]:
        return self._by.get((kind, "manifest", manifest), [])

    def first_event(
        self, kind: str, *, object: str | None = None, manifest: str | None = None,
        run: str | None = None,
    ) -> tuple[str, dict] | None:
        """Earliest journaled event of a kind for an object, or for a manifest's run key."""
        if object is not None:
            hits = self._by.get((kind, "object", object), [])
        else:
            hits = self._by.get((kind, "run", manifest, run), [])
        return min(hits, key=lambda he: he[1].get("at", "")) if hits else None


def _json(data: bytes) -> Any:
    import json

    return json.loads(data)


def _before(a: tuple[str, dict] | None, b: tuple[str, dict] | None) -> bool:
    """Whether event a happened before event b (same host: by seq; else by timestamp)."""
    if a is None or b is None:
        return False
    if a[0] == b[0]:
        return a[1]["seq"] < b[1]["seq"]
    return a[1].get("at", "") <= b[1].get("at", "")


def audit_store(store: Store, *, progress: bool = False) -> AuditResult:
    """Run every check; return findings (empty = clean) and per-stage verdicts."""
    findings = [Finding(p.object, p.message) for p in verify(store, check_index=False)]
    ev = _Evidence(store)
    manifests = ev.of_kind("manifest")
    runs = ev.of_kind("run")
    decisions = ev.of_kind("decision")
    runs_by_manifest: dict[str | None, list[tuple[str, dict]]] = defaultdict(list)
    for rid, body in runs.items():
        runs_by_manifest[body.get("manifest")].append((rid, body))
    decisions_by_manifest: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for did, body in decisions.items():
        decisions_by_manifest[body.get("manifest")].append((did, body))
    superseded = {b.get("amends") for b in manifests.values() if b.get("amends")}

    for rid, body in sorted(runs.items()):
        findings += _check_run_log(store, rid, body)

    stage_audits = []
    for mid, body in sorted(manifests.items(), key=lambda mb: (mb[1].get("frozen_at", ""), mb[0])):
        sa = StageAudit(
            campaign=body.get("campaign", "?"),
            stage=body.get("stage", "?"),
            manifest=mid,
            decision=None,
            budget_s=body.get("budget_s", 0),
            amends=body.get("amends"),
            superseded=mid in superseded,
        )
        findings += _check_manifest(ev, sa, mid, body, runs_by_manifest.get(mid, []),
                                    decisions_by_manifest.get(mid, []), manifests)
        stage_audits.append(sa)

    unplanned = sorted(rid for rid, _ in runs_by_manifest.get(None, []))
    from audit.costs import cost_breakdown

    cost_rows = [_cost_row(body, manifests) for body in runs.values()]
    costs = cost_breakdown(cost_rows)
    for check in costs.get("checks", []):
        if not check.get("ok"):
            findings.append(Finding("costs", f"GPU-hours do not add up: {check.get('name')}"))
    amendments = sorted(mid for mid, b in manifests.items() if b.get("amends"))
    anchors = sum(1 for _h, e in ev.events if e.get("kind") == "anchor")
    return AuditResult(findings, stage_audits, unplanned, amendments, costs,
                       len(ev.objects), anchors)


def _cost_row(body: dict[str, Any], manifests: dict[str, dict]) -> dict[str, Any]:
    metrics = body.get("metrics", {})
    manifest = manifests.get(body.get("manifest") or "", {})
    name = manifest.get("conditions", {}).get(body.get("condition"), {}).get("name")
    return {
        "stage": body.get("stage") or "(unplanned)",
        "condition": body.get("condition") or "?",
        "name": name or (body.get("condition") or "?")[:8],
        "host": body.get("host") or "?",
        "seed": body.get("seed") if body.get("seed") is not None else -1,
        "status": body.get("status", "crashed"),
        "training_seconds": float(metrics.get("training_seconds") or 0.0),
        "total_seconds": float(metrics.get("total_seconds") or 0.0),
        "gpus": int(body.get("gpus") or 1),
    }


def _check_run_log(store: Store, rid: str, body: dict[str, Any]) -> list[Finding]:
    """Re-parse the raw log: metrics and status must be what the record says."""
    raw_id = body.get("raw_log")
    try:
        raw = store.get_bytes(raw_id)
    except LedgerError as exc:
        return [Finding(rid, f"raw log unreadable: {exc}")]
    parsed = parse_raw_log(raw, body.get("format", "jsonl"))
    out = []
    recorded = body.get("metrics", {})
    for key in METRIC_KEYS:
        if key in recorded and recorded.get(key) != parsed.metrics.get(key):
            out.append(Finding(rid, f"{key} {recorded.get(key)!r} is not what raw log "
                                    f"{raw_id[:12]} says ({parsed.metrics.get(key)!r})"))
    status = body.get("status")
    if status != parsed.status and status not in ORCHESTRATOR_STATUSES:
        out.append(Finding(rid, f"status {status!r} but raw log {raw_id[:12]} says "
                                f"{parsed.status!r}"))
    manifest = body.get("manifest")
    if manifest and body.get("format", "jsonl") == "jsonl":
        header = parsed.header or {}
        if header.get("manifest") != manifest:
            out.append(Finding(rid, f"raw log {raw_id[:12]} does not cite manifest "
                                    f"{manifest[:12]} in its header"))
    return out


def _check_manifest(
    ev: _Evidence,
    sa: StageAudit,
    mid: str,
    body: dict[str, Any],
    runs: list[tuple[str, dict]],
    decisions: list[tuple[str, dict]],
    manifests: dict[str, dict],
) -> list[Finding]:
    out: list[Finding] = []
    frozen = ev.first_event("manifest_frozen", object=mid) or ev.first_event("amended", object=mid)
    if not sa.check("journaled", frozen is not None, "manifest freeze is in a journal"):
        out.append(Finding(mid, "manifest is not in any journal"))
    sa.runs = len(runs)
    sa.sim_runs = sum(1 for _r, b in runs if b.get("runner") == "sim")

    early = []
    for host, event in ev.events_for("run_started", mid):
        if frozen and not _before(frozen, (host, event)):
            early.append(event.get("run"))
    if not sa.check("runs started after freeze", not early,
                    f"{len(early)} run(s) started before the manifest was frozen" if early else ""):
        for key in early:
            out.append(Finding(mid, f"run {key} started before this manifest was frozen"))

    frozen_at = body.get("frozen_at", "")
    late_logs = []
    for rid, run in runs:
        started = _log_started(ev.store, run)
        if started and started < frozen_at:
            late_logs.append(rid)
    if not sa.check("logs after freeze", not late_logs,
                    f"{len(late_logs)} raw log(s) start before frozen_at" if late_logs else ""):
        for rid in late_logs:
            out.append(Finding(rid, f"raw log starts before manifest {mid[:12]} was frozen"))

    used, missing, extra = select_runs(mid, body, runs)
    unstarted = [
        k for k in used
        if ev.first_event("run_started", manifest=mid, run=k) is None
    ]
    if not sa.check("runs journaled at start", not unstarted,
                    f"{len(unstarted)} recorded run(s) have no start event" if unstarted else ""):
        for key in unstarted:
            out.append(Finding(used[key][0], f"run {key} has no run_started event"))
    if not sa.check("no undeclared runs", not extra, f"{len(extra)} extra" if extra else ""):
        for rid in extra:
            out.append(Finding(rid, f"run is not declared by manifest {mid[:12]}"))
    dupes = len(runs) - len(used) - len(extra)
    if not sa.check("no duplicate runs", dupes == 0, f"{dupes} duplicate(s)" if dupes else ""):
        out.append(Finding(mid, f"{dupes} run(s) recorded twice"))

    if sa.superseded:
        amended_by = [m for m, b in manifests.items() if b.get("amends") == mid]
        started = ev.events_for("run_started", mid)
        if not sa.check("not replaced after runs began", not started,
                        f"amended by {amended_by[0][:12]}" if amended_by else ""):
            out.append(Finding(mid, f"manifest was replaced by {amended_by[0][:12]} after "
                                    f"{len(started)} of its runs began"))
        return out

    if body.get("parent"):
        parent = ev.objects.get(body["parent"])
        ok = parent is not None and parent.get("kind") == "decision"
        if ok:
            ok = parent["body"].get("decided_at", "") <= frozen_at
        if not sa.check("parent decision precedes freeze", ok):
            out.append(Finding(mid, f"parent {body['parent'][:12]} is not a decision made "
                                    f"before this freeze"))

    if not decisions:
        sa.check("declared runs recorded", not missing,
                 f"{len(missing)} of {len(body.get('runs', []))} not recorded yet (undecided)")
        return out
    if len(decisions) > 1:
        out.append(Finding(mid, f"{len(decisions)} decisions cite this manifest"))
    did, recorded = sorted(decisions, key=lambda d: d[1].get("decided_at", ""))[0]
    sa.decision = did
    if missing and not recorded.get("missing"):
        out.append(Finding(did, f"declared runs missing: {', '.join(missing[:3])}"))
    sa.check("declared runs recorded", not missing,
             f"{len(missing)} declared run(s) missing" if missing else "")
    cited = [(rid, ev.objects[rid]["body"]) for rid in recorded.get("runs", [])
             if rid in ev.objects and ev.objects[rid].get("kind") == "run"]
    if len(cited) != len(recorded.get("runs", [])):
        out.append(Finding(did, "decision cites run records that do not exist"))
    expected_ids = sorted(rid for rid, _ in used.values())
    if not sa.check("decision cites exactly the declared runs",
                    sorted(recorded.get("runs", [])) == expected_ids,
                    f"cites {len(recorded.get('runs', []))}, declared and recorded "
                    f"{len(expected_ids)}"):
        out.append(Finding(did, f"decision cites {len(recorded.get('runs', []))} runs; the "
                                f"manifest's recorded declared runs are {len(expected_ids)}"))
    made = ev.first_event("decision_made", object=did)
    late = [rid for rid, _ in cited
            if not _before(ev.first_event("run_recorded", object=rid), made)]
    if not sa.check("decision after its runs", not late):
        out.append(Finding(did, f"decision was journaled before {len(late)} of its runs"))
    try:
        derived = derive_decision(mid, body, cited)
    except LedgerError as exc:
        out.append(Finding(did, f"cannot re-derive: {exc}"))
        sa.check("decision reproduces", False, str(exc))
        return out
    diffs = _diff(derived, {k: v for k, v in recorded.items() if k not in SIGNING_FIELDS})
    if not sa.check("decision reproduces from raw logs", not diffs,
                    "; ".join(diffs[:3])):
        for d in diffs[:5]:
            out.append(Finding(did, f"decision does not match the frozen rule: {d}"))
    return out


def _log_started(store: Store, run: dict[str, Any]) -> str | None:
    try:
        parsed = parse_raw_log(store.get_bytes(run["raw_log"]), run.get("format", "jsonl"))
    except (LedgerError, KeyError):
        return None
    return (parsed.header or {}).get("started_at")


def _diff(derived: Any, recorded: Any, path: str = "") -> list[str]:
    """Field-by-field differences, by canonical bytes (what was signed)."""
    if isinstance(derived, dict) and isinstance(recorded, dict):
        out = []
        for key in sorted(set(derived) | set(recorded)):
            out += _diff(derived.get(key), recorded.get(key), f"{path}.{key}" if path else key)
        return out
    if canonical_bytes({"v": derived}) == canonical_bytes({"v": recorded}):
        return []
    return [f"{path}: recorded {_short(recorded)}, re-derived {_short(derived)}"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


__all__ = ["AuditResult", "Finding", "StageAudit", "audit_store", "run_key"]
