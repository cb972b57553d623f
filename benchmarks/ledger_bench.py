"""Ledger micro-benchmarks: freeze, object put, journal append, and `verify` at scale.

Prints JSON. Not a test. `--sizes 1000,10000` (default) chooses the synthetic store sizes
for verify; 100000 takes a few minutes to generate (objects are written directly, without
per-file fsync, so generation time is not what is measured).

    python benchmarks/ledger_bench.py --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from ledger.canonical import canonical_bytes, sha256_hex
from ledger.journal import signed_head
from ledger.keys import generate_key
from ledger.manifest import freeze
from ledger.signing import sign_object
from ledger.store import Store
from ledger.verify import verify

RUNS_PER_MANIFEST = 1000


def _stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "n": len(ms),
        "mean_ms": round(statistics.fmean(ms), 3),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 3),
    }


def _plan(n_runs: int, tag: str) -> dict:
    configs = [{"depth": 2 + i % 4, "tag": f"{tag}{i:05d}"} for i in range(n_runs)]
    conds = {
        sha256_hex(canonical_bytes(config)): {"name": f"c{i}", "config": config}
        for i, config in enumerate(configs)
    }
    return {
        "campaign": "bench",
        "stage": tag,
        "budget_s": 120,
        "runs": [{"condition": c, "seed": 0, "host": "h1"} for c in conds],
        "conditions": conds,
        "rule": {"top_k": 4},
        "analysis": {},
        "runner": {"kind": "sim"},  # the simulator's logs: header runner "sim"
        "data_sha256": None,
        "parent": None,
    }


def bench_ops(root: Path, n: int = 200) -> dict:
    store = Store.init(root / "ops", host="h1")
    key = generate_key("bench", directory=root / "keys")
    puts, appends, freezes = [], [], []
    for i in range(n):
        data = os.urandom(512) + str(i).encode()
        t = time.perf_counter()
        store.put_bytes(data)
        puts.append(time.perf_counter() - t)
    journal = store.journal()
    for i in range(n):
        t = time.perf_counter()
        journal.append("run_started", run=f"c/{i}/h1", manifest="a" * 64)
        appends.append(time.perf_counter() - t)
    for i in range(min(n, 50)):
        plan = _plan(16, f"s{i}-")
        t = time.perf_counter()
        freeze(store, plan, key)
        freezes.append(time.perf_counter() - t)
    per_run = bench_per_run(store, key, n)
    return {
        "object_put": _stats(puts),
        "journal_append": _stats(appends),
        "freeze_16_runs": _stats(freezes),
        "per_run_overhead": per_run,
    }


def _raw_log(
    manifest: str, config: dict, seed: int, steps: int = 300, seconds: float = 0.0
) -> bytes:
    """A runner-shaped log (the simulator's kind, as the plan freezes it) bound to its run (config, seed, host h1, budget, manifest):
    header, `steps` step lines, eval, summary. `seconds` of training: ingest refuses more
    than have passed since the run's journaled start, so the per-run benchmark claims none."""
    lines = [
        {
            "type": "header",
            **config,
            "seed": seed,
            "host": "h1",
            "budget_s": 120,
            "runner": "sim",
            "manifest": manifest,
            "started_at": "2026-01-01T00:00:00Z",
        }
    ]
    lines += [
        {
            "type": "step",
            "step": i,
            "train_seconds": seconds * i / steps,
            "loss": 3.0 - i * 1e-3,
            "lr": 0.02,
            "tokens": i * 8192,
        }
        for i in range(1, steps + 1)
    ]
    lines += [
        {"type": "eval", "val_bpb": 1.9, "eval_tokens": 65536, "eval_bytes": 65536},
        {
            "type": "summary",
            "status": "ok",
            "val_bpb": 1.9,
            "training_seconds": seconds,
            "total_seconds": seconds,
            "num_steps": steps,
            "total_tokens": steps * 8192,
            "num_params": 10**6,
            "peak_mem_mb": 700.0,
            "tokens_per_s": 20000.0,
            "mfu": 0.3,
        },
    ]
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


def bench_per_run(store: Store, key, n: int) -> dict:
    """What the ledger adds to one run: journal its start, then ingest its log and record.

    Measured in a stage of `n` declared runs, recording them one after another, so any
    growth with the number of runs already recorded shows up in the p95.
    """
    from ledger.ingest import ingest, record_run_start

    plan = _plan(n, "per-run-")
    manifest = freeze(store, plan, key)
    samples = []
    for i, run in enumerate(plan["runs"]):
        raw = _raw_log(manifest, plan["conditions"][run["condition"]]["config"], 0)
        t = time.perf_counter()
        record_run_start(store, manifest, run["condition"], 0, "h1", key=key)
        ingest(
            store, raw, manifest=manifest, condition=run["condition"], seed=0, host="h1", key=key
        )
        samples.append(time.perf_counter() - t)
        _ = i
    out = _stats(samples)
    out["share_of_2min_run_pct"] = out["mean_ms"] / 1000 / 120 * 100
    return out


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def synth_store(root: Path, n_runs: int) -> Store:
    """A store of n_runs recorded runs (raw log + signed run record + two events each), as
    `ledger run` writes them since records are signed: verify checks every signature."""
    store = Store.init(root, host="h1")
    key = generate_key(f"synth{n_runs}", directory=root.parent / "keys")
    store.keyring().add(key.public_record())
    objects = store.root / "parts/h1/objects"
    lines: list[bytes] = []
    prev = "0" * 64

    def event(kind: str, obj: str | None, run: str | None, manifest: str | None) -> None:
        nonlocal prev
        line = canonical_bytes(
            {
                "seq": len(lines),
                "prev": prev,
                "kind": kind,
                "object": obj,
                "run": run,
                "manifest": manifest,
                "at": "2026-01-01T00:00:00.000000+00:00",
            }
        )
        lines.append(line)
        prev = sha256_hex(line)

    for start in range(0, n_runs, RUNS_PER_MANIFEST):
        plan = _plan(min(RUNS_PER_MANIFEST, n_runs - start), f"m{start}-")
        body = {
            **plan,
            "max_attempts": 1,
            "frozen_at": "2026-01-01T00:00:00+00:00",
            "freezer": key.key_id,
            "amends": None,
            "records": "signed",
        }
        data = canonical_bytes(sign_object("manifest", body, key))
        mid = sha256_hex(data)
        _write(objects / mid[:2] / mid, data)
        event("manifest_frozen", mid, None, None)
        for run in plan["runs"]:
            rk = f"{run['condition']}/0/h1"
            event("run_started", None, rk, mid)
            raw = (
                f'{{"type":"header","manifest":"{mid}","runner":"sim"}}\n'
                f'{{"type":"summary","status":"ok","val_bpb":1.{start},'
                f'"training_seconds":120,"total_seconds":130}}\n'
                f'{{"cond":"{run["condition"]}"}}\n'
            ).encode()
            raw_id = sha256_hex(raw)
            _write(objects / raw_id[:2] / raw_id, raw)
            record = {
                "manifest": mid,
                "stage": plan["stage"],
                "condition": run["condition"],
                "seed": 0,
                "host": "h1",
                "run": rk,
                "raw_log": raw_id,
                "format": "jsonl",
                "runner": "sim",
                "status": "ok",
                "metrics": {
                    "val_bpb": 1.25,
                    "training_seconds": 120.0,
                    "total_seconds": 130.0,
                    "num_steps": 10,
                },
                "gpus": 1,
                "recorded_at": "2026-01-01T00:00:00+00:00",
                "recorder": key.key_id,
            }
            data = canonical_bytes(sign_object("run", record, key))
            rid = sha256_hex(data)
            _write(objects / rid[:2] / rid, data)
            event("run_recorded", rid, rk, mid)
    journal = store.journal()
    journal.path.write_bytes(b"".join(x + b"\n" for x in lines))
    journal.head_path.write_bytes(
        canonical_bytes(signed_head({"host": "h1", "seq": len(lines) - 1, "hash": prev}, key))
    )
    return store


def bench_verify(root: Path, n_runs: int) -> dict:
    t = time.perf_counter()
    store = synth_store(root / f"v{n_runs}", n_runs)
    built = time.perf_counter() - t
    t = time.perf_counter()
    problems = verify(store)
    took = time.perf_counter() - t
    return {
        "runs": n_runs,
        "objects": 2 * n_runs + -(-n_runs // RUNS_PER_MANIFEST),
        "journal_events": 2 * n_runs + -(-n_runs // RUNS_PER_MANIFEST),
        "generate_s": round(built, 2),
        "verify_s": round(took, 2),
        "problems": len(problems),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="1000,10000",
        help="comma-separated synthetic run counts for verify (100000: minutes)",
    )
    parser.add_argument("--ops", type=int, default=200, help="samples per micro-benchmark")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        root = Path(tmp)
        out = {
            "cpus": os.cpu_count(),
            "ops": bench_ops(root, args.ops),
            "verify": [bench_verify(root, int(s)) for s in args.sizes.split(",") if s],
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
