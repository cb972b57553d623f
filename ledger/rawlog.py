"""Pure parsers of raw run logs: the builtin runner's JSONL and autoresearch's stdout.

Why pure: `ingest` checks what these return before recording, and `audit` calls them again on
the stored raw bytes, building every observation from them (never from a record's copy), so
they depend on nothing but the bytes. Besides the metrics they keep the evidence a status
needs (`diverged` needs a non-finite or exploding loss in the step lines) and every problem
the bytes have: `problems` lists them all, `garbage` counts complete lines that are not JSON
objects (a log with any is refused at ingest), and a last line cut off without its newline
(a process killed mid-write) is noted as `torn_tail`, not counted as garbage.

The header, eval and summary come back as their models (`ledger.log_records`), validated
once here; one that does not fit is a defect named in the house form and is not kept.
Step lines stay plain: their count and losses are read in one pass (the hot path).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from ledger.document import one_line
from ledger.documents import RunMetrics
from ledger.jsonsafe import loads_line
from ledger.log_records import LogEval, LogHeader, LogRecord, LogStep, LogSummary, Number
from runner.schema import DIVERGE_FACTOR

STATUSES = ("ok", "diverged", "crashed", "timeout")
METRICS = tuple(RunMetrics.model_fields)  # what a run record's `metrics` holds
FORMATS = ("jsonl", "autoresearch")
AUTORESEARCH_REQUIRED = ("val_bpb", "training_seconds", "total_seconds")
MAX_LOG_BYTES = 256 * 2**20  # a 24-hour run logging every second is ~20 MB
MAX_LINE_BYTES = 2**20
# autoresearch prints `step 00123 (..%) | loss: 3.2100 | ...`; it stops with FAIL above 100
_AR_LOSS = re.compile(r"\bloss:?\s*([-+0-9.eE]+|nan|inf|-inf)\b", re.IGNORECASE)
AUTORESEARCH_FAIL_LOSS = 100.0
_INCOMPLETE = ("no summary record", "no final summary block", "summary block lacks")


R = TypeVar("R", bound=LogRecord)


@dataclass
class ParsedLog:
    """What a raw log says: its records, final status and metrics, evidence and problems."""

    header: LogHeader | None = None
    eval: LogEval | None = None
    summary: LogSummary | None = None
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
        value = self.metrics["val_bpb"]
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )


def _model(out: ParsedLog, model: type[R], rec: dict[str, Any], n: int) -> R | None:
    """Line `n`'s record as `model`, or None with the reason noted on `out` (a defect)."""
    try:
        return model.model_validate(rec)
    except ValidationError as exc:
        out.problems.append(one_line(f"line {n}: {rec['type']}", exc))
        return None


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
        # (a line may lack its `type`: a real case, named by `_keep_record`)
        kinds = [rec.get("type") for rec in flat]
        at = [i for i, kind in enumerate(kinds) if kind == "step"]
        for i in [i for i, kind in enumerate(kinds) if kind != "step"]:
            _keep_record(out, flat[i], kinds[i], i + 1)
        step_lines, step_recs = [i + 1 for i in at], [flat[i] for i in at]
        ended = "summary" in kinds
    else:
        step_lines, step_recs, ended = [], [], False
        for n, rec in _records_by_line(out, data):
            kind = rec.get("type")
            if kind == "step":
                step_lines.append(n)
                step_recs.append(rec)
            else:
                _keep_record(out, rec, kind, n)
                ended = ended or kind == "summary"
    out.steps = len(step_recs)
    losses = [rec.get("loss") for rec in step_recs]  # a step without one: named below
    out.diverge_evidence, out.first_loss = _divergence(losses, step_lines)
    _header_facts(out)
    if out.summary is not None:
        _summary_facts(out, out.summary)
    else:
        _no_summary(out, step_recs[-1] if step_recs else None, ended)
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


# a newline not followed by `{`: some line of a log (but its last) does not start an object
_LINE_NOT_AN_OBJECT = re.compile(rb"\n(?!\{)")


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
        or _LINE_NOT_AN_OBJECT.search(rest, 0, len(rest) - 1) is not None
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


