"""Shared fixtures: an isolated key folder and store per test, and a small sim campaign."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def umasked(mode: int) -> int:
    """`mode` as a new file gets it under this process's umask (CI's may differ from 022)."""
    current = os.umask(0)
    os.umask(current)
    return mode & ~current


SIM_CAMPAIGN = """
[campaign]
name = "t"
metric = "val_bpb"

[base]
depth = 3
aspect_ratio = 48
device_batch_size = 8
total_batch_size = 2048
matrix_lr = 0.02
warmdown_ratio = 0.4

[factors]
A = { key = "total_batch_size", levels = [1024, 4096] }
B = { key = "depth", levels = [2, 4] }
C = { key = "aspect_ratio", levels = [32, 64] }
D = { key = "matrix_lr", levels = [0.01, 0.04] }
E = { key = "warmdown_ratio", levels = [0.2, 0.6] }

[conditions]
base = { }
extra = { A = -1, B = 1, C = -1, D = -1, E = 1 }   # not a point of the half fraction

[[stages]]
name = "screen"
budget = "2m"
design = "fractional"
runs = 16
seeds = [0]
hosts = ["h1"]
rule = { top_k = 3, keep = ["base"], fdr = 0.05 }

[[stages]]
name = "gate"
budget = "10m"
from = "screen"
add = ["extra"]
seeds = [0, 1]
hosts = ["h1", "h2"]
rule = { top_k = 2, within = 0.05, keep = ["base"] }
checks = [ { name = "extra-equivalent", a = "extra", b = "best", within = 0.010 } ]

[[stages]]
name = "final"
budget = "60m"
from = "gate"
seeds = [0, 1]
hosts = ["h1", "h2"]
rule = { top_k = 1, keep = ["base"] }

[sim]
intercept = 1.5
ref_budget = 120
effects = { A = 0.20, B = -0.10 }
penalties = { C = 0.04 }
hosts = { h2 = 0.01 }
noise = 0.002
"""


@pytest.fixture(autouse=True)
def isolated_keys(tmp_path_factory, monkeypatch):
    """Private keys go to a per-test folder, never the user's config dir."""
    keys = tmp_path_factory.mktemp("keys")
    monkeypatch.setenv("LEDGER_KEY_DIR", str(keys))
    monkeypatch.delenv("LEDGER_PASSPHRASE", raising=False)
    monkeypatch.delenv("LEDGER_KEY", raising=False)
    monkeypatch.delenv("LEDGER_STORE", raising=False)
    monkeypatch.delenv("LEDGER_HOST", raising=False)
    return keys


@pytest.fixture
def sim_campaign(tmp_path) -> Path:
    path = tmp_path / "campaign.toml"
    path.write_text(SIM_CAMPAIGN)
    return path


@pytest.fixture
def tsa():
    """A local RFC 3161 timestamp authority on 127.0.0.1 (tests/tsa.py); its clock is `now`."""
    from tests.tsa import LocalTSA

    with LocalTSA("Test TSA A").serve() as authority:
        yield authority


@pytest.fixture
def tsa_b():
    """A second, independent local timestamp authority (its own root)."""
    from tests.tsa import LocalTSA

    with LocalTSA("Test TSA B").serve() as authority:
        yield authority
