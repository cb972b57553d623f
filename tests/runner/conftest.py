"""Shared fixtures: a generated text corpus and tiny configs (tests never download)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from runner import config

TINY: dict[str, Any] = {
    "depth": 1,
    "aspect_ratio": 32,
    "head_dim": 16,
    "seq_len": 32,
    "device_batch_size": 4,
    "total_batch_size": 256,
    "eval_tokens": 1024,
}

WORDS = [
    "in",
    "the",
    "beginning",
    "god",
    "created",
    "heaven",
    "and",
    "earth",
    "light",
    "darkness",
    "waters",
    "day",
    "night",
    "firmament",
    "seas",
    "grass",
    "herb",
    "seed",
    "fruit",
    "tree",
    "lights",
    "stars",
    "fowl",
    "whale",
    "cattle",
    "man",
]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~60 KB of deterministic pseudo-English text."""
    rng = random.Random(1234)
    lines = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) + "." for _ in range(5000)
    ]
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_cfg() -> dict[str, Any]:
    """A resolved config small enough for millisecond steps (model_dim 32, 2 heads)."""
    return config.resolve(dict(TINY))


@pytest.fixture(autouse=True)
def _denormals_back_on():
    """In-process runs flush denormals process-wide (runner.device.configure); undo it so that
    later tests in the same worker (Hypothesis' float strategies refuse to run) see IEEE floats."""
    yield
    torch.set_flush_denormal(False)
