"""The DuckDB index: a derived cache of objects and journals, with read-only SQL on top.

Why a cache: DuckDB files change format across versions, so the truth stays in objects and
journals; `reindex` rebuilds the file atomically from them alone, and `verify` compares the
index's table *contents* (not its bytes) with a fresh derivation.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from ledger.canonical import canonical_bytes, sha256_hex
from ledger.documents import PublicKeyRecord
from ledger.errors import QueryError, StorageError
from ledger.fsutil import TMP_PREFIX
from ledger.scan import Scan, scan_objects
from ledger.store import Store

INDEX_NAME = "index.duckdb"

SCHEMA: dict[str, list[tuple[str, str]]] = {
    "manifests": [
        ("id", "VARCHAR"),
        ("campaign", "VARCHAR"),
        ("stage", "VARCHAR"),
        ("budget_s", "DOUBLE"),
        ("parent", "VARCHAR"),
        ("frozen_at", "VARCHAR"),
        ("freezer", "VARCHAR"),
        ("amends", "VARCHAR"),
        ("n_runs", "BIGINT"),
    ],
    "runs": [
        ("id", "VARCHAR"),
        ("manifest", "VARCHAR"),
        ("stage", "VARCHAR"),
        ("condition", "VARCHAR"),
        ("seed", "BIGINT"),
        ("host", "VARCHAR"),
        ("status", "VARCHAR"),
        ("val_bpb", "DOUBLE"),
        ("training_seconds", "DOUBLE"),
        ("total_seconds", "DOUBLE"),
        ("gpus", "BIGINT"),
        ("runner", "VARCHAR"),
        ("raw_log", "VARCHAR"),
        ("recorded_at", "VARCHAR"),
    ],
    "decisions": [
        ("id", "VARCHAR"),
        ("manifest", "VARCHAR"),
        ("stage", "VARCHAR"),
        ("decided_at", "VARCHAR"),
        ("decider", "VARCHAR"),
        ("n_runs", "BIGINT"),
        ("promoted", "VARCHAR"),
    ],
    "events": [
        ("host", "VARCHAR"),
        ("seq", "BIGINT"),
        ("kind", "VARCHAR"),
        ("object", "VARCHAR"),
        ("run", "VARCHAR"),
        ("manifest", "VARCHAR"),
        ("at", "VARCHAR"),
        ("hash", "VARCHAR"),
    ],
    "keys": [("key_id", "VARCHAR"), ("name", "VARCHAR"), ("created_at", "VARCHAR")],
    "conditions": [
        ("manifest", "VARCHAR"),
        ("condition", "VARCHAR"),
        ("name", "VARCHAR"),
        ("config", "VARCHAR"),
    ],
}


def _coerce(value: Any, sql_type: str) -> Any:
    """Values as the column type holds them, so rebuilds compare equal."""
    if value is None:
        return None
    if sql_type == "DOUBLE":
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
    if sql_type == "BIGINT":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        return value
    return canonical_bytes(value).decode()


def _row(table: str, values: list[Any]) -> tuple:
    return tuple(_coerce(v, t) for v, (_, t) in zip(values, SCHEMA[table], strict=True))


# The body keys each table mirrors, in column order after `id`: the column is named for the
# key it holds. The index mirrors every stored body, including one that fails its model (verify
# reports that; the index must still derive the same rows), so a missing key is a NULL cell.
MANIFEST_KEYS = ("campaign", "stage", "budget_s", "parent", "frozen_at", "freezer", "amends")
RUN_KEYS = ("manifest", "stage", "condition", "seed", "host", "status")
RUN_METRIC_KEYS = ("val_bpb", "training_seconds", "total_seconds")
RUN_TAIL_KEYS = ("gpus", "runner", "raw_log", "recorded_at")
DECISION_KEYS = ("manifest", "stage", "decided_at", "decider")
EVENT_KEYS = ("seq", "kind", "object", "run", "manifest", "at")


def _mirror(doc: Any, keys: tuple[str, ...]) -> list[Any]:
    """The values under `keys` of an untrusted JSON object (None for a missing key or a non-object)."""
    if not isinstance(doc, dict):
        return [None] * len(keys)
    return [doc.get(key) for key in keys]


def _count(items: Any) -> int | None:
    return len(items) if isinstance(items, list) else None


def derive_rows(
    scan: Scan, journal_lines: dict[str, list[bytes]], keys: list[PublicKeyRecord]
) -> dict[str, list[tuple]]:
    """Every table's rows, from parsed objects, journal lines and key records alone."""
    rows: dict[str, list[tuple]] = {name: [] for name in SCHEMA}
    for oid, obj in sorted(scan.objects.items()):
        body, kind = obj["body"], obj["kind"]  # a scanned envelope has both (ledger.scan)
        if not isinstance(body, dict):
            continue
        if kind == "manifest":
            runs, conditions = _mirror(body, ("runs", "conditions"))
            row = [oid, *_mirror(body, MANIFEST_KEYS), _count(runs)]
            rows["manifests"].append(_row("manifests", row))
            if isinstance(conditions, dict):
                for cid, info in conditions.items():
                    row = [oid, cid, *_mirror(info, ("name", "config"))]
                    rows["conditions"].append(_row("conditions", row))
        elif kind == "run":
            (metrics,) = _mirror(body, ("metrics",))
            row = [
                oid,
                *_mirror(body, RUN_KEYS),
                *_mirror(metrics, RUN_METRIC_KEYS),
                *_mirror(body, RUN_TAIL_KEYS),
            ]
            rows["runs"].append(_row("runs", row))
        elif kind == "decision":
            head = _mirror(body, DECISION_KEYS)
            runs, promoted = _mirror(body, ("runs", "promoted"))
            rows["decisions"].append(_row("decisions", [oid, *head, _count(runs), promoted]))
    for host, lines in sorted(journal_lines.items()):
        for line in lines:
            try:
                ev = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(ev, dict):
                row = [host, *_mirror(ev, EVENT_KEYS), sha256_hex(line)]
                rows["events"].append(_row("events", row))
    for rec in keys:
        rows["keys"].append(_row("keys", [rec.key_id, rec.name, rec.created_at]))
    return rows


