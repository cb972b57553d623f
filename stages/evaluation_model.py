"""The result of `ledger evaluate`, typed: what is saved (`--save`), re-read (`--rerun`) and
shown in the report, through one model.

Why a model: a saved evaluation is read by another process, another version, a reviewer;
with `extra="forbid"` a renamed or misspelt field is an error naming it, not a silent
default. Files written before this format (version 1) are refused with one line saying so.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ledger.errors import InputError
from ledger.fsutil import atomic_write

FORMAT: Literal["gateledger-evaluation"] = "gateledger-evaluation"
VERSION: Literal[2] = 2
EVALUATIONS_DIR = "evaluations"

Interval = tuple[float, float]
CostModel = Literal["restart", "continue"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Estimate(_Model):
    """A figure and its 95% intervals, each labelled by what it covers.

    `mc`: Monte Carlo error of a finite number of trials (Wilson for proportions, Student-t
    for means; None when every trial is the same walk). `data`: the recorded data's own
    uncertainty, a bootstrap over replicates (None without one). `total`: both together.
    """

    value: float | None
    mc: Interval | None = None
    data: Interval | None = None
    total: Interval | None = None


class MethodResult(_Model):
    """One method's outcome over the trials (the same metric set for every method)."""

    method: str
    description: str
    deterministic: bool  # every trial was the same walk: no Monte Carlo interval
    p_pick_best: Estimate  # the final pick is the true best (ties count)
    p_best_in_set: Estimate | None  # the true best is in the final set (methods that end with one)
    p_top3: Estimate  # the final pick is among the three truly best
    regret: Estimate  # truth(pick) - truth(best), metric units
    regret_trials: int
    gpu_hours: Estimate
    picks: dict[str, int]


class Screen(_Model):
    """The effect screen at one gate against the planted truth (sim only)."""

    level: float
    active: list[str]
    trials_with_effects: int
    fdr: Estimate | None
    power: Estimate | None
    true_effects: dict[str, float]
    note: str | None


class Gate(_Model):
    stage: str
    budget_s: float
    reached: float
    candidates_mean: float | None
    promoted_mean: float | None
    gpu_hours_mean: float | None
    decision_changed: float
    modal_share: float | None
    reference_promoted: list[str]
    screen: Screen | None


class ProtocolResult(MethodResult):
    stopped_early: int
    gates: list[Gate]


class BracketPlan(_Model):
    """A synchronous bracket as planned: configurations per rung and the rung budgets."""

    s: int
    n: list[int]
    budget_s: list[float]


class BaselineResult(MethodResult):
    target_gpu_hours: float
    spent_ratio_mean: float | None
    spent_ratio_min: float | None
    spent_ratio_max: float | None
    evaluations_mean: float
    pool: int
    eta: int | None
    min_budget_s: float | None
    max_budget_s: float
    seeds_per_evaluation: int
    brackets: list[BracketPlan]
    note: str | None


class Comparison(_Model):
    """Protocol minus one baseline, trial by trial (same trials, same noise)."""

    baseline: str
    p_pick_best_diff: Estimate
    regret_diff: Estimate
    gpu_hours_ratio: float | None  # the baseline's GPU-hours / the protocol's
    verdict: Literal["better", "worse", "no detectable difference", "identical", "not comparable"]
    sentence: str


class TruthRow(_Model):
    name: str
    id: str
    value: float


class Truth(_Model):
    best: str
    best_id: str
    value: float
    ties: list[str]
    flat: bool  # every known candidate ties: no method can be told apart
    final_budget_s: float
    pool: int
    unknown: list[str]
    below_final_budget: list[str]
    top: list[TruthRow]


class WalkSummary(_Model):
    promoted: dict[str, list[str]]
    pick: str | None
    gpu_hours: float


class RecordedWalk(_Model):
    """The walk on the recorded replicates themselves, or why there is none."""

    walk: WalkSummary | None
    unavailable: str | None


class Uncertainty(_Model):
    """Which intervals the figures carry, and why."""

    monte_carlo: str
    data: Literal["bootstrap", "planted", "single-replicate", "off"]
    bootstrap_worlds: int
    bootstrap_trials: int
    note: str


