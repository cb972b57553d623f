"""A synthetic response surface with known effects: instant, contract-valid raw logs.

Why: the method and the audit must be testable against planted truth (do the planted effects
come back with the right signs and sizes?), and a campaign's cost must be previewable at real
budgets in seconds. Logs say `runner: sim` so audit reports them apart from real training.

The surface (all knobs in the campaign's `[sim]` table, defaults below)::

    val_bpb = intercept
              - budget_gain * ln(budget / ref_budget)
              + sum_j effects[j] / 2 * x_j                       (x_j coded -1..+1)
              + sum_jk interactions[jk] / 2 * x_j * x_k
              + sum_j penalties[j] / 2 * x_j * (ref_budget / budget) ** penalty_decay
              + hosts[host] + noise * N(0, 1)

`penalties` are the "high-penalty directions" that shrink as the budget grows. A condition
named in `diverge` diverges in every run: its log stops at 30% of the budget on a step whose
loss is 10x the first step's (the evidence ingest asks of a diverged run), with no metric.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.errors import CampaignError

SIM_VERSION = "1"
DEFAULTS: dict[str, Any] = {
    "intercept": 2.0,
    "ref_budget": 120.0,
    "budget_gain": 0.08,
    "effects": {},
    "interactions": {},
    "penalties": {},
    "penalty_decay": 0.5,
    "hosts": {},
    "noise": 0.004,
    "diverge": [],
    "overhead_s": 15.0,
    "tokens_per_s": 250000.0,
}


@dataclass(frozen=True)
class SimParams:
    """Validated `[sim]` table."""

    intercept: float
    ref_budget: float
    budget_gain: float
    effects: dict[str, float] = field(default_factory=dict)
    interactions: dict[str, float] = field(default_factory=dict)
    penalties: dict[str, float] = field(default_factory=dict)
    penalty_decay: float = 0.5
    hosts: dict[str, float] = field(default_factory=dict)
    noise: float = 0.004
    diverge: list[str] = field(default_factory=list)
    overhead_s: float = 15.0
    tokens_per_s: float = 250000.0

    @classmethod
    def from_table(cls, table: dict[str, Any], letters: str, where: str = "[sim]") -> SimParams:
        unknown = set(table) - set(DEFAULTS)
        if unknown:
            raise CampaignError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        merged = {**DEFAULTS, **table}
        for key in ("effects", "penalties"):
            for term in merged[key]:
                if term not in letters:
                    raise CampaignError(f"{where}.{key}: {term!r} is not a factor")
        for term in merged["interactions"]:
            if len(term) < 2 or any(ch not in letters for ch in term):
                raise CampaignError(f"{where}.interactions: {term!r} is not a product of factors")
        try:
            return cls(
                intercept=float(merged["intercept"]),
                ref_budget=float(merged["ref_budget"]),
                budget_gain=float(merged["budget_gain"]),
                effects={k: float(v) for k, v in merged["effects"].items()},
                interactions={k: float(v) for k, v in merged["interactions"].items()},
                penalties={k: float(v) for k, v in merged["penalties"].items()},
                penalty_decay=float(merged["penalty_decay"]),
                hosts={k: float(v) for k, v in merged["hosts"].items()},
                noise=float(merged["noise"]),
                diverge=[str(n) for n in merged["diverge"]],
                overhead_s=float(merged["overhead_s"]),
                tokens_per_s=float(merged["tokens_per_s"]),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise CampaignError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in DEFAULTS}


def expected_value(params: SimParams, coded: dict[str, float | None], budget_s: float) -> float:
    """Noise-free mean of the surface for one condition (uncoded factors sit at 0)."""
    x: defaultdict[str, float] = defaultdict(float, {k: (v or 0.0) for k, v in coded.items()})
    value = params.intercept - params.budget_gain * math.log(budget_s / params.ref_budget)
    value += sum(eff / 2 * x[term] for term, eff in params.effects.items())
    for term, eff in params.interactions.items():
        value += eff / 2 * math.prod(x[ch] for ch in term)
    shrink = (params.ref_budget / budget_s) ** params.penalty_decay
    value += sum(pen / 2 * x[term] * shrink for term, pen in params.penalties.items())
    return value


@dataclass(frozen=True)
class SimOutcome:
    """What one simulated run reports: status, final val_bpb, seconds it used; and the
    unrounded noisy value of the surface its step losses follow."""

    status: str
    val_bpb: float | None
    training_seconds: float
    total_seconds: float
    value: float


def run_outcome(
    params: SimParams,
    *,
    name: str,
    coded: dict[str, float | None],
    budget_s: float,
    host: str,
    z: float,
) -> SimOutcome:
    """The run's outcome given its standard-normal noise draw `z` (pure).

    Why a function of `z`: the sim executor draws `z` from the run's identity (one value per
    condition, seed, host and budget), `ledger evaluate` draws a fresh one per trial; both
    must turn it into the same status, value and cost.
    """
    diverged = name in params.diverge
    final = expected_value(params, coded, budget_s) + params.hosts.get(host, 0.0)
    final += params.noise * z
    train_s = budget_s if not diverged else round(budget_s * 0.3, 6)
    return SimOutcome(
        "diverged" if diverged else "ok",
        None if diverged else round(final, 6),
        train_s,
        train_s + params.overhead_s,
        final,
    )


def _rng(*parts: Any) -> random.Random:
    seed = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    return random.Random(int.from_bytes(seed[:8], "big"))


def _logged_steps(steps: int, count: int) -> list[int]:
    """`count` step numbers from 1 to `steps`, evenly spread (4: 1, n/4, n/2, n)."""
    if count <= 4:
        return [1, steps // 4, steps // 2, steps]
    return sorted({max(1, round(steps * k / (count - 1))) for k in range(count)})


def simulate_log(
    params: SimParams,
    *,
    condition: str,
    name: str,
    config: dict[str, Any],
    coded: dict[str, float | None],
    budget_s: float,
    seed: int,
    host: str,
    manifest: str | None,
    log_steps: int = 4,
    effective_seed: int | None = None,
    witness: str | None = None,
) -> bytes:
    """A contract-valid raw log (header, steps, eval, summary) for one simulated run.

    `log_steps` step lines are written, spread over the run (the runner logs every second;
    benchmarks ask for realistic lengths). With `effective_seed` (the manifest's seed rule,
    `ledger.seeds`) the header says what a real run's would: `seed` and `effective_seed` are
    the derived seed, `seed_inputs` its inputs. The noise is still drawn from the cell's
    identity (condition, declared seed, host, budget), so a preview gives the same numbers
    however often a stage is re-frozen.
    """
    rng = _rng(condition, seed, host, budget_s)
    seeds: dict[str, Any] = {"seed": seed, "effective_seed": seed, "seed_inputs": None}
    if effective_seed is not None:
        seeds = {
            "seed": effective_seed,
            "effective_seed": effective_seed,
            "seed_inputs": {"manifest": manifest, "condition": condition, "seed": seed},
        }
        if witness is not None:
            seeds["seed_inputs"]["witness"] = witness
    lines = [_header(params, config, seeds, budget_s=budget_s, host=host, manifest=manifest)]
    tokens_per_step = int(config.get("total_batch_size", 8192))
    steps = max(1, int(budget_s * params.tokens_per_s / tokens_per_step))
    z = rng.gauss(0.0, 1.0)
    outcome = run_outcome(params, name=name, coded=coded, budget_s=budget_s, host=host, z=z)
    final = outcome.value  # the step losses follow the unrounded value
    diverged = outcome.status == "diverged"
    _append_steps(lines, final, steps, tokens_per_step, budget_s, log_steps)
    if diverged:
        lines = _diverge(lines, outcome, steps, tokens_per_step)
    else:
        lines.append(
            {"type": "eval", "val_bpb": round(final, 6), "eval_tokens": 0, "eval_bytes": 0}
        )
    lines.append(
        {
            "type": "summary",
            "status": outcome.status,
            "val_bpb": outcome.val_bpb,
            "training_seconds": outcome.training_seconds,
            "total_seconds": outcome.total_seconds,
            "num_steps": steps,
            "total_tokens": steps * tokens_per_step,
            "num_params": None,
            "peak_mem_mb": None,
            "tokens_per_s": params.tokens_per_s,
            "mfu": None,
        }
    )
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _header(
    params: SimParams,
    config: dict[str, Any],
    seeds: dict[str, Any],
    *,
    budget_s: float,
    host: str,
    manifest: str | None,
) -> dict[str, Any]:
    """The header a real run would write, with `runner: sim` and the surface it was drawn from."""
    return {
        "type": "header",
        **config,
        **seeds,
        "budget_s": budget_s,
        "device": "sim",
        "host": host,
        "torch": None,
        "runner": "sim",
        "runner_version": SIM_VERSION,
        "code_sha256": None,
        "data_sha256": None,
        "manifest": manifest,
        "started_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "sim": params.to_dict(),
    }


def _append_steps(
    lines: list[dict[str, Any]],
    final: float,
    steps: int,
    tokens_per_step: int,
    budget_s: float,
    log_steps: int,
) -> None:
    """Step lines whose loss decays towards the run's final value (in nats), each logged
    step once."""
    for i in sorted(set(_logged_steps(steps, log_steps))):
        if i < 1:
            continue
        frac = i / steps
        loss = final * math.log(2) * (1 + 2.0 * (1 - frac) ** 2)
        lines.append(
            {
                "type": "step",
                "step": i,
                "train_seconds": round(budget_s * frac, 6),
                "loss": round(loss, 6),
                "lr": 1.0,
                "tokens": i * tokens_per_step,
            }
        )


def _diverge(
    lines: list[dict[str, Any]], outcome: SimOutcome, steps: int, tokens_per_step: int
) -> list[dict[str, Any]]:
    """As the runner does: the run stops at the step whose loss exploded (> 3 x the first)."""
    train_s = outcome.training_seconds
    lines = [line for line in lines if line["type"] != "step" or line["step"] == 1]
    first = lines[-1]["loss"]
    step = max(2, int(steps * 0.3))
    lines.append(
        {
            "type": "step",
            "step": step,
            "train_seconds": train_s,
            "loss": round(first * 10, 6),
            "lr": 1.0,
            "tokens": step * tokens_per_step,
        }
    )
    return lines
