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

from dataclasses import asdict, dataclass
from typing import Any, cast

from audit.evidence import Evidence
from audit.locate import Place, cell_words, run_place
from ledger.binding import log_binding_problems, same_json, status_problems
from ledger.documents import Number, RunMetrics, RunRecord, Status
from ledger.errors import LedgerError
from ledger.log_records import LogHeader
from ledger.plan_model import Manifest
from ledger.problems import Problem
from ledger.provenance import LogSource, log_source, run_gpus
from ledger.rawlog import METRICS, ParsedLog, failure_reason, parse_raw_log
from ledger.seeds import needs_witness, seed_rule

SORTED_METRICS = sorted(METRICS)  # the order the metric findings are listed in


@dataclass(frozen=True)
class ObservedRun:
    """A run as its sources say it was, read as a decision reads a record
    (`stages.observations.RecordedRun`): which run the record claims to be (manifest,
    condition, seed, host, when recorded), the status and metrics its raw log supports, the
    stage, log format and GPUs its manifest fixes (the record's own for unplanned compute),
    and the wall seconds the journal measured (None where there is no such measurement).

    What the audit re-derives decisions, costs and reports from; never the record's numbers."""

    manifest: str | None
    condition: str | None
    seed: int | None
    host: str | None
    recorded_at: str
    status: Status
    metrics: RunMetrics
    stage: str | None
    format: str
    gpus: int
    wall_seconds: float | None

    def value(self, metric: str) -> Number | None:
        """The log's value of `metric` (None when it gives none)."""
        return getattr(self.metrics, metric) if metric in RunMetrics.model_fields else None

    @classmethod
    def of(
        cls,
        record: RunRecord,
        status: Status,
        metrics: RunMetrics,
        stage: str | None,
        fmt: str,
        gpus: int,
        wall_seconds: float | None,
    ) -> ObservedRun:
        """The run `record` claims to be, with what its sources say of it."""
        return cls(
            record.manifest,
            record.condition,
            record.seed,
            record.host,
            record.recorded_at,
            status,
            metrics,
            stage,
            fmt,
            gpus,
            wall_seconds,
        )


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


# What a forked worker sends back for one run (`RunCheck.found`): the observation's own part
# (status, metrics, stage, format, GPUs, wall seconds: never what the record already says),
# the problems, whether simulated, why it failed, the log's start, runner kind and provenance.
Found = tuple[
    tuple[Status, RunMetrics, str | None, str, int, float | None],
    list[Problem],
    bool,
    str,
    str | None,
    str | None,
    LogProvenance | None,
]


@dataclass
class RunCheck:
    """One run record checked against its log, its manifest and the journal."""

    id: str
    record: RunRecord  # the accepted record, as signed: what the operator claims
    observed: ObservedRun  # the run as its log, manifest and journal say it was
    problems: list[Problem]
    simulated: bool = False  # the manifest's runner kind is the simulator
    reason: str = ""  # why a run that is not ok ended: the runner's error or stderr's last line
    log_started: str | None = None  # the header's `started_at`
    runner: str | None = None  # the manifest's runner kind (`builtin`, `sim`, `command`, ...)
    log: LogProvenance | None = None  # what the header says of how it was made

    @property
    def found(self) -> Found:
        """What the check found, less what the record says (a forked worker sends this
        back for each run; the parent holds the record already)."""
        o = self.observed
        return (
            (o.status, o.metrics, o.stage, o.format, o.gpus, o.wall_seconds),
            self.problems,
            self.simulated,
            self.reason,
            self.log_started,
            self.runner,
            self.log,
        )

    @classmethod
    def of_found(cls, rid: str, record: RunRecord, found: Found) -> RunCheck:
        """The check of `record` from what a worker found (`found`)."""
        derived, problems, simulated, reason, started, runner, log = found
        observed = ObservedRun.of(record, *derived)
        return cls(rid, record, observed, problems, simulated, reason, started, runner, log)


