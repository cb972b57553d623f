"""The cross-run throughput check: honest load spreads pass, made-up seconds do not.

The rates are hand-made: tokens over training seconds of two or three runs of one config in
one stage on one host, as `audit.throughput` groups them.
"""

from __future__ import annotations

from types import SimpleNamespace

from audit.runs import ObservedRun
from audit.throughput import throughput_findings
from ledger.documents import RunMetrics, RunRecord

MANIFEST = SimpleNamespace(stage="screen", conditions={"c1": SimpleNamespace(name="base")})


def _check(seed: int, tokens: float, seconds: float) -> SimpleNamespace:
    metrics = RunMetrics(total_tokens=tokens, training_seconds=seconds)
    record = RunRecord(
        manifest="m1",
        stage="screen",
        condition="c1",
        seed=seed,
        host="local",
        run=f"c1/{seed}/local",
        raw_log="0" * 64,
        format="jsonl",
        runner="builtin",
        status="ok",
        metrics=metrics,
        gpus=1,
        recorded_at="2025-01-01T00:00:00+00:00",
    )
    observed = ObservedRun(
        "m1", "c1", seed, "local", record.recorded_at, "ok", metrics, "screen", "jsonl", 1, None
    )
    return SimpleNamespace(simulated=False, record=record, observed=observed)


def test_two_honest_seeds_eleven_times_apart_under_load_pass():
    """Measured in the smoke pipeline on a loaded 2-core machine: 1480 and 16,620 tokens
    per training second for two seeds of one 2-second config (11.2x)."""
    checks = {"r0": _check(0, 2960.0, 2.0), "r1": _check(1, 33240.0, 2.0)}
    assert throughput_findings(checks, {"m1": MANIFEST}) == []  # type: ignore[arg-type]


def test_a_thousandth_of_the_seconds_is_named_with_its_cell():
    """Same tokens in 1/1000 of its siblings' seconds: 1000x their median rate."""
    checks = {
        "r0": _check(0, 30000.0, 2.0),
        "r1": _check(1, 30000.0, 2.2),
        "r2": _check(2, 30000.0, 0.002),
    }
    found = throughput_findings(checks, {"m1": MANIFEST})  # type: ignore[arg-type]
    liar = [p for p in found if p.object == "r2"]
    assert len(liar) == 1 and liar[0].check == "throughput consistent"
    hit = liar[0]
    assert (hit.stage, hit.condition, hit.condition_name, hit.seed, hit.host) == (
        "screen",
        "c1",
        "base",
        2,
        "local",
    )
    # 15,000,000 tokens/s against the median 14,318 of the others (15,000 and 13,636): 1048x
    assert hit.recorded == 15_000_000.0
