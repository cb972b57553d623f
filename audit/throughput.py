"""Claimed training time checked across runs: the same config at the same budget on the same
host trains at about the same speed, so a run whose tokens per training second stand far
apart from its siblings' did not train for the seconds it claims (or not the tokens).

Why: the journal bounds a run's claimed seconds from above (no more than its start-to-record
interval), but not from below, and training GPU-hours are those seconds. A runner claiming
0.001 training seconds for a run that took hours books almost nothing. (A runner that
trains a fixed time budget is held to it directly: `ledger.binding.status_problems`.) Its
siblings, the other seeds of the condition in the same stage on that host, are the
independent measurement: tokens / training seconds is what the hardware did with that
recipe. A shared machine's load and warm-up steps move honest runs of 2-second budgets a
lot: 4x across stages, and 11.2x between the two seeds of one config within a stage
(measured: the smoke pipeline of tests/pipeline while two test suites ran on 2 cores). A
factor of `RATIO` either way is far outside what load explained there, and far inside what
a made-up time shows (1000x and more). What this cannot see, a run whose every
sibling lies the same way, is a documented limit (docs/threat-model.md); only a replay
measures that.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any, TypeGuard

from audit.locate import run_place
from audit.runs import RunCheck, run_problem
from ledger.documents import RunMetrics
from ledger.plan_model import Manifest
from ledger.problems import Problem

RATIO = 100.0


def _rate(metrics: RunMetrics) -> float | None:
    seconds, tokens = metrics.training_seconds, metrics.total_tokens
    if not (_positive(seconds) and _positive(tokens)):
        return None
    return float(tokens) / float(seconds)


def _positive(value: Any) -> TypeGuard[float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def throughput_findings(
    checks: dict[str, RunCheck], manifests: dict[str, Manifest]
) -> list[Problem]:
    """Runs of one condition in one stage on one host whose throughput differs from the
    median of the others by more than `RATIO` (simulated and unplanned runs are not
    compared)."""
    groups: dict[tuple[str, str, str], list[tuple[str, float]]] = defaultdict(list)
    for rid, check in checks.items():
        run = check.observed
        if check.simulated or run.manifest is None or run.manifest not in manifests:
            continue
        rate = _rate(run.metrics)
        if rate is not None and run.condition is not None and run.host is not None:
            groups[(run.manifest, run.condition, run.host)].append((rid, rate))
    out = []
    for (mid, _, host), runs in sorted(groups.items()):
        if len(runs) < 2:
            continue
        for rid, rate in runs:
            median = statistics.median(r for other, r in runs if other != rid)
            if median > 0 and not 1 / RATIO <= rate / median <= RATIO:
                out.append(
                    run_problem(
                        rid,
                        f"trains at {rate:.4g} tokens per training second, {rate / median:.3g}x "
                        f"the median {median:.4g} of the {len(runs) - 1} other run(s) of its "
                        f"config in this stage on host {host}: its training seconds (or tokens) "
                        f"are not what it ran",
                        run_place(checks[rid].record, manifests[mid]),
                        check="throughput consistent",
                        recorded=rate,
                        found=median,
                    )
                )
    return out


__all__ = ["RATIO", "throughput_findings"]