def run_problem(
    rid: str,
    message: str,
    place: Place,
    *,
    check: str,
    recorded: Any = None,
    found: Any = None,
) -> Problem:
    """A finding about one run, naming its stage, condition, seed and host."""
    return Problem(rid, message, check=check, recorded=recorded, found=found, **asdict(place))


def check_run(
    ev: Evidence, rid: str, record: RunRecord, manifests: dict[str, Manifest]
) -> RunCheck:
    """Parse the record's raw log under its manifest's format and compare: metrics, status
    evidence, seconds against the journal, header binding, fields the plan fixes."""
    manifest_id = record.manifest
    manifest = manifests.get(manifest_id) if manifest_id is not None else None
    source = log_source(manifest) if manifest is not None else None
    fmt = source.fmt if source is not None else record.format

    def problem(message: str, check: str, recorded: Any = None, found: Any = None) -> Problem:
        place = run_place(record, manifest)
        return run_problem(rid, message, place, check=check, recorded=recorded, found=found)

    try:
        parsed = ev.parse_log(record.raw_log, fmt)
    except LedgerError as exc:
        found = _altered(ev, rid, record, manifest, fmt) or problem(
            f"raw log unreadable: {exc}", "raw log intact"
        )
        observed = observed_run(record, None, None, ParsedLog(), "crashed", None)
        return RunCheck(
            rid, record, observed, [found], reason="no evidence: its raw log is not intact"
        )
    timing = ev.timing.get(rid)
    interval = timing.interval_s if timing else None
    log = record.raw_log[:12]
    out = [problem(f"raw log {log}: {p}", "raw log parses") for p in parsed.defects]
    out += _metric_findings(record, parsed, problem)
    status_msgs: list[str] = []
    if manifest_id is not None and manifest is not None and source is not None:
        out += _plan_findings(record, manifest, source, parsed, problem)
        status_msgs = status_problems(
            record.status,
            parsed,
            budget_s=float(manifest.budget_s),
            interval_s=interval,
            deadline_s=record.deadline_s,
            simulated=source.simulated,
            trains_budget=source.trains_budget,
        )
        out += [problem(m, "status has evidence") for m in status_msgs]
        witness = ev.seed_witness(manifest_id) if needs_witness(seed_rule(manifest)) else None
        out += [
            problem(f"raw log {log} {m}", "raw log binds to its run")
            for m in _binding(ev, manifest_id, record, parsed, witness)
        ]
        if timing is not None and timing.started is None:
            out.append(
                problem(f"run {record.run} has no run_started event", "run journaled at start")
            )
    # the record's status where the log supports it, else what the log itself says
    supported = record.status if not status_msgs else cast(Status, parsed.status)
    header = parsed.header
    return RunCheck(
        rid,
        record,
        observed_run(record, manifest, source, parsed, supported, interval),
        out,
        bool(source and source.simulated),
        _reason(ev, record, parsed) if supported != "ok" else "",
        header.started_at if header is not None else None,
        source.kind if source else None,
        LogProvenance.of(header) if header is not None else None,
    )


def observed_run(
    record: RunRecord,
    manifest: Manifest | None,
    source: LogSource | None,
    parsed: ParsedLog,
    status: Status,
    interval_s: float | None,
) -> ObservedRun:
    """The run as its sources say it was: status and metrics from the log; stage, format
    and GPUs from the manifest; wall seconds from the journal (start to record), except for
    the simulator's runs and unplanned compute, which have no journaled interval to use."""
    metrics = RunMetrics.model_validate(parsed.metrics)
    total = metrics.total_seconds
    wall = float(total) if total is not None else None
    stage, fmt, gpus = record.stage, record.format, record.gpus
    if manifest is not None and source is not None:
        stage, fmt, gpus = manifest.stage, source.fmt, run_gpus(manifest)
        if not source.simulated and interval_s is not None:
            wall = max(0.0, interval_s)
    return ObservedRun.of(record, status, metrics, stage, fmt, gpus, wall)


