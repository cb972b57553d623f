"""Each run record against its raw log, its manifest and the journal: what the run observed,
and every way the record's story differs from those sources.

Why here: a decision is re-derived from observations, and an observation must come from
the runner's bytes, parsed under the runner kind the manifest froze (`ledger.provenance`),
never from the operator's record of them. `check_run` compares a record with its parsed
log, its manifest and the journal's timing, and returns the run as those sources say it
was (`observed`: the status and metrics the log supports, the stage, format and GPUs the
manifest fixes, the wall seconds the journal measured) with every problem found.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from audit.evidence import Evidence
from audit.locate import cell_words, run_place
from ledger.binding import log_binding_problems, same_json, status_problems
from ledger.errors import LedgerError
from ledger.log_records import LogHeader
from ledger.plan_model import Plan
from ledger.problems import Problem
from ledger.provenance import LogSource, log_source, run_gpus
from ledger.rawlog import METRICS, ParsedLog, failure_reason, parse_raw_log
from ledger.seeds import needs_witness, seed_rule


@dataclass
class RunCheck:
    """One run record checked against its log, its manifest and the journal."""

    id: str
    record: dict[str, Any]
    observed: dict[str, Any]  # the run as its log, manifest and journal say it was
    problems: list[Problem] = field(default_factory=list)
    simulated: bool = False  # the manifest's runner kind is the simulator
    reason: str = ""  # why a run that is not ok ended: the runner's error or stderr's last line
    log_started: str | None = None  # the header's `started_at`
    runner: str | None = None  # the manifest's runner kind (`builtin`, `sim`, `command`, ...)
    log: LogProvenance | None = None  # what the header says of how it was made


@dataclass(frozen=True)
class LogProvenance:
    """What a raw log's header says about how it was made (the report's provenance table)."""

    torch: str | None
    device: str | None
    runner: str | None
    runner_version: str | None

    @classmethod
    def of(cls, header: LogHeader) -> LogProvenance:
        return cls(header.torch, header.device, header.runner, header.runner_version)


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


def run_problem(
    rid: str,
    message: str,
    record: dict[str, Any],
    manifest: dict[str, Any] | None,
    *,
    check: str,
    recorded: Any = None,
    found: Any = None,
) -> Problem:
    """A finding about one run, naming its stage, condition, seed and host."""
    place = run_place(record, manifest or {})
    return Problem(rid, message, check=check, recorded=recorded, found=found, **asdict(place))


def check_run(
    ev: Evidence, rid: str, record: dict[str, Any], manifests: dict[str, dict[str, Any]]
) -> RunCheck:
    """Parse the record's raw log under its manifest's format and compare: metrics, status
    evidence, seconds against the journal, header binding, fields the plan fixes."""
    manifest_id = record.get("manifest")
    manifest = manifests.get(manifest_id) if isinstance(manifest_id, str) else None
    source = log_source(manifest) if manifest is not None else None
    fmt = source.fmt if source is not None else str(record.get("format", "jsonl"))

    def problem(message: str, check: str, recorded: Any = None, found: Any = None) -> Problem:
        return run_problem(
            rid, message, record, manifest, check=check, recorded=recorded, found=found
        )

    try:
        parsed = ev.parse_log(record, fmt)
    except LedgerError as exc:
        observed = {**record, "status": "crashed", "metrics": dict.fromkeys(METRICS)}
        found = _altered(ev, rid, record, manifest or {}, fmt) or problem(
            f"raw log unreadable: {exc}", "raw log intact"
        )
        return RunCheck(
            rid, record, observed, [found], reason="no evidence: its raw log is not intact"
        )
    timing = ev.timing.get(rid)
    interval = timing.interval_s if timing else None
    log = str(record.get("raw_log"))[:12]
    out = [problem(f"raw log {log}: {p}", "raw log parses") for p in parsed.defects]
    out += _metric_findings(record, parsed, problem)
    status = record.get("status")
    status_msgs: list[str] = []
    if manifest is not None and source is not None:
        out += _plan_findings(record, manifest, source, parsed, problem)
        status_msgs = status_problems(
            status,
            parsed,
            budget_s=float(manifest.get("budget_s") or 0),
            interval_s=interval,
            deadline_s=record.get("deadline_s"),
            simulated=source.simulated,
            trains_budget=source.trains_budget,
        )
        out += [problem(m, "status has evidence") for m in status_msgs]
        plan = ev.manifests[str(manifest_id)]
        witness = ev.seed_witness(str(manifest_id)) if needs_witness(seed_rule(plan)) else None
        out += [
            problem(f"raw log {log} {m}", "raw log binds to its run")
            for m in _binding(str(manifest_id), plan, record, parsed, witness)
        ]
        if timing is not None and timing.started is None:
            out.append(
                problem(
                    f"run {record.get('run')} has no run_started event", "run journaled at start"
                )
            )
    supported = (
        status
        if not status_msgs and status in ("ok", "diverged", "crashed", "timeout")
        else parsed.status
    )
    observed = observed_run(record, manifest, source, parsed, supported, interval)
    check = RunCheck(
        rid,
        record,
        observed,
        out,
        bool(source and source.simulated),
        runner=source.kind if source else None,
    )
    if parsed.header is not None:
        check.log_started = parsed.header.started_at
        check.log = LogProvenance.of(parsed.header)
    if supported != "ok":
        check.reason = _reason(ev, record, parsed)
    return check


def observed_run(
    record: dict[str, Any],
    manifest: dict[str, Any] | None,
    source: LogSource | None,
    parsed: ParsedLog,
    status: Any,
    interval_s: float | None,
) -> dict[str, Any]:
    """The run as its sources say it was: status and metrics from the log; stage, format
    and GPUs from the manifest; wall seconds from the journal (start to record), except for
    the simulator's runs and unplanned compute, which have no journaled interval to use."""
    observed = {**record, "status": status, "metrics": dict(parsed.metrics)}
    total = parsed.metrics.get("total_seconds")
    wall = total if isinstance(total, int | float) and not isinstance(total, bool) else None
    if manifest is not None and source is not None:
        observed.update(stage=manifest.get("stage"), format=source.fmt, gpus=run_gpus(manifest))
        if not source.simulated and interval_s is not None:
            wall = max(0.0, interval_s)
    observed["wall_seconds"] = wall
    return observed