class Inputs(_Model):
    campaign_path: str  # absolute
    campaign_sha256: str
    trials: int
    seed: int
    against: list[str]
    eta: int
    min_budget_s: float | None
    seeds_per_evaluation: int
    cost_model: CostModel
    bootstrap: int
    bootstrap_trials: int
    executor: Literal["sim", "replay"]
    table: str | None = None  # absolute
    table_sha256: str | None = None
    table_rows: int | None = None
    from_store: str | None = None  # absolute
    sim: dict[str, object] | None = None


class Evaluation(_Model):
    format: Literal["gateledger-evaluation"] = FORMAT
    version: Literal[2] = VERSION
    campaign: str
    trials: int
    seed: int
    cost_model: CostModel
    truth: Truth
    protocol: ProtocolResult
    baselines: list[BaselineResult]
    comparisons: list[Comparison]
    verdict: str
    warnings: list[str]
    uncertainty: Uncertainty
    reference: WalkSummary
    recorded: RecordedWalk | None
    inputs: Inputs
    versions: dict[str, str | None]


# what a rerun must reproduce (inputs may name other paths, versions may differ)
RESULT_FIELDS = (
    "trials",
    "seed",
    "cost_model",
    "truth",
    "protocol",
    "baselines",
    "comparisons",
    "verdict",
    "warnings",
    "uncertainty",
    "reference",
    "recorded",
)


def evaluation_path(store_root: str | Path, campaign_name: str) -> Path:
    """Where `ledger evaluate --save` keeps a campaign's latest evaluation (outside evidence)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", campaign_name).strip("-.")[:48] or "campaign"
    tag = hashlib.sha256(campaign_name.encode()).hexdigest()[:8]
    return Path(store_root) / EVALUATIONS_DIR / f"{slug}-{tag}.json"


def save_evaluation(path: str | Path, result: Evaluation) -> None:
    """Write an evaluation as JSON, atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (result.model_dump_json(indent=2) + "\n").encode())


class SavedStamp(BaseModel):
    """What a saved file says it is, read before the rest: a file of another format or an
    older version is refused with one line saying which, not with the model's first error."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    format: Any = None
    version: Any = None


def load_evaluation(path: str | Path) -> Evaluation:
    """Read a saved evaluation; one LedgerError line naming the file when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"evaluation file not found: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read evaluation file {path}: {exc}") from None
    try:
        stamp = SavedStamp.model_validate(data)
    except ValidationError:
        stamp = SavedStamp()
    if stamp.format != FORMAT:
        raise InputError(f"{path}: not a gateledger evaluation (no format {FORMAT!r})")
    if stamp.version != VERSION:
        raise InputError(
            f"{path}: evaluation format version {stamp.version!r} predates version "
            f"{VERSION} (typed results, cost models, bootstrap intervals): run `ledger "
            f"evaluate` again to replace it"
        )
    try:
        return Evaluation.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{path}: not a valid evaluation at {where}: {first['msg']}") from None


def differences(saved: Evaluation, fresh: Evaluation) -> list[str]:
    """Dotted keys where a rerun's numbers differ from a saved evaluation's."""
    out: list[str] = []

    def walk(path: str, a: object, b: object) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), key=str):
                walk(f"{path}.{key}" if path else str(key), a.get(key), b.get(key))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(f"{path}[{i}]", x, y)
        elif a != b:
            out.append(f"{path}: saved {a!r}, rerun {b!r}")

    walk(
        "",
        saved.model_dump(include=set(RESULT_FIELDS)),
        fresh.model_dump(include=set(RESULT_FIELDS)),
    )
    return out


def significant(x: float | None, digits: int = 4) -> str:
    """`x` with `digits` significant digits and no exponent (GPU-hours of a CPU-second
    table and of a twelve-hour stage alike): 0.02130, 65.63, 169.7, 12345. Here, beside
    the model, so that printing a result loads no statistics (NumPy, SciPy)."""
    if x is None:
        return "—"
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    places = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{places}f}"