def _plan_findings(
    record: RunRecord,
    manifest: Manifest,
    source: LogSource,
    parsed: ParsedLog,
    problem: Any,
) -> list[Problem]:
    """Where the record says something the manifest (or the log) fixes otherwise."""
    out = []
    fields = (
        ("format", record.format, source.fmt, "log format"),
        ("stage", record.stage, manifest.stage, "booked stage"),
        ("gpus", record.gpus, run_gpus(manifest), "GPUs"),
    )
    for name, said, frozen, check in fields:
        if not same_json(said, frozen):
            out.append(
                problem(
                    f"record says {name} {said!r}, but manifest "
                    f"{str(record.manifest)[:12]} fixes {frozen!r}: the plan's is used",
                    check,
                    said,
                    frozen,
                )
            )
    if record.runner != parsed.runner:
        out.append(
            problem(
                f"record says runner {record.runner!r}, its log {parsed.runner!r}",
                "runner",
                record.runner,
                parsed.runner,
            )
        )
    return out


def _binding(
    ev: Evidence,
    manifest_id: str,
    record: RunRecord,
    parsed: ParsedLog,
    witness: str | None,
) -> list[str]:
    return log_binding_problems(
        manifest_id,
        ev.manifests[manifest_id],
        str(record.condition),
        record.seed,
        str(record.host),
        parsed,
        status=parsed.status,
        witness=witness,
    )


def _metric_findings(record: RunRecord, parsed: ParsedLog, problem: Any) -> list[Problem]:
    """Every metric the record states must be what the log says; none may be missing."""
    stated = record.metrics.model_fields_set  # the keys the record's body has
    check = "metrics match the raw log"
    out = []
    for key in SORTED_METRICS:
        found, said = parsed.metrics[key], record.value(key)
        if key not in stated:
            out.append(
                problem(f"metrics lacks {key!r} (the log says {found!r})", check, None, found)
            )
        elif not same_json(said, found):
            out.append(
                problem(
                    f"the record says {key} {_value(said)}, raw log "
                    f"{record.raw_log[:12]} says {_value(found)}",
                    check,
                    said,
                    found,
                )
            )
    return out


def _altered(
    ev: Evidence,
    rid: str,
    record: RunRecord,
    manifest: Manifest | None,
    fmt: str,
) -> Problem | None:
    """The root cause, in words, when a run's raw log no longer hashes to its id: what the
    record says against what the altered bytes now say. The altered bytes are read only to
    say what changed; they are never evidence (the run counts as having no log)."""
    raw = record.raw_log
    data = ev.damaged_bytes(raw)
    if data is None:
        return None
    where = cell_words(run_place(record, manifest))
    head = f"the raw log {raw[:12]} of {where} was altered (its bytes no longer hash to its id)"
    try:
        now = parse_raw_log(data, fmt)
    except LedgerError as exc:
        return Problem(rid, f"{head} and no longer parses: {exc}", check="raw log intact")
    metric = manifest.metric if manifest is not None else "val_bpb"
    keys = [metric] + [k for k in METRICS if k != metric]
    changed = [k for k in keys if not same_json(record.value(k), now.metrics[k])]
    if not changed:
        return Problem(rid, f"{head}; its metrics still read as recorded", check="raw log intact")
    said = "; ".join(
        f"the record says {k} {_value(record.value(k))}, the log now says {_value(now.metrics[k])}"
        for k in changed
    )
    return Problem(
        rid,
        f"{head}: {said}",
        check="raw log intact",
        recorded=record.value(changed[0]),
        found=now.metrics[changed[0]],
    )


def _value(value: Any) -> str:
    """A metric as a reader compares it: 4 decimals for fractions, else as it is."""
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:g}"
    return "missing" if value is None else str(value)


def _reason(ev: Evidence, record: RunRecord, parsed: ParsedLog) -> str:
    """The runner's own error, else the last line of the stderr kept with the run."""
    stderr = None
    if record.stderr is not None:
        try:
            stderr = ev.raw_bytes(record.stderr)
        except LedgerError:
            stderr = None
    return failure_reason(parsed, stderr)


__all__ = [
    "LogProvenance",
    "ObservedRun",
    "RunCheck",
    "Found",
    "check_run",
    "observed_run",
    "run_problem",
]
