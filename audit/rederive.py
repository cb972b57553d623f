"""`ledger audit`: re-derive every number and decision from objects and journals alone.

Never trusts the index. Each finding names the object it concerns. The checks, per the brief:
changed bytes and bad signatures (via `ledger.verify`), runs that predate or do not cite their
manifest, declared runs missing or undeclared extras, decisions the frozen rule does not
reproduce from the raw logs, manifests replaced after runs began, journals that no longer
extend a published anchor, and GPU-hours that do not add up.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ledger.canonical import canonical_bytes
from ledger.errors import IntegrityError, LedgerError
from ledger.ingest import ParsedLog, parse_raw_log
from ledger.scan import Scan
from ledger.store import Store
from ledger.verify import verify_with_evidence
from stages.decide import SIGNING_FIELDS, derive_decision, run_key, select_runs

METRIC_KEYS = ("val_bpb", "training_seconds", "total_seconds", "num_steps")
ORCHESTRATOR_STATUSES = ("timeout", "crashed")
RUN_STATUSES = ("ok", "diverged", "crashed", "timeout")


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
    # Hash-checked bodies by kind ("manifest", "decision", "run") and id, so the report is
    # built from what the audit read instead of reading every object again. Not serialized.
    bodies: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict, repr=False,
                                                         compare=False)

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
    """Objects, raw logs and journal events loaded once, indexed for the checks.

    Built on the verify pass's scan (`_verify`), so each object's bytes are read and hashed
    once: JSON envelopes come parsed from the scan; every other intact object is read once
    more without re-hashing (its hash was just checked) to find envelopes the scan does not
    classify as such and to parse the raw logs the run records cite, each once per format.
    Objects the scan found corrupted or unreadable go through `store.get_bytes`, so their
    findings carry the same messages as before.
    """

    def __init__(self, store: Store, scan: Scan, journal_lines: dict[str, list[bytes]]) -> None:
        self.store = store
        self.objects: dict[str, dict[str, Any]] = {}
        self.unreadable: set[str] = set()
        self._logs: dict[tuple[str, str], ParsedLog | LedgerError] = {}
        self._paths = _object_paths(store)
        bad = self._bad = scan.bad
        for oid, obj in scan.objects.items():
            if oid not in bad:
                self.objects[oid] = obj
        wanted: dict[str, set[str]] = defaultdict(set)
        for obj in scan.objects.values():
            body = obj.get("body")
            if obj.get("kind") == "run" and isinstance(body, dict):
                raw_id, fmt = body.get("raw_log"), body.get("format", "jsonl")
                if isinstance(raw_id, str) and isinstance(fmt, str):
                    wanted[raw_id].add(fmt)
        for oid in sorted(scan.raw | bad):
            if oid in bad:
                try:
                    data = store.get_bytes(oid)
                except LedgerError:
                    self.unreadable.add(oid)
                    continue
            else:
                data = self._read(oid)
                if data is None:
                    continue
            self._take(oid, data)
            for fmt in wanted.get(oid, ()):
                self._logs[(oid, fmt)] = parse_raw_log(data, fmt)
        self.events: list[tuple[str, dict]] = []
        self._by: dict[tuple, list[tuple[str, dict]]] = defaultdict(list)
        for journal in store.journals():
            lines = journal_lines.get(journal.host)
            if lines is None:
                lines = journal.lines()[0]
            for i, line in enumerate(lines):
                try:
                    event = json.loads(line)
                except ValueError:
                    raise IntegrityError(
                        f"journal {journal.path}: line {i + 1} is not valid JSON") from None
                if not isinstance(event, dict):
                    raise IntegrityError(f"journal {journal.path}: line {i + 1} is not an event")
                item = (journal.host, event)
                self.events.append(item)
                kind = event.get("kind")
                self._by[(kind, "object", event.get("object"))].append(item)
                self._by[(kind, "manifest", event.get("manifest"))].append(item)
                self._by[(kind, "run", event.get("manifest"), event.get("run"))].append(item)
        self._kinds: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for oid, o in self.objects.items():
            self._kinds[o.get("kind")][oid] = o["body"]

    def _read(self, oid: str) -> bytes | None:
        """Bytes of an object the scan found intact (no re-hash), or None if it is gone."""
        path = self._paths.get(oid)
        if path is not None:
            try:
                with open(path, "rb") as fh:
                    return fh.read()
            except OSError:
                pass
        try:
            return self.store.get_bytes(oid)
        except LedgerError:
            self.unreadable.add(oid)
            return None

    def _take(self, oid: str, data: bytes) -> None:
        """Keep `data` as an object if it is a one-line JSON envelope (as the audit always did)."""
        if data[:1] == b"{" and b"\n" not in data.rstrip(b"\n"):
            try:
                obj = json.loads(data)
            except ValueError:
                return
            if isinstance(obj, dict) and "kind" in obj and "body" in obj:
                self.objects[oid] = obj

    def raw_log(self, raw_id: Any, fmt: str) -> ParsedLog:
        """The parsed raw log `raw_id` in format `fmt`, parsed once (LedgerError, with the
        message `store.get_bytes` gives, when it is missing, corrupted or unreadable)."""
        key = (raw_id, fmt) if isinstance(raw_id, str) and isinstance(fmt, str) else None
        hit = self._logs.get(key) if key is not None else None
        if hit is None:
            try:
                data = None
                if key is not None and raw_id in self._paths and raw_id not in self._bad:
                    data = self._read(raw_id)
                if data is None:
                    data = self.store.get_bytes(raw_id)
                hit = parse_raw_log(data, fmt)
            except LedgerError as exc:
                hit = exc
            if key is not None:
                self._logs[key] = hit
        if isinstance(hit, LedgerError):
            raise hit
        return hit

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return dict(self._kinds.get(kind, {}))

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


def _object_paths(store: Store) -> dict[str, str]:
    """id -> file of every object, the own part's copy first (as `Store.path_of` looks)."""
    parts = store.parts()
    order = [store.host] if store.host in parts else []
    order += [h for h in parts if h != store.host]
    paths: dict[str, str] = {}
    for host in order:
        base = os.path.join(store.parts_dir, host, "objects")
        try:
            fans = [e.path for e in os.scandir(base) if e.is_dir()]
        except OSError:
            continue
        for fan in fans:
            try:
                entries = list(os.scandir(fan))
            except OSError:
                continue
            for entry in entries:
                paths.setdefault(entry.name, entry.path)
    return paths


