"""Bind a raw log to the run it is credited to, and a status to its evidence.

Why: a run record is the operator's claim; the raw log is the runner's. A lying runner (or a
lying orchestrator) can credit one condition's log to another, report another seed or
budget, or relabel a good run `timeout` so that it drops out. These pure functions say what
is wrong with such a pairing. `ingest` refuses what they find before anything is written;
`audit` calls them again on the stored bytes and the journal's timestamps.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from ledger.binding_level import binding_level
from ledger.log_records import LogHeader
from ledger.plan_model import Plan
from ledger.provenance import LogSource, log_source
from ledger.rawlog import STATUSES, ParsedLog
from ledger.seeds import RULES, derive_seed, needs_witness, seed_inputs, seed_rule
from runner.autoresearch import BUDGET_CONSTANT, budget_value, constant_name

# Seconds of slack on wall-clock comparisons: timestamps have microseconds, but a clock
# may be stepped by NTP between a run's start and its record.
CLOCK_SLACK_S = 1.0
# An ok run of a runner that trains its budget stops once its training seconds reach it;
# this much short is float noise, anything more was not trained (or not reported) in full.
BUDGET_TOLERANCE = 1e-6


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value (1 == 1.0), but a bool is never a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def header_problems(
    manifest_id: str,
    manifest: Plan,
    condition: str,
    seed: Any,
    host: str,
    parsed: ParsedLog,
    *,
    witness: str | None = None,
) -> list[str]:
    """Why a JSONL log's header does not belong to the declared run (empty: it does).

    Checked: the manifest id, seed (the effective seed the manifest's seed rule derives, with
    its inputs: `seed_problems`; `witness` is the digest of the timestamp token a
    witness-bound rule takes), host, budget and config (the frozen runner config when the
    manifest has one, else the condition's own keys), the runner the manifest's kind names
    (`ledger.provenance.log_source`: a header saying `sim` in a real-data plan is refused),
    and for the builtin runner its version, code hash and data hash. A log without a header
    carries no claim to bind: it can only be a crash (see `status_problems`).
    """
    header = parsed.header
    if header is None:
        return []
    source = log_source(manifest)
    out = []
    if header.manifest != manifest_id:
        out.append(f"header cites manifest {_show(header.manifest)}, not {manifest_id[:12]}")
    out += seed_problems(
        manifest_id,
        manifest,
        condition,
        seed,
        header,
        inputs_required=source.kind in ("builtin", "sim", "adapter"),
        witness=witness,
    )
    if header.host != host:
        out.append(f"header host {_show(header.host)} is not the declared host {host!r}")
    if not same_json(header.budget_s, manifest.budget_s):
        out.append(
            f"header budget_s {_show(header.budget_s)} is not the manifest's {manifest.budget_s}"
        )
    planned = manifest.conditions.get(condition)  # a record may name any condition
    config = planned.run_config if planned is not None else {}
    # (a config key is normally none of the contract's: read it from the keys kept as
    # written, and from the whole line only when one is not there)
    extra = header.config
    written = extra if extra.keys() >= config.keys() else header.written
    for key in sorted(config):
        if key not in written:
            out.append(f"header lacks config key {key!r}")
        elif not same_json(written[key], config[key]):
            out.append(
                f"header {key} {_show(written[key])} is not the condition's {_show(config[key])}"
            )
    out += _identity_problems(manifest, source, header, config)
    return out


def seed_problems(
    manifest_id: str,
    manifest: Plan,
    condition: str,
    seed: Any,
    header: LogHeader,
    *,
    inputs_required: bool,
    witness: str | None = None,
) -> list[str]:
    """Why a header's seeds do not follow from its manifest (empty: they do).

    Without a rule the header's `seed` must be the declared seed (as before rules existed).
    With one, the header's `seed` (what the run trained with) must be the derived effective
    seed; `effective_seed` and `seed_inputs` must agree with it when present, and the
    builtin runner and the simulator (`inputs_required`) must write both. A witness-bound
    rule needs `witness`, the digest of the freeze's timestamp token.
    """
    rule = seed_rule(manifest)
    if rule is None:
        if not same_json(header.seed, seed):
            return [f"header seed {_show(header.seed)} is not the declared seed {seed}"]
        return []
    if rule not in RULES:
        return [f"manifest seed rule {rule!r} is unknown to this audit (known: {', '.join(RULES)})"]
    if not isinstance(seed, int) or isinstance(seed, bool):
        return [f"declared seed {seed!r} is not an integer"]
    if needs_witness(rule) and not witness:
        return [
            f"manifest {manifest_id[:12]}'s seeds are bound to its timestamp token "
            f"({rule}), and no usable token over it is journaled"
        ]
    expected = derive_seed(rule, manifest_id, condition, seed, witness)
    where = f"manifest {manifest_id[:12]}'s rule {rule} for condition {condition[:12]}, seed {seed}"
    out = []
    if not same_json(header.seed, expected):
        out.append(
            f"header seed {_show(header.seed)} is not the effective seed "
            f"{expected} that {where} derives"
        )
    if (header.says("effective_seed") or inputs_required) and not same_json(
        header.effective_seed, expected
    ):
        out.append(
            f"header effective_seed {_show(header.effective_seed)} does not "
            f"follow from {where} (expected {expected})"
        )
    if header.says("seed_inputs") or inputs_required:
        inputs = header.seed_inputs.to_dict() if header.seed_inputs is not None else None
        want = seed_inputs(manifest_id, condition, seed, witness if needs_witness(rule) else None)
        if inputs is None or not same_json(inputs, want):
            out.append(
                f"header seed_inputs {_show(inputs)} are not this run's "
                f"(manifest, condition, declared seed)"
            )
    return out


def _identity_problems(
    manifest: Plan, source: LogSource, header: LogHeader, config: dict[str, Any]
) -> list[str]:
    """The trainer the manifest's runner kind names must be the one the header says wrote
    the log: the simulator answers only a plan frozen without data, the builtin runner its
    frozen version, code and data, the autoresearch adapter its frozen script."""
    out = []
    if source.header_runner is not None and header.runner != source.header_runner:
        what = (
            "a plan frozen without a data set: only the simulator answers it"
            if source.simulated
            else f"the manifest's runner is {source.kind}"
        )
        out.append(f"header runner {_show(header.runner)} in {what}")
    if source.kind == "adapter":
        return out + adapter_problems(manifest, header, config)
    if source.kind != "builtin":
        return out  # a command's code is outside the ledger's view (docs/threat-model.md)
    runner = manifest.runner
    for field, said, frozen in (
        ("runner_version", header.runner_version, runner.version),
        ("code_sha256", header.code_sha256, runner.code_sha256),
    ):
        if said != frozen:
            out.append(f"header {field} {_show(said)} is not the frozen runner's {_show(frozen)}")
    data = manifest.data_sha256
    if header.data_sha256 != data:
        frozen_data = "no data set (simulation only)" if data is None else f"data {data[:12]}"
        out.append(
            f"header data_sha256 {_show(header.data_sha256)} is not the manifest's: {frozen_data}"
        )
    return out


def adapter_problems(manifest: Plan, header: LogHeader, config: dict[str, Any]) -> list[str]:
    """An adapted script's header: the frozen script (by SHA-256), and overrides that are
    the condition's config under the frozen constant names plus the manifest's budget."""
    runner = manifest.runner
    out = []
    if header.script_sha256 != runner.script_sha256:
        out.append(
            f"header script_sha256 {_show(header.script_sha256)} is not the frozen "
            f"script's {_show(runner.script_sha256)}"
        )
    overrides = header.overrides
    if overrides is None:
        return [*out, f"header overrides {_show(overrides)} are not a table of constants"]
    budget = manifest.budget_s
    mapping = runner.constants or {}
    wanted = [(BUDGET_CONSTANT, budget_value(budget), f"the manifest's budget {budget}")]
    wanted += [
        (constant_name(key, mapping), value, _show(value)) for key, value in sorted(config.items())
    ]
    for name, value, shown in wanted:
        said = overrides.get(name)  # constants by name: one the header lacks is named as None
        if not same_json(said, value):
            out.append(f"header sets {name} to {_show(said)}, not {shown}")
    return out


def log_binding_problems(
    manifest_id: str,
    manifest: Plan,
    condition: str,
    seed: Any,
    host: str,
    parsed: ParsedLog,
    *,
    status: Any,
    witness: str | None = None,
) -> list[str]:
    """Why a log does not bind to its declared run under its manifest's binding level: its
    header's problems when it has one, and a missing header where the level needs one for
    an ok run (`ledger.binding_level`). Ingest, `ledger try` and the audit all ask this;
    `witness` is the freeze token's digest a witness-bound seed rule needs."""
    if parsed.header is None:
        if status == "ok" and binding_level(manifest).header_required:
            return ["has no header: an ok log must start with a header citing its manifest"]
        return []
    return header_problems(manifest_id, manifest, condition, seed, host, parsed, witness=witness)


def status_problems(
    status: Any,
    parsed: ParsedLog,
    *,
    budget_s: float,
    interval_s: float | None = None,
    deadline_s: float | None = None,
    simulated: bool = False,
    trains_budget: bool = False,
) -> list[str]:
    """Why `status` (and the claimed time) is not what the log's bytes and the journal support.

    * `ok` needs an ok summary with a finite metric;
    * `diverged` needs a null metric and a non-finite or exploding loss in the step lines;
    * `crashed` needs the absence of an ok summary with a finite metric;
    * `timeout` needs the same, and a journaled start-to-record interval past the deadline
      the orchestrator killed at (never earlier than the frozen budget, whatever the record
      says its deadline was);
    * the claimed training seconds fit in the total seconds, and both in the start-to-record
      interval; under a runner that trains its budget (`trains_budget`: the manifest's
      kind), an `ok` run reaches the budget.

    `interval_s` is None when no start was journaled (a finding elsewhere). `simulated` (the
    manifest's runner kind, `ledger.provenance`: never the header's word) skips the interval
    checks: the simulator takes no wall-clock time, and its runs are reported apart.
    """
    if status not in STATUSES:
        return [f"status {status!r} is not one of {', '.join(STATUSES)}"]
    out = _status_evidence(status, parsed)
    if status == "timeout" and interval_s is not None and not simulated:
        deadline = max(budget_s, deadline_s) if _finite_number(deadline_s) else budget_s
        if interval_s + CLOCK_SLACK_S < deadline:
            out.append(
                f"status timeout after {interval_s:.1f} s from start to record, "
                f"before its deadline of {deadline:g} s"
            )
    seconds = parsed.metrics["training_seconds"]
    if (
        trains_budget
        and status == "ok"
        and _finite_number(seconds)
        and seconds < budget_s * (1 - BUDGET_TOLERANCE)
    ):
        out.append(
            f"status ok after {seconds:g} training seconds, short of the frozen budget of "
            f"{budget_s:g} s its runner trains for"
        )
    return out + time_problems(parsed, interval_s=interval_s, simulated=simulated)


def _status_evidence(status: str, parsed: ParsedLog) -> list[str]:
    """What the log's own records say against the status."""
    finished_ok = parsed.status == "ok" and parsed.metric_finite
    if status == "ok" and not finished_ok:
        return [
            "status ok but its log has no ok summary with a finite val_bpb "
            f"(the log says {parsed.status})"
        ]
    if status == "diverged":
        if parsed.metrics["val_bpb"] is not None:
            return [f"status diverged but its log reports val_bpb {parsed.metrics['val_bpb']}"]
        if parsed.diverge_evidence is None:
            return ["status diverged but no step line shows a non-finite or exploding loss"]
    elif status in ("crashed", "timeout") and finished_ok:
        return [
            f"status {status} but its log ends with an ok summary "
            f"(val_bpb {parsed.metrics['val_bpb']})"
        ]
    elif status == "timeout" and parsed.eval is not None:
        return [
            "status timeout but its log has a finished evaluation (the runner "
            "evaluates only after training ended in time)"
        ]
    return []


def _finite_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def time_problems(
    parsed: ParsedLog, *, interval_s: float | None, simulated: bool = False
) -> list[str]:
    """Claimed seconds against each other and against the journal: training within total,
    total (and so training) within the journaled start-to-record interval."""
    training = parsed.metrics["training_seconds"]
    total = parsed.metrics["total_seconds"]
    out = []
    if _finite_number(training) and _finite_number(total) and training > total + CLOCK_SLACK_S:
        out.append(f"claims {training:g} training seconds within {total:g} total seconds")
    if interval_s is None or simulated:
        return out
    for what, seconds in (("training", training), ("total", total)):
        if _finite_number(seconds) and seconds > interval_s + CLOCK_SLACK_S:
            out.append(
                f"claims {seconds:g} {what} seconds, but only {interval_s:.1f} s passed "
                f"between its journaled start and its record"
            )
            break
    return out


__all__ = [
    "CLOCK_SLACK_S",
    "adapter_problems",
    "header_problems",
    "log_binding_problems",
    "time_problems",
    "same_json",
    "seed_problems",
    "status_problems",
]