def _plan_findings(
    record: dict[str, Any],
    manifest: dict[str, Any],
    source: LogSource,
    parsed: ParsedLog,
    problem: Any,
) -> list[Problem]:
    """Where the record says something the manifest (or the log) fixes otherwise."""
    out = []
    fields = (
        ("format", source.fmt, "log format"),
        ("stage", manifest.get("stage"), "booked stage"),
        ("gpus", run_gpus(manifest), "GPUs"),
    )
    for name, frozen, check in fields:
        if name in record and not same_json(record.get(name), frozen):
            out.append(
                problem(
                    f"record says {name} {record.get(name)!r}, but manifest "
                    f"{str(record.get('manifest'))[:12]} fixes {frozen!r}: the plan's is used",
                    check,
                    record.get(name),
                    frozen,
                )
            )
    if record.get("runner") != parsed.runner:
        out.append(
            problem(
                f"record says runner {record.get('runner')!r}, its log {parsed.runner!r}",
                "runner",
                record.get("runner"),
                parsed.runner,
            )
        )
    return out


def _binding(
    manifest_id: str,
    manifest: Plan,
    record: dict[str, Any],
    parsed: ParsedLog,
    witness: str | None,
) -> list[str]:
    return log_binding_problems(
        manifest_id,
        manifest,
        str(record.get("condition")),
        record.get("seed"),
        str(record.get("host")),
        parsed,
        status=parsed.status,
        witness=witness,
    )


def _metric_findings(record: dict[str, Any], parsed: ParsedLog, problem: Any) -> list[Problem]:
    """Every metric the record states must be what the log says; none may be missing."""
    recorded = record.get("metrics")
    check = "metrics match the raw log"
    if not isinstance(recorded, dict):
        return [problem("metrics is not an object", check)]
    out = []
    for key in sorted(set(METRICS) | set(recorded)):
        if key not in recorded:
            out.append(
                problem(
                    f"metrics lacks {key!r} (the log says {parsed.metrics.get(key)!r})",
                    check,
                    None,
                    parsed.metrics.get(key),
                )
            )
        elif key not in parsed.metrics:
            out.append(problem(f"metrics has {key!r}, which no log reports", check))
        elif not same_json(recorded[key], parsed.metrics[key]):
            out.append(
                problem(
                    f"the record says {key} {_value(recorded[key])}, raw log "
                    f"{str(record.get('raw_log'))[:12]} says {_value(parsed.metrics[key])}",
                    check,
                    recorded[key],
                    parsed.metrics[key],
                )
            )
    return out


def _altered(
    ev: Evidence, rid: str, record: dict[str, Any], manifest: dict[str, Any], fmt: str
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
        now = parse_raw_log(data, fmt)
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


__all__ = ["LogProvenance", "RunCheck", "check_run", "observed_run", "run_problem"]