def _before(a: tuple[str, dict] | None, b: tuple[str, dict] | None) -> bool:
    """Whether event a happened before event b (same host: by seq; else by timestamp)."""
    if a is None or b is None:
        return False
    if a[0] == b[0]:
        return a[1]["seq"] < b[1]["seq"]
    return a[1].get("at", "") <= b[1].get("at", "")


def audit_store(store: Store, *, progress: bool = False) -> AuditResult:
    """Run every check; return findings (empty = clean) and per-stage verdicts."""
    verified = verify_with_evidence(store, check_index=False, progress=progress)
    findings = [Finding(p.object, p.message) for p in verified.problems]
    ev = _Evidence(store, verified.scan, verified.journal_lines)
    del verified
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
        findings += _check_run_log(ev, rid, body)

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
                       len(ev.objects), anchors,
                       bodies={"manifest": manifests, "decision": decisions, "run": runs})


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
        # an unknown status cannot come from ingest; it is reported by the run checks, and
        # costs count the run as crashed rather than stopping the audit
        "status": body.get("status") if body.get("status") in RUN_STATUSES else "crashed",
        "training_seconds": _seconds(metrics.get("training_seconds")),
        "total_seconds": _seconds(metrics.get("total_seconds")),
        "gpus": body["gpus"] if isinstance(body.get("gpus"), int) and body["gpus"] >= 1 else 1,
    }


def _seconds(value: Any) -> float:
    """Seconds as a finite non-negative float; anything else counts 0 (and is a run finding)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) and value >= 0 else 0.0


def _check_run_log(ev: _Evidence, rid: str, body: dict[str, Any]) -> list[Finding]:
    """Re-parse the raw log: metrics and status must be what the record says."""
    raw_id = body.get("raw_log")
    try:
        parsed = ev.raw_log(raw_id, body.get("format", "jsonl"))
    except LedgerError as exc:
        return [Finding(rid, f"raw log unreadable: {exc}")]
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
        started = _log_started(ev, run)
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


def _log_started(ev: _Evidence, run: dict[str, Any]) -> str | None:
    try:
        parsed = ev.raw_log(run["raw_log"], run.get("format", "jsonl"))
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
