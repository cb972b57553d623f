"""The campaign file's models and the checks of a campaign's own runner, called directly.

Independent answers: budgets in seconds by hand, and the placeholders a command template
holds read by eye.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stages.campaign_model import CampaignFile, StageTable, budget_seconds
from stages.runner_checks import placeholder_problems, unknown_key_problems


def test_budgets_in_words_are_seconds():
    assert budget_seconds("90s") == 90.0
    assert budget_seconds("2m") == 120.0
    assert budget_seconds("12h") == 43200.0
    assert budget_seconds(45) == 45.0


def test_a_stage_table_refuses_a_misspelt_key():
    StageTable.model_validate({"name": "screen", "budget": "2m", "design": "full"})
    with pytest.raises(ValidationError, match="desing"):
        StageTable.model_validate({"name": "screen", "budget": "2m", "desing": "full"})
    with pytest.raises(ValidationError):
        CampaignFile.model_validate({"campaign": {"name": "x"}, "stages": [], "extra": 1})


def test_command_placeholders_are_named_when_wrong():
    good = "python train.py --config {config} --seed {seed} --budget {budget}"
    assert placeholder_problems(good) == []
    (typo,) = placeholder_problems("python train.py --config {config} --budget {budjet}")
    assert typo[0] == "campaign.runner.command" and "unknown placeholder {budjet}" in typo[1]
    missing = placeholder_problems("python train.py --seed {seed}")
    assert any("must contain {config}" in why for _, why in missing)
    (fmt,) = placeholder_problems("python t.py {config} {seed:04d}")
    assert "takes no format or conversion" in fmt[1]


def test_config_keys_the_runner_does_not_know_are_named():
    found = unknown_key_problems([("base.hiden", "hiden")], ["hidden", "lr"], "its keys")
    assert len(found) == 1 and found[0][0] == "base.hiden"
    assert unknown_key_problems([("base.lr", "lr")], ["hidden", "lr"], "its keys") == []
