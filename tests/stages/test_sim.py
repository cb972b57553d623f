"""The simulator: the surface it promises, and contract-valid logs."""

from __future__ import annotations

import json
import math

import pytest

from ledger.errors import LedgerError
from stages.surface import SimParams, expected_value, simulate_log


def params(**kw):
    return SimParams.from_table(kw, "ABC")


def test_surface_matches_its_formula_by_hand():
    p = params(
        intercept=2.0,
        ref_budget=100,
        budget_gain=0.1,
        effects={"A": 0.2, "B": -0.1},
        interactions={"AB": 0.04},
        penalties={"C": 0.3},
        penalty_decay=1.0,
    )
    # at the reference budget: 2 + 0.1*1 - 0.05*(-1) + 0.02*(1*-1) + 0.15*1*1
    assert expected_value(p, {"A": 1, "B": -1, "C": 1}, 100) == pytest.approx(
        2 + 0.1 + 0.05 - 0.02 + 0.15
    )
    # at 4x the budget the penalty shrinks 4x and the budget gain lowers the intercept
    assert expected_value(p, {"A": 0, "B": 0, "C": 1}, 400) == pytest.approx(
        2 - 0.1 * math.log(4) + 0.15 / 4
    )


def test_log_is_contract_shaped_and_deterministic():
    p = params(noise=0.01)
    kw = dict(
        condition="c" * 64,
        name="a",
        config={"depth": 2},
        coded={"A": 1},
        budget_s=60,
        seed=3,
        host="h",
        manifest="m" * 64,
    )
    lines = [json.loads(x) for x in simulate_log(p, **kw).splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["runner"] == "sim"
    assert lines[0]["manifest"] == "m" * 64 and lines[0]["depth"] == 2
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["status"] == "ok"
    assert summary["training_seconds"] == 60
    again = [json.loads(x) for x in simulate_log(p, **kw).splitlines()]
    assert again[-1]["val_bpb"] == summary["val_bpb"]


def test_diverging_condition_has_null_metric():
    p = params(diverge=["bad"])
    raw = simulate_log(
        p,
        condition="c",
        name="bad",
        config={},
        coded={},
        budget_s=10,
        seed=0,
        host="h",
        manifest=None,
    )
    summary = json.loads(raw.splitlines()[-1])
    assert summary["status"] == "diverged" and summary["val_bpb"] is None
    from ledger.rawlog import parse_raw_log

    assert parse_raw_log(raw).diverge_evidence  # the exploding loss ingest asks for


def test_unknown_keys_and_terms_are_named():
    with pytest.raises(LedgerError, match="unknown key 'noize'"):
        params(noize=1)
    with pytest.raises(LedgerError, match="'D' is not a factor"):
        params(effects={"D": 1})
