"""Pure parsers of raw run logs: the builtin runner's JSONL and autoresearch's stdout.

Why pure: `ingest` checks what these return before recording, and `audit` calls them again on
the stored raw bytes, building every observation from them (never from a record's copy), so
they depend on nothing but the bytes. Besides the metrics they keep the evidence a status
needs (`diverged` needs a non-finite or exploding loss in the step lines) and every problem
the bytes have: `problems` lists them all, `garbage` counts complete lines that are not JSON
objects (a log with any is refused at ingest), and a last line cut off without its newline
(a process killed mid-write) is noted as `torn_tail`, not counted as garbage.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ledger.jsonsafe import loads_line
from runner.schema import DIVERGE_FACTOR

STATUSES = ("ok", "diverged", "crashed", "timeout")
METRICS = (
    "val_bpb",
    "training_seconds",
    "total_seconds",
    "num_steps",
    "total_tokens",
    "num_params",
    "peak_mem_mb",
    "tokens_per_s",
    "mfu",
)
FORMATS = ("jsonl", "autoresearch")
AUTORESEARCH_REQUIRED = ("val_bpb", "training_seconds", "total_seconds")
MAX_LOG_BYTES = 256 * 2**20  # a 24-hour run logging every second is ~20 MB
MAX_LINE_BYTES = 2**20
# autoresearch prints `step 00123 (..%) | loss: 3.2100 | ...`; it stops with FAIL above 100
_AR_LOSS = re.compile(r"\bloss:?\s*([-+0-9.eE]+|nan|inf|-inf)\b", re.IGNORECASE)
AUTORESEARCH_FAIL_LOSS = 100.0
_INCOMPLETE = ("no summary record", "no final summary block", "summary block lacks")


@dataclass
class ParsedLog:
    """What a raw log says: its records, final status and metrics, evidence and problems."""

    header: dict[str, Any] | None = None
    eval: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    steps: int = 0
    status: str = "crashed"
    metrics: dict[str, Any] = field(default_factory=lambda: dict.fromkeys(METRICS))
    manifest: str | None = None
    runner: str | None = None
    problems: list[str] = field(default_factory=list)
    garbage: int = 0  # complete lines that are not JSON objects (or too long)
    torn_tail: bool = False  # the last line was cut off without its newline
    oversize: bool = False  # the whole log is larger than MAX_LOG_BYTES
    diverge_evidence: str | None = None  # why the step losses show divergence, if they do
    first_loss: float | None = None  # the first step's finite loss (jsonl)

    @property
    def defects(self) -> list[str]:
        """Problems that make the log untrue or malformed, as opposed to merely unfinished
        (a process that died leaves no summary, or a line cut off: that is what `crashed`
        means, not a defect)."""
        return [
            p
            for p in self.problems
            if not p.startswith(_INCOMPLETE) and "cut off without its newline" not in p
        ]

    @property
    def metric_finite(self) -> bool:
        value = self.metrics.get("val_bpb")
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )


def _finite(value: Any) -> Any:
    """Numbers stay numbers only if finite; anything else becomes None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, int | float) else None


def parse_raw_log(data: bytes, fmt: str = "jsonl") -> ParsedLog:
    """Parse raw log bytes in format `fmt` (jsonl or autoresearch)."""
    if len(data) > MAX_LOG_BYTES:
        out = ParsedLog(oversize=True)
        out.problems.append(f"log is {len(data)} bytes, more than the {MAX_LOG_BYTES} allowed")
        return out
    if fmt == "jsonl":
        return _parse_jsonl(data)
    if fmt == "autoresearch":
        return _parse_autoresearch(data)
    out = ParsedLog()
    out.problems.append(f"unknown log format {fmt!r}")
    return out


def _parse_jsonl(data: bytes) -> ParsedLog:
    """Every line read once: step lines counted (the hot path), the others kept by type."""
    out = ParsedLog()
    flat = _records_at_once(data)
    if flat is not None:  # record i is line i + 1
        kinds = [rec.get("type") for rec in flat]
        at = [i for i, kind in enumerate(kinds) if kind == "step"]
        for i in [i for i, kind in enumerate(kinds) if kind != "step"]:
            _keep_record(out, flat[i], i + 1)
        step_lines, step_recs = [i + 1 for i in at], [flat[i] for i in at]
    else:
        step_lines, step_recs = [], []
        for n, rec in _records_by_line(out, data):
            if rec.get("type") == "step":
                step_lines.append(n)
                step_recs.append(rec)
            else:
                _keep_record(out, rec, n)
    out.steps = len(step_recs)
    losses = [rec.get("loss") for rec in step_recs]
    out.diverge_evidence, out.first_loss = _divergence(losses, step_lines)
    _header_facts(out)
    if out.summary is not None:
        _summary_facts(out)
    else:
        _no_summary(out, step_recs[-1] if step_recs else None)
    return out


