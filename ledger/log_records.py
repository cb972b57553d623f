"""The raw log's records as models: header, step, eval and summary (docs/runner.md, Raw log).

Why models: a run's claims (which manifest, seed, host, budget and config it ran with; how it
ended) are read from these records by ingest, the audit, the spot-check and the reports, so
their keys are a contract. `ledger.rawlog.parse_raw_log` validates the header, the eval and
the summary once, where a log's bytes are parsed; a record that does not fit is a defect of
the log, named in the house form (`line 1: header: seed: must be an integer, not '0'`).
Step lines are the exception: a log has hundreds (the audit parses 100k logs of 300 lines),
so they are counted and their losses read in one pass without a model; `LogStep` is their
shape, used where one step line is read (a crash's last step).

What is typed, and what is kept as written: a header carries the run's config under the
runner's own key names (the builtin runner's, a foreign command's, an adapted script's)
and whatever else its runner reports (`model_dim`, `sim`, `python`...). The keys the
ledger reads (DESIGN.md section 5: manifest, seeds, host, budget, device, torch, runner
identity, code and data hashes, start time; the adapter's script hash and overrides) are
typed, and must have their type whichever runner wrote them; every other key is kept as
written (`LogHeader.config`, and `written` for the whole line), never refused: a foreign
runner's config is its own. The eval and summary records may carry extra keys too (the
builtin runner adds `eval_seconds`, `log_seconds`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, ValidationError, ValidatorFunctionWrapHandler, WrapValidator

from ledger.document import Document
from ledger.documents import Status

Number = int | float


class LogRecord(Document):
    """One JSON line of a raw log: its `type`, the contract's keys typed, extra keys kept."""

    model_config = ConfigDict(extra="allow")

    @property
    def written(self) -> dict[str, Any]:
        """Every key of the line with its value, typed keys and extra ones alike, as the
        runner wrote it (what a config is compared against, key by key)."""
        return self.to_dict()


class SeedInputs(Document):
    """Where a run's effective seed came from (`ledger.seeds`): its manifest, condition and
    declared seed, and the timestamp token's digest under a witness-bound rule."""

    manifest: str
    condition: str
    seed: int
    witness: str | None = None


class LogHeader(LogRecord):
    """The first line: what the run was given and where and with what it ran.

    Only `type` is required: a foreign runner writes the keys its binding level needs
    (`manifest`, `seed`, `host`, `budget_s` and its config), and a key it leaves out is
    what `ledger.binding` names. `effective_seed` and `seed_inputs` are checked when
    written (`says`)."""

    type: Literal["header"]
    manifest: str | None = None
    seed: int | None = None
    effective_seed: int | None = None
    seed_inputs: SeedInputs | None = None
    host: str | None = None
    budget_s: Number | None = None
    runner: str | None = None
    runner_version: str | None = None
    code_sha256: str | None = None
    data_sha256: str | None = None
    device: str | None = None
    torch: str | None = None
    threads: int | None = None
    started_at: str | None = None
    script_sha256: str | None = None  # the autoresearch adapter's frozen script
    overrides: dict[str, Any] | None = None  # the adapter's constants, by name

    @property
    def config(self) -> dict[str, Any]:
        """The keys the contract does not name: the run's config under its runner's names,
        and any other extras its runner writes."""
        return dict(self.model_extra or {})

    def says(self, key: str) -> bool:
        """Whether the line has `key` at all (null included): a key the contract makes
        optional is checked only where it is written."""
        return key in self.model_fields_set or key in (self.model_extra or {})


def _unknown_unless_number(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A step line's number as written, or None (unknown) when it is not one."""
    try:
        return handler(value)
    except ValidationError:
        return None


StepNumber = Annotated[Number | None, WrapValidator(_unknown_unless_number)]


class LogStep(LogRecord):
    """One optimizer step, where a single step line matters: a crash's last step, whose
    step count and training seconds are the run's (0 where it does not say).

    Step lines are otherwise read in one pass without a model (hundreds per log); their
    `loss` is checked there (a loss that is not a finite number is divergence evidence),
    and `lr`, `tokens` and any extras are kept as written. So a value of another type here
    reads as unknown instead of refusing the line: a step line is evidence, not a claim."""

    type: Literal["step"]
    step: StepNumber = None
    train_seconds: StepNumber = None


class LogEval(LogRecord):
    """The final evaluation: its val_bpb must be the summary's."""

    type: Literal["eval"]
    val_bpb: Number | None = None
    eval_tokens: int | None = None
    eval_bytes: int | None = None


class LogSummary(LogRecord):
    """The last line: how the run ended and what it measured (None where it does not say).

    The autoresearch adapter fills the same model from the script's `---` block
    (`ledger.rawlog`), under these names."""

    type: Literal["summary"]
    status: Status
    val_bpb: Number | None = None
    training_seconds: Number | None = None
    total_seconds: Number | None = None
    num_steps: Number | None = None
    total_tokens: Number | None = None
    num_params: Number | None = None
    peak_mem_mb: Number | None = None
    tokens_per_s: Number | None = None
    mfu: Number | None = None
    warmup_seconds: Number | None = None
    eval_seconds: Number | None = None
    error: str | None = None  # why a `crashed` run died, in the runner's words

    @property
    def metrics(self) -> dict[str, Number | None]:
        """What the run measured, by metric name (a run record's `metrics`)."""
        return {
            "val_bpb": self.val_bpb,
            "training_seconds": self.training_seconds,
            "total_seconds": self.total_seconds,
            "num_steps": self.num_steps,
            "total_tokens": self.total_tokens,
            "num_params": self.num_params,
            "peak_mem_mb": self.peak_mem_mb,
            "tokens_per_s": self.tokens_per_s,
            "mfu": self.mfu,
        }


RECORDS: dict[str, type[LogRecord]] = {
    "header": LogHeader,
    "step": LogStep,
    "eval": LogEval,
    "summary": LogSummary,
}

__all__ = [
    "LogEval",
    "LogHeader",
    "LogRecord",
    "LogStep",
    "LogSummary",
    "RECORDS",
    "SeedInputs",
]
