"""Config validation and the CLI's one-line errors (exit 2, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import config
from runner.cli import parse_budget
from runner.errors import UsageError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_resolve_and_shape() -> None:
    cfg = config.resolve({})
    shp = config.shape(cfg)
    assert shp.model_dim == 128 and shp.n_heads == 4 and shp.grad_accum_steps == 1


def test_model_dim_rounds_up_to_head_dim() -> None:
    cfg = config.resolve({"depth": 3, "aspect_ratio": 40, "head_dim": 32, "total_batch_size": 2048})
    assert config.shape(cfg).model_dim == 128  # ceil(120/32)*32


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"detph": 4}, "'detph'"),
        ({"depth": "4"}, "'depth'"),
        ({"depth": 0}, "'depth'"),
        ({"depth": True}, "'depth'"),
        ({"matrix_lr": -1}, "'matrix_lr'"),
        ({"adam_betas": [0.9]}, "'adam_betas'"),
        ({"adam_betas": [0.9, 1.0]}, "'adam_betas'"),
        ({"total_batch_size": 1000}, "'total_batch_size'"),
        ({"head_dim": 15}, "'head_dim'"),
        ({"warmup_ratio": 0.6, "warmdown_ratio": 0.6}, "'warmup_ratio'"),
        ({"compile": 1}, "'compile'"),
    ],
)
def test_bad_values_name_the_key(raw: dict, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        config.resolve(raw, "cfg.json")


@pytest.mark.parametrize(
    ("text", "secs"), [("300s", 300), ("5m", 300), ("2h", 7200), ("90", 90), ("1.5m", 90)]
)
def test_budget_units(text: str, secs: float) -> None:
    assert parse_budget(text) == secs


@pytest.mark.parametrize("text", ["0s", "-5", "5d", "abc", ""])
def test_bad_budget(text: str) -> None:
    with pytest.raises(UsageError, match="--budget"):
        parse_budget(text)


def _cli(tmp_path: Path, cfg_text: str | None, *extra: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "cfg.json"
    if cfg_text is not None:
        cfg.write_text(cfg_text)
    args = [
        "--config",
        str(cfg),
        "--budget",
        "1s",
        "--seed",
        "0",
        "--log",
        str(tmp_path / "l.jsonl"),
        *extra,
    ]
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("cfg_text", "extra", "needle"),
    [
        (json.dumps({"depth": 2, "bogus": 1}), (), "'bogus'"),
        (json.dumps({"depth": "deep"}), (), "'depth'"),
        (json.dumps({"depth": 0}), (), "'depth'"),
        (json.dumps({"total_batch_size": 100}), (), "'total_batch_size'"),
        ("{not json", (), "cfg.json"),
        (None, (), "cfg.json"),
        ("[1, 2]", (), "JSON object"),
        ("{}", ("--budget", "soon"), "--budget"),
        ("{}", ("--steps", "0"), "--steps"),
        ("{}", ("--data", "/nonexistent/corpus"), "/nonexistent/corpus"),
    ],
)
def test_cli_errors_are_one_line_exit_2(
    tmp_path: Path, cfg_text: str | None, extra: tuple, needle: str
) -> None:
    proc = _cli(tmp_path, cfg_text, *extra)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*config.DEFAULTS, "zzz"]), _json, max_size=4))
def test_any_json_config_resolves_or_raises_usage_error(raw: dict) -> None:
    try:
        cfg = config.resolve(raw)
    except UsageError as e:
        assert "\n" not in str(e)
        return
    shp = config.shape(cfg)
    assert shp.model_dim % cfg["head_dim"] == 0 and shp.grad_accum_steps >= 1
