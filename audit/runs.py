"""Each run record against its raw log: what the log says, and whether it binds to the run.

Why here: a decision is re-derived from observations, and an observation must come from
the runner's bytes, not from the operator's record of them. `check_run` parses nothing
itself; it compares a record with its parsed log and the journal's timing, and returns the
observation as the log supports it (`observed`) together with every problem found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audit.evidence import Evidence
from ledger.binding import is_simulated, log_binding_problems, same_json, status_problems
from ledger.errors import LedgerError
from ledger.problems import Problem
from ledger.rawlog import METRICS, ParsedLog, failure_reason


@dataclass
class RunCheck:
    """One run record checked against its log."""

    id: str
    record: dict[str, Any]
    observed: dict[str, Any]  # the record with status and metrics as its log supports them
    problems: list[Problem] = field(default_factory=list)
    simulated: bool = False
    reason: str = ""  # why a run that is not ok ended: the runner's error or stderr's last line
    log_started: str | None = None  # the header's `started_at`
    runner: str | None = None  # which trainer the log says wrote it (`builtin`, `sim`, ...)
    header: dict[str, Any] | None = None  # the header's PROVENANCE_FIELDS, for the report


# What the report's provenance table shows of each log's header (`audit.summary.provenance`).
PROVENANCE_FIELDS = ("torch", "device", "runner", "runner_version")


def check_run(
    ev: Evidence, rid: str, record: dict[str, Any], manifests: dict[str, dict[str, Any]]
) -> RunCheck:
    """Parse the record's raw log and compare: metrics, status evidence, header binding."""
    try:
        parsed = ev.parse_log(record)
    except LedgerError as exc:
        observed = {**record, "status": "crashed", "metrics": dict.fromkeys(METRICS)}
        return RunCheck(rid, record, observed, [Problem(rid, f"raw log unreadable: {exc}")])
    timing = ev.timing.get(rid)
    manifest_id = record.get("manifest")
    manifest = manifests.get(manifest_id) if isinstance(manifest_id, str) else None
    out = [Problem(rid, f"raw log {str(record.get('raw_log'))[:12]}: {p}") for p in parsed.defects]
    out += _metric_findings(rid, record, parsed)
    status = record.get("status")
    status_msgs = []
    if manifest is not None:
        status_msgs = status_problems(
            status,
            parsed,
            budget_s=float(manifest.get("budget_s") or 0),
            interval_s=timing.interval_s if timing else None,
            deadline_s=record.get("deadline_s"),
        )
        out += [Problem(rid, m) for m in status_msgs]
        out += [
            Problem(rid, f"raw log {str(record.get('raw_log'))[:12]} {m}")
            for m in _binding(manifest_id, manifest, record, parsed)
        ]
        if timing is not None and timing.started is None:
            out.append(Problem(rid, f"run {record.get('run')} has no run_started event"))
    supported = (
        status
        if not status_msgs and status in ("ok", "diverged", "crashed", "timeout")
        else parsed.status
    )
    observed = {**record, "status": supported, "metrics": dict(parsed.metrics)}
    check = RunCheck(rid, record, observed, out, is_simulated(parsed), runner=parsed.runner)
    started = (parsed.header or {}).get("started_at")
    check.log_started = started if isinstance(started, str) else None
    if isinstance(parsed.header, dict):
        check.header = {k: parsed.header.get(k) for k in PROVENANCE_FIELDS}
    if supported != "ok":
        check.reason = _reason(ev, record, parsed)
    return check


def _binding(
    manifest_id: str, manifest: dict[str, Any], record: dict[str, Any], parsed: ParsedLog
) -> list[str]:
    return log_binding_problems(
        manifest_id,
        manifest,
        str(record.get("condition")),
        record.get("seed"),
        str(record.get("host")),
        parsed,
        status=parsed.status,
    )


def _metric_findings(rid: str, record: dict[str, Any], parsed: ParsedLog) -> list[Problem]:
    """Every metric the record states must be what the log says; none may be missing."""
    recorded = record.get("metrics")
    if not isinstance(recorded, dict):
        return [Problem(rid, "metrics is not an object")]
    out = []
    for key in sorted(set(METRICS) | set(recorded)):
        if key not in recorded:
            out.append(
                Problem(rid, f"metrics lacks {key!r} (the log says {parsed.metrics.get(key)!r})")
            )
        elif key not in parsed.metrics:
            out.append(Problem(rid, f"metrics has {key!r}, which no log reports"))
        elif not same_json(recorded[key], parsed.metrics[key]):
            out.append(
                Problem(
                    rid,
                    f"{key} {recorded[key]!r} is not what raw log "
                    f"{str(record.get('raw_log'))[:12]} says "
                    f"({parsed.metrics[key]!r})",
                )
            )
    return out


def _reason(ev: Evidence, record: dict[str, Any], parsed: ParsedLog) -> str:
    """The runner's own error, else the last line of the stderr kept with the run."""
    stderr = None
    if isinstance(record.get("stderr"), str):
        try:
            stderr = ev.raw_bytes(record["stderr"])
        except LedgerError:
            stderr = None
    return failure_reason(parsed, stderr)


__all__ = ["RunCheck", "check_run"]
