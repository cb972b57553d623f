"""The frozen spec read as models: which stage a plan continues, and a baseline step's
search as its spec wrote it (a wrong-typed key refused, naming it)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from audit.frozen_spec import baseline_spec, stage_from


def _plan(spec: dict[str, Any]) -> Any:
    return SimpleNamespace(spec=spec)  # the two readers look at `spec` only


@pytest.mark.parametrize(
    "spec, parent",
    [
        ({"stage": {"name": "gate", "from": "screen"}}, "screen"),
        ({"stage": {"name": "screen"}}, None),
        ({"stage": {"name": "gate", "from": ""}}, None),  # an empty name continues nothing
        ({"stage": {"name": "gate", "from": 3}}, None),
        ({"stage": "gate"}, None),
        ({}, None),
    ],
)
def test_stage_from_reads_the_stage_tables_from(spec, parent):
    assert stage_from(_plan(spec)) == parent


def test_baseline_spec_reads_a_random_sample_and_a_greedy_step():
    drawn = baseline_spec(_plan({"baseline": {"kind": "random", "seed": 7, "sampled": 4}}))
    assert (drawn.kind, drawn.seed, drawn.sampled, drawn.step) == ("random", 7, 4, None)
    walk = baseline_spec(_plan({"baseline": {"kind": "greedy", "step": 2, "flip": "B"}}))
    assert (walk.kind, walk.step, walk.flip, walk.seed) == ("greedy", 2, "B", None)
    assert baseline_spec(_plan({})).kind is None  # a campaign stage has no baseline


def test_baseline_spec_refuses_a_seed_written_as_text_and_an_unknown_key():
    with pytest.raises(ValidationError) as wrong:
        baseline_spec(_plan({"baseline": {"seed": "7"}}))
    assert wrong.value.errors()[0]["loc"] == ("seed",)
    with pytest.raises(ValidationError) as extra:
        baseline_spec(_plan({"baseline": {"seeds": 7}}))
    assert extra.value.errors()[0]["type"] == "extra_forbidden"
