"""Pure parsers of raw run logs: the builtin runner's JSONL and autoresearch's stdout.

Why pure: `ingest` records what these return, and `audit` calls them again on the stored
raw bytes and compares, so they must depend on nothing but the bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("ok", "diverged", "crashed", "timeout")
METRICS = (
    "val_bpb", "training_seconds", "total_seconds", "num_steps", "total_tokens",
    "num_params", "peak_mem_mb", "tokens_per_s", "mfu",
)
FORMATS = ("jsonl", "autoresearch")
AUTORESEARCH_REQUIRED = ("val_bpb", "training_seconds", "total_seconds")


@dataclass
class ParsedLog:
    """What a raw log says: its records, final status and metrics, and any problems."""

    header: dict[str, Any] | None = None
    eval: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    steps: int = 0
    status: str = "crashed"
    metrics: dict[str, Any] = field(default_factory=lambda: dict.fromkeys(METRICS))
    manifest: str | None = None
    runner: str | None = None
    problems: list[str] = field(default_factory=list)


def _finite(value: Any) -> Any:
    """Numbers stay numbers only if finite; NaN/inf become None (never canonical JSON)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, int | float) else None


def parse_raw_log(data: bytes, fmt: str = "jsonl") -> ParsedLog:
    """Parse raw log bytes in format `fmt` (jsonl or autoresearch)."""
    if fmt == "jsonl":
        return _parse_jsonl(data)
    if fmt == "autoresearch":
        return _parse_autoresearch(data)
    out = ParsedLog()
    out.problems.append(f"unknown log format {fmt!r}")
    return out


def _parse_jsonl(data: bytes) -> ParsedLog:
    out = ParsedLog()
    last_step: dict[str, Any] | None = None
    for n, raw_line in enumerate(data.split(b"\n"), start=1):
        if not raw_line.strip():
            continue
        try:
            rec = json.loads(raw_line)
        except (ValueError, UnicodeDecodeError):
            out.problems.append(f"line {n}: not valid JSON")
            continue
        if not isinstance(rec, dict):
            out.problems.append(f"line {n}: not a JSON object")
            continue
        kind = rec.get("type")
        if kind == "header":
            if out.header is not None:
                out.problems.append(f"line {n}: second header")
                continue
            out.header = rec
        elif kind == "step":
            out.steps += 1
            last_step = rec
        elif kind == "eval":
            out.eval = rec
        elif kind == "summary":
            out.summary = rec
        else:
            out.problems.append(f"line {n}: unknown record type {kind!r}")
    if out.header is not None:
        manifest = out.header.get("manifest")
        out.manifest = manifest if isinstance(manifest, str) else None
        runner = out.header.get("runner")
        out.runner = runner if isinstance(runner, str) else None
    if out.summary is not None:
        status = out.summary.get("status")
        if status in STATUSES:
            out.status = status
        else:
            out.problems.append(f"summary status {status!r} is not one of {', '.join(STATUSES)}")
            out.status = "crashed"
        for key in METRICS:
            value = out.summary.get(key)
            clean = _finite(value)
            if value is not None and clean is None:
                out.problems.append(f"summary {key} {value!r} is not a finite number")
            out.metrics[key] = clean
    else:
        out.status = "crashed"
        seconds = _finite((last_step or {}).get("train_seconds"))
        out.metrics["training_seconds"] = seconds if seconds is not None else 0
        step = _finite((last_step or {}).get("step"))
        out.metrics["num_steps"] = int(step) if step is not None else 0
        out.problems.append("no summary record (the process died)")
    return out


def _number(text: str) -> float | int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _parse_autoresearch(data: bytes) -> ParsedLog:
    out = ParsedLog(runner="autoresearch")
    lines = data.decode("utf-8", errors="replace").splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "---"]
    block: dict[str, str] = {}
    if starts:
        for line in lines[starts[-1] + 1 :]:
            key, sep, value = line.partition(":")
            if not sep or not key.strip() or " " in key.strip():
                break
            block[key.strip()] = value.strip()
    raw = {k: _number(v) for k, v in block.items()}
    missing = [k for k in AUTORESEARCH_REQUIRED if raw.get(k) is None and k not in block]
    if not starts or missing:
        out.status = "crashed"
        out.problems.append(
            "no final summary block" if not starts else f"summary block lacks {', '.join(missing)}"
        )
        seconds = raw.get("training_seconds")
        out.metrics["training_seconds"] = seconds if seconds is not None else 0
        out.metrics["total_seconds"] = raw.get("total_seconds")
        return out
    out.summary = dict(raw)
    val = raw.get("val_bpb")
    out.status = "ok" if val is not None else "diverged"
    m = out.metrics
    m["val_bpb"] = val
    m["training_seconds"] = raw.get("training_seconds")
    m["total_seconds"] = raw.get("total_seconds")
    m["peak_mem_mb"] = raw.get("peak_vram_mb")
    mfu = raw.get("mfu_percent")
    m["mfu"] = None if mfu is None else mfu / 100.0
    tokens_m = raw.get("total_tokens_M")
    m["total_tokens"] = None if tokens_m is None else int(round(tokens_m * 1e6))
    steps = raw.get("num_steps")
    m["num_steps"] = None if steps is None else int(steps)
    params_m = raw.get("num_params_M")
    m["num_params"] = None if params_m is None else int(round(params_m * 1e6))
    secs = m["training_seconds"]
    m["tokens_per_s"] = (m["total_tokens"] / secs) if m["total_tokens"] and secs else None
    out.steps = m["num_steps"] or 0
    return out
