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
from audit.locate import cell_words, run_place
from ledger.binding import is_simulated, log_binding_problems, same_json, status_problems
from ledger.errors import LedgerError
from ledger.problems import Problem
from ledger.rawlog import METRICS, ParsedLog, failure_reason, parse_raw_log


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
    log: LogProvenance | None = None  # what the header says of how it was made


@dataclass(frozen=True)
class LogProvenance:
    """What a raw log's header says about how it was made (the report's provenance table)."""

    torch: str | None
    device: str | None
    runner: str | None
    runner_version: str | None

    @classmethod
    def of(cls, header: dict[str, Any]) -> LogProvenance:
        def text(key: str) -> str | None:
            value = header.get(key)
            return value if isinstance(value, str) else None

        return cls(text("torch"), text("device"), text("runner"), text("runner_version"))


@dataclass(frozen=True)
class ObservedRun:
    """A run record with the status and metrics its raw log supports, as a decision reads
    it (`stages.observations.RecordedRun`); fields as the record holds them."""

    manifest: Any
    condition: Any
    seed: Any
    host: Any
    status: Any
    recorded_at: Any
    metrics: dict[str, Any]

    @classmethod
    def of(cls, observed: dict[str, Any]) -> ObservedRun:
        metrics = observed.get("metrics")
        return cls(
            observed.get("manifest"),
            observed.get("condition"),
            observed.get("seed"),
            observed.get("host"),
            observed.get("status"),
            observed.get("recorded_at") or "",
            metrics if isinstance(metrics, dict) else {},
        )

    def value(self, metric: str) -> Any:
        return self.metrics.get(metric)


def check_run(
    ev: Evidence, rid: str, record: dict[str, Any], manifests: dict[str, dict[str, Any]]
) -> RunCheck:
    """Parse the record's raw log and compare: metrics, status evidence, header binding."""
    manifest_id = record.get("manifest")
    manifest = manifests.get(manifest_id) if isinstance(manifest_id, str) else None
    try:
        parsed = ev.parse_log(record)
    except LedgerError as exc:
        observed = {**record, "status": "crashed", "metrics": dict.fromkeys(METRICS)}
        problem = _altered(ev, rid, record, manifest or {}) or Problem(
            rid, f"raw log unreadable: {exc}", check="raw log intact"
        )
        return RunCheck(
            rid, record, observed, [problem], reason="no evidence: its raw log is not intact"
        )
    timing = ev.timing.get(rid)
    out = [
        Problem(rid, f"raw log {str(record.get('raw_log'))[:12]}: {p}", check="raw log parses")
        for p in parsed.defects
    ]
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
        out += [Problem(rid, m, check="status has evidence") for m in status_msgs]
        out += [
            Problem(
                rid,
                f"raw log {str(record.get('raw_log'))[:12]} {m}",
                check="raw log binds to its run",
            )
            for m in _binding(str(manifest_id), manifest, record, parsed)
        ]
        if timing is not None and timing.started is None:
            out.append(
                Problem(
                    rid,
                    f"run {record.get('run')} has no run_started event",
                    check="run journaled at start",
                )
            )
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
        check.log = LogProvenance.of(parsed.header)
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
    check = "metrics match the raw log"
    if not isinstance(recorded, dict):
        return [Problem(rid, "metrics is not an object", check=check)]
    out = []
    for key in sorted(set(METRICS) | set(recorded)):
        if key not in recorded:
            out.append(
                Problem(
                    rid,
                    f"metrics lacks {key!r} (the log says {parsed.metrics.get(key)!r})",
                    check=check,
                    found=parsed.metrics.get(key),
                )
            )
        elif key not in parsed.metrics:
            out.append(Problem(rid, f"metrics has {key!r}, which no log reports", check=check))
        elif not same_json(recorded[key], parsed.metrics[key]):
            out.append(
                Problem(
                    rid,
                    f"the record says {key} {_value(recorded[key])}, raw log "
                    f"{str(record.get('raw_log'))[:12]} says {_value(parsed.metrics[key])}",
                    check=check,
                    recorded=recorded[key],
                    found=parsed.metrics[key],
                )
            )
    return out


def _altered(
    ev: Evidence, rid: str, record: dict[str, Any], manifest: dict[str, Any]
) -> Problem | None:
    """The root cause, in words, when a run's raw log no longer hashes to its id: what the
    record says against what the altered bytes now say. The altered bytes are read only to
    say what changed; they are never evidence (the run counts as having no log)."""
    raw = record.get("raw_log")
    data = ev.damaged_bytes(raw)
    if data is None:
        return None
    where = cell_words(run_place(record, manifest))
    head = (
        f"the raw log {str(raw)[:12]} of {where} was altered (its bytes no longer hash to its id)"
    )
    try:
        now = parse_raw_log(data, str(record.get("format", "jsonl")))
    except LedgerError as exc:
        return Problem(rid, f"{head} and no longer parses: {exc}", check="raw log intact")
    metrics = record.get("metrics")
    claimed: dict[str, Any] = metrics if isinstance(metrics, dict) else {}
    metric = str((manifest.get("analysis") or {}).get("metric") or "val_bpb")
    keys = [metric] + [k for k in METRICS if k != metric]
    changed = [
        k for k in keys if k in now.metrics and not same_json(claimed.get(k), now.metrics.get(k))
    ]
    if not changed:
        return Problem(rid, f"{head}; its metrics still read as recorded", check="raw log intact")
    said = "; ".join(
        f"the record says {k} {_value(claimed.get(k))}, the log now says {_value(now.metrics[k])}"
        for k in changed
    )
    return Problem(
        rid,
        f"{head}: {said}",
        check="raw log intact",
        recorded=claimed.get(changed[0]),
        found=now.metrics[changed[0]],
    )


def _value(value: Any) -> str:
    """A metric as a reader compares it: 4 decimals for fractions, else as it is."""
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:g}"
    return "missing" if value is None else str(value)


def _reason(ev: Evidence, record: dict[str, Any], parsed: ParsedLog) -> str:
    """The runner's own error, else the last line of the stderr kept with the run."""
    stderr = None
    if isinstance(record.get("stderr"), str):
        try:
            stderr = ev.raw_bytes(record["stderr"])
        except LedgerError:
            stderr = None
    return failure_reason(parsed, stderr)


__all__ = ["LogProvenance", "RunCheck", "check_run"]