def _divergence(losses: list[Any], lines: list[int]) -> tuple[str | None, float | None]:
    """(why the step losses show divergence or None, the first step's loss or None): the
    first step line whose loss is not a number, or exceeds DIVERGE_FACTOR x the first's."""
    if not losses:
        return None, None
    first = losses[0]
    if type(first) is not float and type(first) is not int:
        return f"step line {lines[0]}: loss {first!r} is not a finite number", None
    first_loss = float(first)
    limit = DIVERGE_FACTOR * first_loss
    rest = losses[1:]
    if not rest or (set(map(type, rest)) <= {float, int} and max(rest) <= limit):
        return None, first_loss  # (the common case, checked without a Python loop)
    for n, loss in zip(lines[1:], rest, strict=True):
        if type(loss) is not float and type(loss) is not int:
            return f"step line {n}: loss {loss!r} is not a finite number", first_loss
        if loss > limit:
            return (
                f"step line {n}: loss {loss:g} exceeds {DIVERGE_FACTOR:g} x the first "
                f"step's {first_loss:g}"
            ), first_loss
    return None, first_loss


def _records_by_line(out: ParsedLog, data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of every line that is a JSON object; the others are noted on
    `out` as problems (garbage, a cut-off last line) as they come, in line order."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        out.torn_tail = True
    for n, line in enumerate(lines, start=1):
        rec = _record(out, line, n, len(lines))
        if rec is not None:
            yield n, rec


def _records_at_once(data: bytes) -> list[dict[str, Any]] | None:
    """The records of a log whose lines are all flat JSON objects (record i on line i + 1),
    parsed in one `orjson` call instead of one per line; None when any line needs
    `_records_by_line`.

    Why this is the same as parsing each line with `loads_line`: the first line (the
    header, which holds lists) is parsed on its own. The other lines are joined as
    `[line\n,line\n,...]` only when every one starts with `{`, none holds `[` or `]`, and
    the log ends with a newline. A JSON string cannot hold a raw newline, and inside an
    object a comma must be followed by a key, never by `{`, so every inserted comma
    separates two array items: each item is exactly one line, as orjson would parse it
    alone. `loads_line` accepts orjson's parse of a line without `[` when its colons equal
    its keys; each line has at least as many colons as keys, so the totals are equal
    exactly when every line's are.
    """
    if not data.endswith(b"\n") or len(data) > MAX_LOG_BYTES:
        return None
    cut = data.find(b"\n") + 1
    first, rest = data[:cut], data[cut:]
    if len(first) - 1 > MAX_LINE_BYTES:
        return None
    lines = rest.count(b"\n")
    if lines and (
        not rest.startswith(b"{")
        or rest.count(b"\n{") != lines - 1
        or b"[" in rest
        or b"]" in rest
        or (len(rest) > MAX_LINE_BYTES and max(map(len, rest.split(b"\n"))) > MAX_LINE_BYTES)
    ):
        return None
    try:
        head = loads_line(first[:-1])
        items = orjson.loads(b"[" + rest[:-1].replace(b"\n", b"\n,") + b"]") if lines else []
    except (ValueError, orjson.JSONDecodeError):
        return None
    if type(head) is not dict or len(items) != lines:
        return None
    if items and (set(map(type, items)) != {dict} or sum(map(len, items)) != rest.count(b":")):
        return None
    return [head, *items]


def _record(out: ParsedLog, line: bytes, n: int, count: int) -> dict[str, Any] | None:
    """Line `n` as a JSON object, or None (blank, or a problem noted on `out`)."""
    if len(line) > MAX_LINE_BYTES:
        out.garbage += 1
        out.problems.append(
            f"line {n}: {len(line)} bytes, more than the {MAX_LINE_BYTES} allowed per line"
        )
        return None
    try:
        rec = loads_line(line)
    except ValueError as exc:
        if not line.strip():
            return None
        if out.torn_tail and n == count:
            out.problems.append(f"line {n}: cut off without its newline (the process died)")
        else:
            out.garbage += 1
            out.problems.append(f"line {n}: not valid JSON ({exc})")
        return None
    if type(rec) is not dict:
        out.garbage += 1
        out.problems.append(f"line {n}: not a JSON object")
        return None
    return rec


def _keep_record(out: ParsedLog, rec: dict[str, Any], n: int) -> None:
    """A header, eval or summary line: the first of each is kept, repeats are problems."""
    kind = rec.get("type")
    if kind == "header":
        if out.header is not None:
            out.problems.append(f"line {n}: second header")
            return
        if n != 1:
            out.problems.append(f"line {n}: the header is not the first line")
        out.header = rec
    elif kind == "eval":
        if out.eval is not None:
            out.problems.append(f"line {n}: second eval record")
        out.eval = rec
    elif kind == "summary":
        if out.summary is not None:
            out.problems.append(f"line {n}: second summary")
            return
        out.summary = rec
    else:
        out.problems.append(
            f'line {n}: unknown record type {kind!r} (each line needs "type": header, step, '
            f"eval or summary; docs/runner.md)"
        )


def _no_summary(out: ParsedLog, last_step: dict[str, Any] | None) -> None:
    """A log without a summary crashed: its seconds and steps are the last step line's."""
    out.status = "crashed"
    seconds = _finite((last_step or {}).get("train_seconds"))
    out.metrics["training_seconds"] = seconds if seconds is not None else 0
    step = _finite((last_step or {}).get("step"))
    out.metrics["num_steps"] = int(step) if step is not None else 0
    out.problems.append("no summary record (the process died)")


def _header_facts(out: ParsedLog) -> None:
    if out.header is None:
        return
    manifest = out.header.get("manifest")
    out.manifest = manifest if isinstance(manifest, str) else None
    runner = out.header.get("runner")
    out.runner = runner if isinstance(runner, str) else None


def _summary_facts(out: ParsedLog) -> None:
    summary = out.summary or {}
    status = summary.get("status")
    if status in STATUSES:
        out.status = status
    else:
        out.problems.append(f"summary status {status!r} is not one of {', '.join(STATUSES)}")
        out.status = "crashed"
    for key in METRICS:
        value = summary.get(key)
        clean = _finite(value)
        if value is not None and clean is None:
            out.problems.append(f"summary {key} {value!r} is not a finite number")
        out.metrics[key] = clean
    if out.status == "ok" and not out.metric_finite:
        out.problems.append("summary says ok but has no finite val_bpb")
    if out.eval is not None and out.eval.get("val_bpb") != summary.get("val_bpb"):
        out.problems.append(
            f"summary val_bpb {summary.get('val_bpb')!r} disagrees with the eval "
            f"line's {out.eval.get('val_bpb')!r}"
        )


def _number(text: str) -> float | int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return (
        int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
    )


def _parse_autoresearch(data: bytes) -> ParsedLog:
    out = ParsedLog(runner="autoresearch")
    lines = data.decode("utf-8", errors="replace").splitlines()
    _autoresearch_header(out, lines)
    starts = [i for i, line in enumerate(lines) if line.strip() == "---"]
    for i, line in enumerate(lines[: starts[-1] if starts else len(lines)], start=1):
        if i == 1 and out.header is not None:
            continue
        if len(line) > MAX_LINE_BYTES:
            out.garbage += 1
            out.problems.append(f"line {i}: more than the {MAX_LINE_BYTES} bytes allowed")
        elif out.diverge_evidence is None:
            out.diverge_evidence = _autoresearch_divergence(line, i)
    block: dict[str, str] = {}
    if starts:
        for line in lines[starts[-1] + 1 :]:
            key, sep, value = line.partition(":")
            if not sep or not key.strip() or " " in key.strip():
                break
            if key.strip() in block:
                out.problems.append(f"summary block repeats {key.strip()!r}")
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


def _autoresearch_header(out: ParsedLog, lines: list[str]) -> None:
    """A first line `{"type": "header", ...}` (what the autoresearch adapter writes before
    the script runs) is the log's header; the script's own output follows it."""
    if not lines or not lines[0].startswith("{") or len(lines[0]) > MAX_LINE_BYTES:
        return
    try:
        rec = loads_line(lines[0].encode("utf-8"))
    except ValueError:
        return
    if type(rec) is dict and rec.get("type") == "header":
        out.header = rec
        _header_facts(out)
        out.runner = out.runner or "autoresearch"


def _autoresearch_divergence(line: str, n: int) -> str | None:
    """autoresearch's own rule: it prints FAIL and stops when the loss is NaN or above 100."""
    if line.strip() == "FAIL":
        return f"line {n}: FAIL"
    match = _AR_LOSS.search(line)
    if match is None:
        return None
    try:
        value = float(match.group(1))
    except ValueError:
        return None
    if not math.isfinite(value) or value > AUTORESEARCH_FAIL_LOSS:
        return (
            f"line {n}: loss {match.group(1)} (autoresearch fails above {AUTORESEARCH_FAIL_LOSS:g})"
        )
    return None


REASON_CHARS = 300


def failure_reason(parsed: ParsedLog | None, stderr: bytes | None) -> str:
    """Why a run did not end ok: the runner's own `error`, else stderr's last line, else ""."""
    error = ((parsed.summary if parsed else None) or {}).get("error")
    if isinstance(error, str) and error.strip():
        return error.strip()[:REASON_CHARS]
    if stderr:
        lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1][:REASON_CHARS]
    return ""
