"""One in-memory pass through a protocol (`stages.protocol_walk`), with hand-made answers.

Each run's value is a known function of its config (matrix_lr high is better by 0.2, depth
high worse by 0.1), so which conditions each gate promotes, and the GPU-seconds charged
(budget x runs x GPUs), are known by hand.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from stages.campaign import parse_campaign
from stages.protocol_walk import ProtocolWalker

TEXT = """
[campaign]
name = "walk"
[base]
matrix_lr = 0.02
depth = 3
[factors]
A = { key = "matrix_lr", levels = [0.01, 0.04] }
B = { key = "depth", levels = [2, 4] }
[[stages]]
name = "screen"
budget = "10s"
design = "full"
seeds = [0]
hosts = ["h1"]
rule = { top_k = 2 }
[[stages]]
name = "final"
budget = "30s"
from = "screen"
seeds = [0, 1]
hosts = ["h1"]
rule = { top_k = 1 }
"""


class Answers:
    """Answers every run from its config; charges its budget in GPU-seconds."""

    def __init__(self) -> None:
        self.asked: list[tuple[Any, float]] = []

    def run(self, key, cond, budget_s, host, gpus, seed=None):
        config = cond.config
        value = 1.0 - 0.2 * (config["matrix_lr"] == 0.04) + 0.1 * (config["depth"] == 4)
        self.asked.append((key, budget_s))
        return SimpleNamespace(status="ok", value=value), budget_s * gpus


def test_the_walk_promotes_what_the_rule_gives_and_charges_every_run():
    camp = parse_campaign(TEXT, "walk.toml", runner_keys=False)
    answers = Answers()
    walk = ProtocolWalker(camp, resolve_configs=False).walk(answers)  # type: ignore[arg-type]
    screen, final = walk.gates
    names = walk.names
    # values: a (lr high) 0.8, (1) 1.0, ab 0.9, b 1.1: the screen keeps the two best
    assert sorted(names[c] for c in screen.candidates) == ["(1)", "a", "ab", "b"]
    assert [names[c] for c in screen.promoted] == ["a", "ab"]
    assert [names[c] for c in final.promoted] == ["a"] and walk.pick == final.best
    assert names[walk.pick] == "a"
    # 4 runs at 10 s, then 2 conditions x 2 seeds at 30 s, one GPU each
    assert screen.gpu_s == 40.0 and final.gpu_s == 120.0 and walk.gpu_s == 160.0
    assert len(answers.asked) == 8 and walk.stopped is None
