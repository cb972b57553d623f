"""A small store holding one of every kind of stored file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from ledger.anchor import make_anchor
from ledger.canonical import canonical_bytes, sha256_hex
from ledger.ingest import ingest, record_run_start
from ledger.keys import SigningKey, generate_key
from ledger.manifest import freeze
from ledger.store import Store

DATA = "d" * 64  # the data hash every plan and log of these tests names


def cid(i: int) -> str:
    """The id of condition `c{i}` of `make_plan()`: the hash of its config {"depth": 2 + i}."""
    return sha256_hex(canonical_bytes({"depth": 2 + i}))


C0, C1, C2 = cid(0), cid(1), cid(2)


def make_plan(n_conditions: int = 2, hosts: tuple[str, ...] = ("h1",)) -> dict:
    conds = {cid(i): {"name": f"c{i}", "config": {"depth": 2 + i}} for i in range(n_conditions)}
    runs = [{"condition": c, "seed": 0, "host": h} for c in conds for h in hosts]
    return {
        "campaign": "t",
        "stage": "screen",
        "budget_s": 60,
        "runs": runs,
        "conditions": conds,
        "rule": {"top_k": 1},
        "analysis": {"metric": "val_bpb"},
        # a command writing jsonl logs: bound by their headers, its time contract its own (the
        # builtin runner would have to train the whole budget: these logs take microseconds)
        "runner": {"kind": "command", "command": "train {config}", "format": "jsonl"},
        "data_sha256": DATA,
        "parent": None,
    }


def freeze_as_before(store: Store, plan: dict, key: SigningKey) -> str:
    """A manifest as `freeze` wrote it before run records were signed and attempts bounded
    (no `records`, no `max_attempts`): what an older store holds."""
    runs = sorted(plan["runs"], key=lambda r: (r["condition"], r["seed"], r["host"]))
    body = {
        **plan,
        "runs": runs,
        "frozen_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "freezer": key.key_id,
        "amends": None,
    }
    mid = store.put_signed("manifest", body, key)
    store.journal().append("manifest_frozen", object=mid)
    return mid


def make_log(
    manifest: str | None,
    val: float = 1.25,
    summary: bool = True,
    *,
    depth: int = 2,
    seed: int = 0,
    host: str = "h1",
    budget_s: float = 60,
    train_s: float = 0.0001,
) -> bytes:
    """A raw log bound to condition `cid(depth - 2)` of `make_plan()` in cell (seed, host).

    `train_s` is tiny: a record may not claim more training time than passed between its
    journaled start and its ingest.
    """
    header = {
        "type": "header",
        "manifest": manifest,
        "runner": "builtin",
        "depth": depth,
        "seed": seed,
        "host": host,
        "budget_s": budget_s,
        "data_sha256": DATA,
        "started_at": "2026-01-01T00:00:00Z",
    }
    lines = [
        json.dumps(header, separators=(",", ":")),
        '{"type":"step","step":1,"train_seconds":0.00005,"loss":3.0,"lr":0.01,"tokens":100}',
        f'{{"type":"step","step":2,"train_seconds":{train_s},"loss":2.5,"lr":0.01,"tokens":200}}',
    ]
    if summary:
        lines.append(f'{{"type":"eval","val_bpb":{val},"eval_tokens":10,"eval_bytes":10}}')
        lines.append(
            f'{{"type":"summary","status":"ok","val_bpb":{val},"training_seconds":{train_s},'
            '"total_seconds":0.0002,"num_steps":2,"total_tokens":200,"num_params":1000,'
            '"peak_mem_mb":null,"tokens_per_s":3.3,"mfu":null,"warmup_seconds":0,'
            '"eval_seconds":0}'
        )
    return ("\n".join(lines) + "\n").encode()


def decision_body(manifest: str, runs: list[str], promoted: list[str], key: SigningKey) -> dict:
    """The smallest body a decision of `make_plan()`'s stage can have (no statistics)."""
    return {
        "campaign": "t",
        "stage": "screen",
        "manifest": manifest,
        "budget_s": 60,
        "runs": sorted(runs),
        "missing": [],
        "extra": [],
        "statistics": {"conditions": [], "effects": None, "effects_note": None},
        "rule": {"top_k": 1},
        "outcome": {"promoted": promoted},
        "promoted": promoted,
        "conditions": {},
        "trace": [],
        "verdicts": [],
        "decided_at": datetime.now(UTC).isoformat(),
        "decider": key.key_id,
    }


@dataclass
class Filled:
    store: Store
    key: SigningKey
    manifest: str
    runs: list[str]
    decision: str
    anchor: str


@pytest.fixture
def store(tmp_path) -> Store:
    return Store.init(tmp_path / ".ledger", host="h1")


@pytest.fixture
def key() -> SigningKey:
    return generate_key("tester")


@pytest.fixture
def filled(store, key) -> Filled:
    manifest = freeze(store, make_plan(), key)
    runs = []
    for i, cond in enumerate((C0, C1)):
        record_run_start(store, manifest, cond, 0, "h1", key=key)
        runs.append(
            ingest(
                store,
                make_log(manifest, 1.2 + i / 10, depth=2 + i),
                manifest=manifest,
                condition=cond,
                seed=0,
                host="h1",
                key=key,
            )
        )
    decision = store.put_signed("decision", decision_body(manifest, runs, [C0], key), key)
    store.journal().append("decision_made", object=decision, manifest=manifest, key=key)
    anchor, _ = make_anchor(store, key)
    return Filled(store, key, manifest, runs, decision, anchor)
