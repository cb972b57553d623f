"""Runner config: defaults, strict validation and derived model shape.

Every key is checked (type and range) and unknown keys are rejected, because a typo in a
screening campaign would otherwise silently run the default recipe.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import UsageError

# Defaults are sized for a sensible laptop-CPU run (model_dim 128, ~0.92M params).
DEFAULTS: dict[str, Any] = {
    "depth": 4,
    "aspect_ratio": 32,
    "head_dim": 32,
    "seq_len": 128,
    "device_batch_size": 16,
    "total_batch_size": 2048,
    "matrix_lr": 0.02,
    "embedding_lr": 0.2,
    "unembedding_lr": 0.004,
    "scalar_lr": 0.5,
    "weight_decay": 0.2,
    "adam_betas": [0.8, 0.95],
    "warmup_ratio": 0.0,
    "warmdown_ratio": 0.5,
    "final_lr_frac": 0.0,
    "logit_softcap": 15.0,
    "eval_tokens": 65536,
    "compile": False,
    "window_pattern": "L",
    "value_embeds": True,  # helped at the demo's size (docs/runner.md, Performance)
}
# Keys added after the raw-log contract was first written, with what a log that lacks one ran
# with (the model before the key existed; fixed even if a default changes later), so that old
# logs stay valid and replay exactly.
ABSENT_MEANS: dict[str, Any] = {"window_pattern": "L", "value_embeds": False}


def _int(lo: int, hi: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return f"must be an integer, got {json.dumps(v)}"
        if not lo <= v <= hi:
            return f"must be in [{lo}, {hi}], got {v}"
        return None

    return check


def _float(
    lo: float, hi: float, lo_open: bool = False, hi_open: bool = False
) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return f"must be a number, got {json.dumps(v)}"
        if not math.isfinite(v):
            return f"must be finite, got {v}"
        if (v < lo or (lo_open and v == lo)) or (v > hi or (hi_open and v == hi)):
            lb, rb = ("(" if lo_open else "["), (")" if hi_open else "]")
            return f"must be in {lb}{lo}, {hi}{rb}, got {v}"
        return None

    return check


def _betas(v: Any) -> str | None:
    if not isinstance(v, list) or len(v) != 2:
        return f"must be a list of two numbers [b1, b2], got {json.dumps(v)}"
    for b in v:
        err = _float(0.0, 1.0, hi_open=True)(b)
        if err:
            return "each beta " + err
    return None


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"must be true or false, got {json.dumps(v)}"


_PATTERN = re.compile(r"[SL]{1,256}")


def _window_pattern(v: Any) -> str | None:
    if not isinstance(v, str) or not _PATTERN.fullmatch(v):
        return f"must be a string of 1 to 256 letters S (short window) and L (long), got {json.dumps(v)}"
    return None


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "depth": _int(1, 256),
    "aspect_ratio": _int(1, 4096),
    "head_dim": _int(2, 1024),
    "seq_len": _int(2, 1 << 17),
    "device_batch_size": _int(1, 1 << 16),
    "total_batch_size": _int(2, 1 << 30),
    "matrix_lr": _float(0.0, 1e6),
    "embedding_lr": _float(0.0, 1e6),
    "unembedding_lr": _float(0.0, 1e6),
    "scalar_lr": _float(0.0, 1e6),
    "weight_decay": _float(0.0, 1e3),
    "adam_betas": _betas,
    "warmup_ratio": _float(0.0, 1.0),
    "warmdown_ratio": _float(0.0, 1.0),
    "final_lr_frac": _float(0.0, 1.0),
    "logit_softcap": _float(0.0, 1e4),
    "eval_tokens": _int(1, 1 << 34),
    "compile": _bool,
    "window_pattern": _window_pattern,
    "value_embeds": _bool,
}
assert set(CHECKS) == set(DEFAULTS) and set(ABSENT_MEANS) <= set(DEFAULTS)


@dataclass(frozen=True)
class Shape:
    """Model shape derived from the config (autoresearch's formula)."""

    model_dim: int
    n_heads: int
    grad_accum_steps: int


def resolve(raw: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Merge ``raw`` over the defaults, validating each key; raise UsageError naming the key."""
    if not isinstance(raw, dict):
        raise UsageError(f"{source}: must be a JSON object of config keys")
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise UsageError(
            f"{source}: unknown config key {unknown[0]!r} (known: {', '.join(DEFAULTS)})"
        )
    cfg = {**DEFAULTS, **raw}
    for key, check in CHECKS.items():
        err = check(cfg[key])
        if err:
            raise UsageError(f"{source}: key {key!r} {err}")
    if cfg["head_dim"] % 2:
        raise UsageError(
            f"{source}: key 'head_dim' must be even (RoPE rotates pairs), got {cfg['head_dim']}"
        )
    micro = cfg["device_batch_size"] * cfg["seq_len"]
    if cfg["total_batch_size"] % micro:
        raise UsageError(
            f"{source}: key 'total_batch_size' ({cfg['total_batch_size']}) must be a multiple of "
            f"device_batch_size*seq_len ({micro})"
        )
    if cfg["warmup_ratio"] + cfg["warmdown_ratio"] > 1.0:
        raise UsageError(f"{source}: keys 'warmup_ratio' + 'warmdown_ratio' must not exceed 1")
    cfg["adam_betas"] = [float(b) for b in cfg["adam_betas"]]
    return cfg


def load(path: str | Path) -> dict[str, Any]:
    """Read and resolve a JSON config file; every failure is a UsageError naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{p}: cannot read config ({e.__class__.__name__}: {e})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(
            f"{p}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    return resolve(raw, str(p))


def shape(cfg: dict[str, Any]) -> Shape:
    """``model_dim = ceil(depth*aspect_ratio/head_dim)*head_dim``; accumulation from batch sizes."""
    hd = cfg["head_dim"]
    model_dim = math.ceil(cfg["depth"] * cfg["aspect_ratio"] / hd) * hd
    accum = cfg["total_batch_size"] // (cfg["device_batch_size"] * cfg["seq_len"])
    return Shape(model_dim=model_dim, n_heads=model_dim // hd, grad_accum_steps=accum)
