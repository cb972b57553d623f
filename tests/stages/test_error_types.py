"""A script can tell the method's failures apart by type (bad campaign files: test_campaign.py),
a bad option a ConfigError, a second freeze AlreadyFrozen; all stay LedgerErrors (exit 2)."""

from __future__ import annotations

import pytest

from ledger.errors import AlreadyFrozen, CampaignError, ConfigError
from ledger.keys import generate_key
from ledger.store import Store
from stages.campaign import load_campaign
from stages.designs import fractional
from stages.execute import select_host_block
from stages.executors import make_executor
from stages.executors.base import RunTask
from stages.plan import freeze_stage, frozen_manifest, runner_config
from tests.conftest import SIM_CAMPAIGN


def test_an_impossible_design_is_a_campaign_error():
    with pytest.raises(CampaignError, match="needs exactly 1 generators"):
        fractional(5, 1, ["D=AB", "E=AC"])
    with pytest.raises(CampaignError, match="is a base factor"):
        fractional(5, 1, ["A=BC"])


def test_an_unknown_runner_key_is_a_config_error(sim_campaign):
    campaign = load_campaign(sim_campaign)
    with pytest.raises(ConfigError, match="condition 'x'"):
        runner_config(campaign, "x", {"no_such_key": 1})


def test_bad_option_values_are_config_errors():
    with pytest.raises(ConfigError, match="unknown executor 'gpu'"):
        make_executor("gpu")
    tasks = [
        RunTask(
            manifest="m",
            stage="s",
            condition="c",
            name="c",
            config={},
            coded={},
            seed=0,
            host=h,
            budget_s=1.0,
        )
        for h in ("h1", "h2")
    ]
    with pytest.raises(ConfigError, match="host 'h3' has no runs"):
        select_host_block(tasks, "h3", "local")


def test_a_second_freeze_is_already_frozen_and_drift_is_a_campaign_error(tmp_path, sim_campaign):
    store = Store.init(tmp_path / ".ledger", host="h1")
    key = generate_key("me")
    campaign = load_campaign(sim_campaign)
    freeze_stage(store, campaign, "screen", key, for_simulation=True)
    with pytest.raises(AlreadyFrozen, match="already frozen"):
        freeze_stage(store, campaign, "screen", key, for_simulation=True)
    drifted = tmp_path / "drifted.toml"
    drifted.write_text(SIM_CAMPAIGN.replace("top_k = 3", "top_k = 4"))
    with pytest.raises(CampaignError, match="differs from its frozen"):
        frozen_manifest(store, load_campaign(drifted), "screen")