def rows_digest(rows: dict[str, list[tuple]]) -> str:
    """Order-independent digest of table contents."""
    digest = hashlib.sha256()
    for table in SCHEMA:
        encoded = sorted(json.dumps(list(r)) for r in rows[table])
        digest.update(f"{table}:{len(encoded)}\n".encode())
        for line in encoded:
            digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def _journal_lines(store: Store) -> dict[str, list[bytes]]:
    return {j.host: j.lines()[0] for j in store.journals()}


def index_path(store: Store) -> Path:
    return store.root / INDEX_NAME


def _write_db(path: Path, rows: dict[str, list[tuple]]) -> None:
    import duckdb  # duckdb: ~0.15 s at start-up, paid only where the index is read or written

    con = duckdb.connect(str(path))
    try:
        for table, cols in SCHEMA.items():
            spec = ", ".join(f'"{c}" {t}' for c, t in cols)
            con.execute(f"CREATE TABLE {table} ({spec})")
            data = rows[table]
            if not data:
                continue
            tmp = path.with_name(f"{path.name}.{table}.jsonl")
            with open(tmp, "w", encoding="utf-8") as fh:
                names = [c for c, _ in cols]
                for r in data:
                    fh.write(json.dumps(dict(zip(names, r, strict=True))) + "\n")
            columns = "{" + ", ".join(f"'{c}': '{t}'" for c, t in cols) + "}"
            con.execute(
                f"INSERT INTO {table} SELECT * FROM read_json(?, format='newline_delimited', "
                f"columns={columns})",
                [str(tmp)],
            )
            tmp.unlink()
        con.execute("CHECKPOINT")
    finally:
        con.close()


def reindex(store: Store, scan: Scan | None = None) -> Path:
    """Rebuild `root/index.duckdb` from objects and journals, atomically (temp + rename)."""
    import duckdb  # duckdb: ~0.15 s at start-up, paid only where the index is read or written

    scan = scan if scan is not None else scan_objects(store)
    rows = derive_rows(scan, _journal_lines(store), store.keyring().records())
    final = index_path(store)
    tmp = store.root / f"{TMP_PREFIX}index-{secrets.token_hex(4)}.duckdb"
    try:
        _write_db(tmp, rows)
        os.replace(tmp, final)
    except (OSError, duckdb.Error) as exc:
        for leftover in store.root.glob(f"{tmp.name}*"):
            leftover.unlink(missing_ok=True)
        raise StorageError(f"cannot write index {final}: {exc}") from None
    Path(str(tmp) + ".wal").unlink(missing_ok=True)
    return final


def index_digest(store: Store) -> str:
    """Digest of the existing index file's table contents (LedgerError if unreadable)."""
    import duckdb  # duckdb: ~0.15 s at start-up, paid only where the index is read or written

    path = index_path(store)
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise QueryError(f"index {path} cannot be opened: {_one_line(exc)}") from None
    try:
        rows = {}
        for table, cols in SCHEMA.items():
            names = ", ".join(f'"{c}"' for c, _ in cols)
            rows[table] = con.execute(f"SELECT {names} FROM {table}").fetchall()
    except duckdb.Error as exc:
        raise QueryError(f"index {path} is not a ledger index: {_one_line(exc)}") from None
    finally:
        con.close()
    return rows_digest(rows)


def fresh_digest(store: Store, scan: Scan | None = None) -> str:
    """Digest a rebuild would have, computed without writing anything."""
    scan = scan if scan is not None else scan_objects(store)
    return rows_digest(derive_rows(scan, _journal_lines(store), store.keyring().records()))


_READ_ONLY = re.compile(
    r"^\s*(\(\s*)*(select|with|from|values|describe|show|summarize|pragma\s+table_info)\b",
    re.IGNORECASE,
)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def index_stale(store: Store) -> bool:
    """Whether a journal changed after the index was built (a stale cache, not tampering)."""
    path = index_path(store)
    if not path.exists():
        return True
    mtime = path.stat().st_mtime
    return any(j.path.stat().st_mtime > mtime for j in store.journals())


def query(store: Store, sql: str) -> tuple[list[str], list[tuple]]:
    """Run one read-only statement on the index (rebuilt first if absent or stale)."""
    import duckdb  # duckdb: ~0.15 s at start-up, paid only where the index is read or written

    text = sql.strip().rstrip(";").strip()
    if not text or not _READ_ONLY.match(text) or ";" in text:
        raise QueryError("only one read-only query (SELECT or WITH ...) is allowed")
    if index_stale(store):
        reindex(store)
    try:
        con = duckdb.connect(
            str(index_path(store)), read_only=True, config={"enable_external_access": False}
        )
    except duckdb.Error as exc:
        raise QueryError(f"cannot open index: {_one_line(exc)}") from None
    try:
        cur = con.execute(text)
        columns = [d[0] for d in cur.description or []]
        return columns, cur.fetchall()
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {_one_line(exc)}") from None
    finally:
        con.close()