def _keep_record(out: ParsedLog, rec: dict[str, Any], kind: Any, n: int) -> None:
    """A header, eval or summary line (`kind`, its `type`): the first of each is kept as
    its model, repeats are problems, and so is a record that does not fit its model."""
    if kind == "header":
        if out.header is not None:
            out.problems.append(f"line {n}: second header")
            return
        if n != 1:
            out.problems.append(f"line {n}: the header is not the first line")
        out.header = _model(out, LogHeader, rec, n)
    elif kind == "eval":
        if out.eval is not None:
            out.problems.append(f"line {n}: second eval record")
        out.eval = _model(out, LogEval, rec, n) or out.eval
    elif kind == "summary":
        if out.summary is not None:
            out.problems.append(f"line {n}: second summary")
            return
        out.summary = _model(out, LogSummary, rec, n)
    else:
        out.problems.append(
            f'line {n}: unknown record type {kind!r} (each line needs "type": header, step, '
            f"eval or summary; docs/runner.md)"
        )


def _no_summary(out: ParsedLog, last: dict[str, Any] | None, ended: bool) -> None:
    """A log without a usable summary crashed: its seconds and steps are the last step
    line's (0 without one). `ended`: it had a summary line, which did not fit its model
    (named already as a defect), so it is not said to have died."""
    out.status = "crashed"
    step = LogStep.model_validate(last) if last is not None else LogStep(type="step")
    out.metrics["training_seconds"] = step.train_seconds if step.train_seconds is not None else 0
    out.metrics["num_steps"] = int(step.step) if step.step is not None else 0
    if not ended:
        out.problems.append("no summary record (the process died)")


def _header_facts(out: ParsedLog) -> None:
    if out.header is not None:
        out.manifest, out.runner = out.header.manifest, out.header.runner


def _summary_facts(out: ParsedLog, summary: LogSummary) -> None:
    out.status = summary.status
    out.metrics.update(summary.metrics)
    if out.status == "ok" and not out.metric_finite:
        out.problems.append("summary says ok but has no finite val_bpb")
    if out.eval is not None and out.eval.val_bpb != summary.val_bpb:
        out.problems.append(
            f"summary val_bpb {summary.val_bpb!r} disagrees with the eval "
            f"line's {out.eval.val_bpb!r}"
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
    missing = [k for k in AUTORESEARCH_REQUIRED if k not in block]
    numbers = AutoresearchBlock.model_validate({k: _number(v) for k, v in block.items()})
    if not starts or missing:
        out.status = "crashed"
        out.problems.append(
            "no final summary block" if not starts else f"summary block lacks {', '.join(missing)}"
        )
        seconds = numbers.training_seconds
        out.metrics["training_seconds"] = seconds if seconds is not None else 0
        out.metrics["total_seconds"] = numbers.total_seconds
        return out
    out.summary = numbers.summary()
    out.status = out.summary.status
    out.metrics.update(out.summary.metrics)
    out.steps = int(out.summary.num_steps or 0)
    return out


class AutoresearchBlock(LogRecord):
    """autoresearch's final `---` block, each value a finite number or None (unreadable);
    keys it does not print are None, and keys not named here are kept."""

    val_bpb: Number | None = None
    training_seconds: Number | None = None
    total_seconds: Number | None = None
    peak_vram_mb: Number | None = None
    mfu_percent: Number | None = None
    total_tokens_M: Number | None = None  # noqa: N815 (autoresearch's own name)
    num_steps: Number | None = None
    num_params_M: Number | None = None  # noqa: N815 (autoresearch's own name)

    def summary(self) -> LogSummary:
        """The block as the summary record the builtin runner would write: `ok` with a
        val_bpb, `diverged` without one; tokens and parameters from millions, mfu from
        percent, tokens per second from tokens and training seconds."""
        tokens = None if self.total_tokens_M is None else int(round(self.total_tokens_M * 1e6))
        secs = self.training_seconds
        return LogSummary(
            type="summary",
            status="ok" if self.val_bpb is not None else "diverged",
            val_bpb=self.val_bpb,
            training_seconds=secs,
            total_seconds=self.total_seconds,
            num_steps=None if self.num_steps is None else int(self.num_steps),
            total_tokens=tokens,
            num_params=None if self.num_params_M is None else int(round(self.num_params_M * 1e6)),
            peak_mem_mb=self.peak_vram_mb,
            tokens_per_s=(tokens / secs) if tokens and secs else None,
            mfu=None if self.mfu_percent is None else self.mfu_percent / 100.0,
        )


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
        out.header = _model(out, LogHeader, rec, 1)
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
    error = parsed.summary.error if parsed is not None and parsed.summary is not None else None
    if error is not None and error.strip():
        return error.strip()[:REASON_CHARS]
    if stderr:
        lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1][:REASON_CHARS]
    return ""
