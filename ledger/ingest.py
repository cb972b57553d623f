"""Recording runs: journal the start, store the raw log, write and journal a run record.

Why here and not in the executor: one writer. Workers only return raw bytes; ingest checks
that the log belongs to the manifest and the run was declared, and refuses a second record
for the same run, so resumed execution never records anything twice.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.binding import log_binding_problems, status_problems
from ledger.canonical import canonical_bytes, check_object_id
from ledger.documents import JournalEvent
from ledger.errors import (
    AlreadyRecorded,
    ConfigError,
    LedgerError,
    LogRefused,
    SigningKeyError,
    UndeclaredRun,
    UnknownObject,
)
from ledger.journal import parse_event
from ledger.keys import SigningKey
from ledger.manifest import declared_run_keys, load_manifest, signs_records
from ledger.plan_model import Manifest, Plan
from ledger.provenance import LogSource, log_source, run_gpus
from ledger.rawlog import FORMATS, STATUSES, ParsedLog, parse_raw_log
from ledger.run_key import RunKey
from ledger.seeds import needs_witness, seed_rule
from ledger.store import Store
from ledger.witness_seed import store_witness

__all__ = [
    "ParsedLog",
    "attempts_so_far",
    "check_log",
    "every_reason",
    "grouped_reasons",
    "ingest",
    "log_defects",
    "is_recorded",
    "open_attempts",
    "parse_raw_log",
    "record_run_start",
    "recorded_runs",
    "run_problems",
    "seconds_between",
    "started_at",
]


# Manifests are immutable: a process that records many runs of one reads and hashes it once.
_MANIFESTS: dict[tuple[str, str], tuple[Manifest, set[str]]] = {}


def _declared(
    store: Store, manifest: str, condition: Any, seed: Any, host: Any
) -> tuple[Manifest, str]:
    check_object_id(manifest)
    cache_key = (str(store.root), manifest)
    if cache_key not in _MANIFESTS:
        if not store.exists(manifest):
            raise UnknownObject(f"unknown manifest {manifest}")
        body = load_manifest(store, manifest)
        if len(_MANIFESTS) > 64:
            _MANIFESTS.clear()
        _MANIFESTS[cache_key] = (body, declared_run_keys(body))
    body, declared = _MANIFESTS[cache_key]
    if condition is None or seed is None or host is None:
        raise ConfigError("a run of a manifest needs --condition, --seed and --host")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an integer, not {seed!r}")
    key = str(RunKey(condition, seed, host))
    if key not in declared:
        raise UndeclaredRun(f"run {key} is not declared in manifest {manifest}")
    return body, key


def record_run_start(
    store: Store,
    manifest: str,
    condition: str,
    seed: int,
    host: str,
    *,
    key: SigningKey | None = None,
) -> JournalEvent:
    """Journal `run_started` for a declared run, before the runner launches (the journal's
    head signed with `key`, when given)."""
    _, run = _declared(store, manifest, condition, seed, host)
    return store.journal().append("run_started", run=run, manifest=manifest, key=key)


TAIL_BYTES = 256  # what the cache re-reads to see that the bytes it parsed are still there


def _same_tail(handle: Any, offset: int, tail: bytes) -> bool:
    """Whether the bytes just before `offset` are still `tail` (a journal rewritten in
    place, even to a larger size, is read again from the start)."""
    if not tail:
        return offset == 0
    handle.seek(offset - len(tail))
    return handle.read(len(tail)) == tail


class _RecordedCache:
    """Incremental view of `run_started` and `run_recorded` events per journal file.

    Why: `ingest` refuses a second record of a run, and `ledger run` skips recorded runs;
    re-reading whole journals for every run made a stage of n runs cost O(n^2). Journals are
    append-only, so only the bytes after the last complete line seen are parsed; a file that
    shrank (a torn, unacknowledged tail was cut) or was replaced is read again from the start.
    Starts are kept too (the latest per run): ingest measures a run's start-to-record time.
    """

    def __init__(self) -> None:
        self._state: dict[str, tuple[int, int, bytes, _Seen]] = {}

    def seen(self, path: Path) -> _Seen:
        key = str(path)
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._state.pop(key, None)
            return _Seen()
        offset, inode, tail, seen = self._state.get(key, (0, stat.st_ino, b"", _Seen()))
        with open(path, "rb") as handle:
            if (
                stat.st_size < offset
                or stat.st_ino != inode
                or not _same_tail(handle, offset, tail)
            ):
                offset, tail, seen = 0, b"", _Seen()  # cut, replaced or rewritten: read again
            if stat.st_size > offset:
                handle.seek(offset)
                chunk = handle.read(stat.st_size - offset)
                cut = chunk.rfind(b"\n") + 1
                for line in chunk[:cut].splitlines():
                    if b'"run_' in line:
                        seen.take(line)
                offset += cut
                tail = (tail + chunk[:cut])[-TAIL_BYTES:]
        self._state[key] = (offset, stat.st_ino, tail, seen)
        return seen

    def runs(self, path: Path) -> defaultdict[str, dict[str, str | None]]:
        return self.seen(path).recorded


class _Seen:
    """manifest -> run -> record id (first record), `at` of the latest start, and how many
    starts and interruptions the journal holds (a manifest with none maps to empty)."""

    def __init__(self) -> None:
        self.recorded: defaultdict[str, dict[str, str | None]] = defaultdict(dict)
        self.started: defaultdict[str, dict[str, str]] = defaultdict(dict)
        self.starts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.interrupted: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def take(self, line: bytes) -> None:
        """One journal line (one that is no event of the ledger's shape is skipped:
        `verify` names it)."""
        event = parse_event(line)
        if event is None or not event.manifest or not event.run:
            return
        if event.kind == "run_recorded":
            self.recorded[event.manifest].setdefault(event.run, event.object)
        elif event.kind == "run_started":
            self.started[event.manifest][event.run] = event.at
            self.starts[event.manifest][event.run] += 1
        elif event.kind == "run_interrupted":
            self.interrupted[event.manifest][event.run] += 1


_RECORDED = _RecordedCache()


def recorded_runs(store: Store, manifest: str) -> dict[str, str]:
    """run key -> run record id for every run journaled as recorded under `manifest`."""
    out: dict[str, str] = {}
    for journal in store.journals():
        for run, record in _RECORDED.runs(journal.path)[manifest].items():
            if record is not None:
                out.setdefault(run, record)
    return out


def is_recorded(store: Store, manifest: str, run: str) -> bool:
    """Whether `run` is journaled as recorded under `manifest` (no copy of the whole set,
    so checking each of a stage's n runs stays O(n), not O(n^2))."""
    return any(run in _RECORDED.runs(j.path)[manifest] for j in store.journals())


def started_runs(store: Store, manifest: str) -> dict[str, str]:
    """run key -> `at` of its latest journaled start under `manifest`, over every journal
    (what a progress view compares with `recorded_runs` to see what is running now)."""
    out: dict[str, str] = {}
    for journal in store.journals():
        for run, at in _RECORDED.seen(journal.path).started[manifest].items():
            if run not in out or at > out[run]:
                out[run] = at
    return out


def attempts_so_far(store: Store, manifest: str, run: str) -> int:
    """How many times `run` was started under `manifest`, over every journal."""
    return sum(_RECORDED.seen(j.path).starts[manifest][run] for j in store.journals())


def open_attempts(store: Store, manifest: str, host: str | None = None) -> dict[str, int]:
    """run key -> starts in this host's journal (or `host`'s) with no outcome (a record or
    an interruption)."""
    seen = _RECORDED.seen(store.journal(host).path)
    out = {}
    for run, started in seen.starts[manifest].items():
        closed = int(run in seen.recorded[manifest]) + seen.interrupted[manifest][run]
        if started > closed:
            out[run] = started - closed
    return out


def started_at(store: Store, manifest: str, run: str) -> str | None:
    """`at` of the latest journaled start of `run` in this host's journal (None if none)."""
    return _RECORDED.seen(store.journal().path).started[manifest].get(run)  # (may be none)


def seconds_between(start: str, end: str) -> float | None:
    """Seconds from one ISO-8601 timestamp to another (None if either does not parse)."""
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


STDERR_TAIL_BYTES = 64 * 1024


def every_reason(problems: list[str]) -> str:
    """All problems on one line (`grouped_reasons` joined), so nothing is left unsaid."""
    return "; ".join(grouped_reasons(problems))


def grouped_reasons(problems: list[str]) -> list[str]:
    """Each distinct problem once; per-line ones that say the same thing with their lines
    (`lines 2-4, 9: unknown record type None`), in the order first seen."""
    lines: dict[str, list[int]] = {}
    order: list[str] = []
    for problem in problems:
        match = _LINE.match(problem)
        text = match.group(2) if match else problem
        if text not in lines:
            lines[text] = []
            order.append(text)
        if match:
            lines[text].append(int(match.group(1)))
    return [f"{_line_ranges(lines[t])}{t}" for t in order]


_LINE = re.compile(r"^line (\d+): (.*)$", re.S)


def _line_ranges(numbers: list[int]) -> str:
    if not numbers:
        return ""
    spans: list[list[int]] = []
    for n in sorted(set(numbers)):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return f"line{'s' if len(numbers) > 1 else ''} {text}: "


def _refuse(what: str, problems: list[str]) -> LedgerError:
    return LogRefused(f"{what}: {every_reason(problems)}")


def log_defects(parsed: ParsedLog) -> list[str]:
    """What makes bytes no true run log: oversize, lines that are not JSON records, or
    records that contradict each other (`ParsedLog.defects`); empty for a true log."""
    return parsed.problems if parsed.oversize else parsed.defects


def check_log(parsed: ParsedLog) -> None:
    """Refuse bytes that are no true run log (`log_defects`), with every reason."""
    defects = log_defects(parsed)
    if defects:
        what = (
            f"raw log refused ({parsed.garbage} line(s) are not JSON records)"
            if parsed.garbage and not parsed.oversize
            else "raw log refused"
        )
        raise _refuse(what, defects)


def ingest(
    store: Store,
    raw: bytes,
    *,
    fmt: str | None = None,
    manifest: str | None = None,
    condition: str | None = None,
    seed: int | None = None,
    host: str | None = None,
    stage: str | None = None,
    gpus: int | None = None,
    status_override: str | None = None,
    stderr: bytes | None = None,
    deadline_s: float | None = None,
    exit_code: int | None = None,
    key: SigningKey | None = None,
) -> str:
    """Store a raw log and its run record (signed with `key`); journal `run_recorded`;
    return the record id.

    A run of a manifest takes its log format, stage and GPUs from the manifest
    (`ledger.provenance`): `fmt`, `stage` or `gpus` that say otherwise are refused, never
    recorded. Refused before anything is written (LedgerError, exit 2): bytes that are not
    a log (`check_log`), a header that does not belong to the declared run, a status its
    log does not support, or more seconds than the run has been going (`ledger.binding`),
    a run already recorded, and an unsigned record of a manifest whose records are signed.
    `stderr` (its last 64 KiB are kept) is stored beside the log so a crash carries its
    reason; `deadline_s` is the budget plus grace the orchestrator killed at (what a
    `timeout` is checked against; never earlier than the budget).
    """
    _check_arguments(raw, fmt, status_override, gpus)
    raw = bytes(raw)
    run_key_: str | None = None
    journal = store.journal()
    with journal.locked():
        if manifest is not None:
            body, run_key_ = _declared(store, manifest, condition, seed, host)
            source = _planned(body, manifest, fmt=fmt, stage=stage, gpus=gpus, key=key)
            fmt, stage, gpus = source.fmt, body.stage, run_gpus(body)
            parsed = _parsed(raw, fmt)
            status = status_override or parsed.status
            _check_binding(
                store,
                manifest,
                body,
                run_key_,
                parsed,
                status=status,
                condition=condition,
                seed=seed,
                host=host,
                deadline_s=deadline_s,
            )
        else:
            fmt, gpus = fmt or "jsonl", gpus or 1
            parsed = _parsed(raw, fmt)
            status = status_override or parsed.status
            if condition is not None and seed is not None and host is not None:
                run_key_ = str(RunKey(condition, seed, host))
        record: dict[str, Any] = {
            "manifest": manifest,
            "stage": stage,
            "condition": condition,
            "seed": seed,
            "host": host,
            "run": run_key_,
            "raw_log": None,
            "format": fmt,
            "runner": parsed.runner,
            "status": status,
            "metrics": parsed.metrics,
            "gpus": gpus,
            "recorded_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        }
        if deadline_s is not None:
            record["deadline_s"] = float(deadline_s)
        if exit_code is not None:
            record["exit_code"] = int(exit_code)
        if key is not None:
            record["recorder"] = key.key_id
        canonical_bytes(record)  # refuse unencodable values before anything is written
        record["raw_log"] = store.put_bytes(raw)
        if stderr:
            record["stderr"] = store.put_bytes(bytes(stderr[-STDERR_TAIL_BYTES:]))
        record_id = (
            store.put_signed("run", record, key)
            if key is not None
            else store.put_unsigned("run", record)
        )
        journal.append("run_recorded", object=record_id, run=run_key_, manifest=manifest, key=key)
    return record_id


def _parsed(raw: bytes, fmt: str) -> ParsedLog:
    parsed = parse_raw_log(raw, fmt)
    check_log(parsed)
    return parsed


def _planned(
    body: Manifest,
    manifest: str,
    *,
    fmt: str | None,
    stage: str | None,
    gpus: int | None,
    key: SigningKey | None,
) -> LogSource:
    """The manifest's log source; refuse a flag that contradicts the plan, and an unsigned
    record of a manifest whose records are signed."""
    source = log_source(body)
    where = f"manifest {manifest[:12]}"
    if fmt is not None and fmt != source.fmt:
        raise ConfigError(
            f"{where}'s runner ({source.kind}) writes {source.fmt} logs, not {fmt}: "
            f"the format comes from the plan"
        )
    if stage is not None and stage != body.stage:
        raise ConfigError(f"{where} is stage {body.stage!r}, not {stage!r}")
    if gpus is not None and gpus != run_gpus(body):
        raise ConfigError(
            f"{where} froze {run_gpus(body)} GPU(s) per run, not {gpus}: the plan fixes the GPUs"
        )
    if key is None and signs_records(body):
        raise SigningKeyError(
            f"{where} records signed runs: recording one needs the store's signing key"
        )
    return source


def _check_arguments(raw: Any, fmt: str | None, status_override: str | None, gpus: Any) -> None:
    """Refuse what the caller passed wrong, before a byte of the log is parsed."""
    if not isinstance(raw, bytes | bytearray):
        raise LedgerError("raw log must be bytes")
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"unknown log format {fmt!r} (expected {' or '.join(FORMATS)})")
    if status_override is not None and status_override not in STATUSES:
        raise ConfigError(f"unknown status {status_override!r}")
    if gpus is not None and (not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 1):
        raise ConfigError(f"gpus must be a positive integer, not {gpus!r}")


def run_problems(
    manifest_id: str,
    body: Plan,
    condition: str,
    seed: Any,
    host: str,
    parsed: ParsedLog,
    *,
    status: str,
    interval_s: float | None,
    deadline_s: float | None,
    witness: str | None = None,
) -> list[str]:
    """Every reason ingest refuses a declared run's log (empty: it records it): the log's
    binding to the run under the manifest's binding level, and the status's evidence
    (the interval checks skipped only where the manifest's runner kind is the simulator).
    Pure: `ledger try` asks the same of a trial run it never records. `witness` is the
    freeze token's digest a witness-bound seed rule needs."""
    problems = log_binding_problems(
        manifest_id, body, condition, seed, host, parsed, status=status, witness=witness
    )
    return problems + status_problems(
        status,
        parsed,
        budget_s=body.budget_s,
        interval_s=interval_s,
        deadline_s=deadline_s,
        simulated=log_source(body).simulated,
        trains_budget=log_source(body).trains_budget,
    )


def _check_binding(
    store: Store,
    manifest: str,
    body: Manifest,
    key: str,
    parsed: ParsedLog,
    *,
    status: str,
    condition: str | None,
    seed: int | None,
    host: str | None,
    deadline_s: float | None,
) -> None:
    """Refuse a log that is not the declared run's, a status it does not support, or a run
    already recorded (called under the journal lock, so two ingests cannot both pass)."""
    start = started_at(store, manifest, key)
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    interval = seconds_between(start, now) if start else None
    witness = store_witness(store, manifest) if needs_witness(seed_rule(body)) else None
    problems = run_problems(
        manifest,
        body,
        str(condition),
        seed,
        str(host),
        parsed,
        status=status,
        interval_s=interval,
        deadline_s=deadline_s,
        witness=witness.digest if witness else None,
    )
    if problems:
        raise _refuse(f"run {key} of manifest {manifest[:12]} refused", problems)
    if is_recorded(store, manifest, key):
        raise AlreadyRecorded(f"run already recorded: {key} of manifest {manifest}")
