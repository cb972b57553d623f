"""Typed documents: pydantic v2 against msgspec on the stored run records of a store.

Prints one JSON object. Not a test. Why this record: at 100k runs the audit validates one
run record per run (`audit.evidence.Evidence`), the only document whose count grows with
the store, so its per-object cost is what the choice of library can change. Both sides
decode the same stored bytes (the envelope's `body`) into a strict, closed type: pydantic
through `ledger.documents.RunRecord` as the product uses it, msgspec through a `Struct`
written here with the same fields (`forbid_unknown_fields`), from a dict (what the audit
holds after the scan) and from JSON bytes.

    python benchmarks/model_bench.py --existing .ledger        # a store built earlier
    python benchmarks/model_bench.py --runs 600                # build a sim store first

msgspec is not a dependency of the product: `pip install msgspec` to run this.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent))

import msgspec  # noqa: E402
import orjson  # noqa: E402

from ledger.documents import RunRecord  # noqa: E402
from ledger.store import Store  # noqa: E402

Number = int | float


class MetricsStruct(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    val_bpb: Number | None = None
    training_seconds: Number | None = None
    total_seconds: Number | None = None
    num_steps: Number | None = None
    total_tokens: Number | None = None
    num_params: Number | None = None
    peak_mem_mb: Number | None = None
    tokens_per_s: Number | None = None
    mfu: Number | None = None


class RunStruct(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    manifest: str | None
    stage: str | None
    condition: str | None
    seed: int | None
    host: str | None
    run: str | None
    raw_log: str
    format: str
    runner: str | None
    status: Literal["ok", "diverged", "crashed", "timeout"]
    metrics: MetricsStruct
    gpus: int
    recorded_at: str
    deadline_s: Number | None = None
    exit_code: int | None = None
    stderr: str | None = None
    recorder: str | None = None


def run_bodies(store: Store, limit: int) -> list[dict]:
    out = []
    for _oid, path in store.iter_objects():
        data = path.read_bytes()
        if not data.startswith(b'{"body":') or b'"kind":"run"' not in data[-400:]:
            continue
        obj = orjson.loads(data)
        if obj.get("kind") == "run":
            out.append(obj["body"])
            if len(out) >= limit:
                break
    return out


def best_us(fn, items, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - t0)
    return best / len(items) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--existing", metavar="STORE", help="read this store's run records")
    parser.add_argument("--runs", type=int, default=600, help="size of the store to build")
    parser.add_argument("--limit", type=int, default=20000, help="records to decode at most")
    parser.add_argument("--repeat", type=int, default=5, help="passes (best is reported)")
    args = parser.parse_args(argv)
    if args.existing:
        store = Store.open(args.existing)
    else:
        from audit_bench import build_store

        store, _ = build_store(Path(tempfile.mkdtemp(prefix="model-bench-")), args.runs)
    bodies = run_bodies(store, args.limit)
    raw = [orjson.dumps(b) for b in bodies]
    dict_decoder = msgspec.convert
    json_decoder = msgspec.json.Decoder(RunStruct)
    for body in bodies:  # both accept every stored record before anything is timed
        RunRecord.model_validate(body)
        dict_decoder(body, RunStruct, strict=True)
    figures = {
        "pydantic_from_dict_us": best_us(RunRecord.model_validate, bodies, args.repeat),
        "msgspec_from_dict_us": best_us(
            lambda b: dict_decoder(b, RunStruct, strict=True), bodies, args.repeat
        ),
        "pydantic_from_json_us": best_us(RunRecord.model_validate_json, raw, args.repeat),
        "msgspec_from_json_us": best_us(json_decoder.decode, raw, args.repeat),
    }
    result = {
        "benchmark": "document_models",
        "records": len(bodies),
        **{k: round(v, 2) for k, v in figures.items()},
        "pydantic_at_100k_runs_s": round(figures["pydantic_from_dict_us"] * 1e5 / 1e6, 2),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
