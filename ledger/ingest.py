"""Recording runs: journal the start, store the raw log, write and journal a run record.

Why here and not in the executor: one writer. Workers only return raw bytes; ingest checks
that the log belongs to the manifest and the run was declared, and refuses a second record
for the same run, so resumed execution never records anything twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.canonical import canonical_bytes, check_object_id
from ledger.errors import LedgerError
from ledger.manifest import declared_run_keys, load_manifest
from ledger.rawlog import FORMATS, STATUSES, ParsedLog, parse_raw_log
from ledger.store import Store

__all__ = ["ParsedLog", "ingest", "is_recorded", "parse_raw_log", "record_run_start", "recorded_runs",
           "run_key"]


def run_key(condition: str, seed: int, host: str) -> str:
    """The `condition/seed/host` key naming one declared run."""
    return f"{condition}/{seed}/{host}"


# Manifests are immutable: a process that records many runs of one reads and hashes it once.
_MANIFESTS: dict[tuple[str, str], tuple[dict[str, Any], set[str]]] = {}


def _declared(store: Store, manifest: str, condition: Any, seed: Any, host: Any) -> tuple[
    dict[str, Any], str
]:
    check_object_id(manifest)
    cache_key = (str(store.root), manifest)
    if cache_key not in _MANIFESTS:
        if not store.exists(manifest):
            raise LedgerError(f"unknown manifest {manifest}")
        body = load_manifest(store, manifest)
        if len(_MANIFESTS) > 64:
            _MANIFESTS.clear()
        _MANIFESTS[cache_key] = (body, declared_run_keys(body))
    body, declared = _MANIFESTS[cache_key]
    if condition is None or seed is None or host is None:
        raise LedgerError("a run of a manifest needs --condition, --seed and --host")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise LedgerError(f"seed must be an integer, not {seed!r}")
    key = run_key(condition, seed, host)
    if key not in declared:
        raise LedgerError(f"run {key} is not declared in manifest {manifest}")
    return body, key


def record_run_start(
    store: Store, manifest: str, condition: str, seed: int, host: str
) -> dict[str, Any]:
    """Journal `run_started` for a declared run, before the runner launches."""
    _, key = _declared(store, manifest, condition, seed, host)
    return store.journal().append("run_started", run=key, manifest=manifest)


class _RecordedCache:
    """Incremental view of `run_recorded` events per journal file.

    Why: `ingest` refuses a second record of a run, and `ledger run` skips recorded runs;
    re-reading whole journals for every run made a stage of n runs cost O(n^2). Journals are
    append-only, so only the bytes after the last complete line seen are parsed; a file that
    shrank (a torn, unacknowledged tail was cut) or was replaced is read again from the start.
    """

    def __init__(self) -> None:
        self._state: dict[str, tuple[int, int, dict[str, dict[str, str]]]] = {}

    def runs(self, path: Path) -> dict[str, dict[str, str]]:
        import json

        key = str(path)
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._state.pop(key, None)
            return {}
        offset, inode, seen = self._state.get(key, (0, stat.st_ino, {}))
        if stat.st_size < offset or stat.st_ino != inode:
            offset, seen = 0, {}
        if stat.st_size > offset:
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read(stat.st_size - offset)
            cut = chunk.rfind(b"\n") + 1
            for line in chunk[:cut].splitlines():
                if b'"run_recorded"' not in line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if (isinstance(event, dict) and event.get("kind") == "run_recorded"
                        and event.get("manifest") and event.get("run")):
                    seen.setdefault(event["manifest"], {}).setdefault(
                        event["run"], event.get("object"))
            offset += cut
        self._state[key] = (offset, stat.st_ino, seen)
        return seen


_RECORDED = _RecordedCache()


def recorded_runs(store: Store, manifest: str) -> dict[str, str]:
    """run key -> run record id for every run journaled as recorded under `manifest`."""
    out: dict[str, str] = {}
    for journal in store.journals():
        for run, record in _RECORDED.runs(journal.path).get(manifest, {}).items():
            out.setdefault(run, record)
    return out


def is_recorded(store: Store, manifest: str, run: str) -> bool:
    """Whether `run` is journaled as recorded under `manifest` (no copy of the whole set,
    so checking each of a stage's n runs stays O(n), not O(n^2))."""
    return any(run in _RECORDED.runs(j.path).get(manifest, {}) for j in store.journals())


def ingest(
    store: Store,
    raw: bytes,
    *,
    fmt: str = "jsonl",
    manifest: str | None = None,
    condition: str | None = None,
    seed: int | None = None,
    host: str | None = None,
    stage: str | None = None,
    gpus: int = 1,
    status_override: str | None = None,
) -> str:
    """Store a raw log and its run record; journal `run_recorded`; return the record id."""
    if not isinstance(raw, bytes | bytearray):
        raise LedgerError("raw log must be bytes")
    if fmt not in FORMATS:
        raise LedgerError(f"unknown log format {fmt!r} (expected {' or '.join(FORMATS)})")
    if status_override is not None and status_override not in STATUSES:
        raise LedgerError(f"unknown status {status_override!r}")
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 1:
        raise LedgerError(f"gpus must be a positive integer, not {gpus!r}")
    parsed = parse_raw_log(bytes(raw), fmt)
    status = status_override or parsed.status
    key: str | None = None
    if manifest is not None:
        body, key = _declared(store, manifest, condition, seed, host)
        stage = stage if stage is not None else body.get("stage")
        cites = parsed.header is not None or status == "ok"
        if fmt == "jsonl" and cites and parsed.manifest != manifest:
            raise LedgerError(
                f"log does not cite manifest {manifest} (its header says {parsed.manifest})"
            )
        if is_recorded(store, manifest, key):
            raise LedgerError(f"run already recorded: {key} of manifest {manifest}")
    elif condition is not None and seed is not None and host is not None:
        key = run_key(condition, seed, host)
    record = {
        "manifest": manifest,
        "stage": stage,
        "condition": condition,
        "seed": seed,
        "host": host,
        "run": key,
        "raw_log": None,
        "format": fmt,
        "runner": parsed.runner,
        "status": status,
        "metrics": parsed.metrics,
        "gpus": gpus,
        "recorded_at": datetime.now(UTC).isoformat(timespec="microseconds"),
    }
    canonical_bytes(record)  # refuse unencodable values before anything is written
    record["raw_log"] = store.put_bytes(bytes(raw))
    record_id = store.put_unsigned("run", record)
    store.journal().append("run_recorded", object=record_id, run=key, manifest=manifest)
    return record_id
