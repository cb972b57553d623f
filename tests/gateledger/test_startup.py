"""What each reviewer command loads at start-up, seen from a fresh process's `sys.modules`.

Why: a reviewer's `ledger verify` and `ledger audit` were dominated by imports (SciPy's
stats, `statsmodels.api`, DuckDB) that the command never used; one module-top import in the
wrong place brings them back. Checked by name, not by timing (benchmarks/startup_bench.py
has the seconds).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ledger.keys import generate_key
from ledger.store import Store
from stages.campaign import load_campaign
from stages.executors.sim import SimExecutor
from stages.pipeline import run_campaign
from stages.surface import SimParams

# Runs `ledger ARGS...` in this process and, at exit, writes every loaded module to argv[1].
LOADED = (
    "import atexit, json, runpy, sys; out = sys.argv[1]; "
    "atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(sys.modules)))); "
    "sys.argv = ['ledger', *sys.argv[2:]]; runpy.run_module('gateledger', run_name='__main__')"
)
NEVER = ("torch", "matplotlib", "ray", "optuna", "statsmodels.api")
STATISTICS = ("numpy", "scipy", "statsmodels", "pandas")


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    """A three-gate sim campaign walked to the end (OLS with host blocks, Lenth, BH)."""
    from tests.conftest import SIM_CAMPAIGN

    root = tmp_path_factory.mktemp("startup")
    keys = root / "keys"
    path = root / "campaign.toml"
    path.write_text(SIM_CAMPAIGN)
    mp = pytest.MonkeyPatch()
    mp.setenv("LEDGER_KEY_DIR", str(keys))
    try:
        store = Store.init(root / ".ledger", host="h1")
        camp = load_campaign(path)
        sim = SimExecutor(SimParams.from_table(camp.sim, "ABCDE"))
        run_campaign(store, camp, generate_key("tester"), sim, progress=False)
    finally:
        mp.undo()
    return store.root


def loaded(tmp_path, *args: str) -> set[str]:
    """Modules a fresh `ledger ARGS` process had loaded when it exited (which must be 0)."""
    out = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", LOADED, str(out), *args], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(out.read_text()))


def present(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


def test_help_loads_no_statistics_and_no_index(tmp_path):
    modules = loaded(tmp_path, "--help")
    assert present(modules, (*NEVER, *STATISTICS, "duckdb")) == []


def test_verify_loads_only_the_ledger(tmp_path, walked):
    modules = loaded(tmp_path, "--store", str(walked), "verify", "--json")
    assert present(modules, (*NEVER, *STATISTICS, "duckdb")) == []
    assert "ledger.verify" in modules  # the probe sees what ran


def test_verify_opens_duckdb_only_when_there_is_an_index_to_compare(tmp_path, walked):
    """`verify` compares an existing index with a rebuild; DuckDB is loaded for that only."""
    copy = tmp_path / "store"
    subprocess.run(["cp", "-r", str(walked), str(copy)], check=True)
    proc = subprocess.run(
        [sys.executable, "-m", "gateledger", "--store", str(copy), "reindex"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    modules = loaded(tmp_path, "--store", str(copy), "verify", "--json")
    assert "duckdb" in modules
    assert present(modules, (*NEVER, *STATISTICS)) == []


def test_audit_loads_the_statsmodels_it_uses_and_nothing_it_does_not(tmp_path, walked):
    modules = loaded(tmp_path, "--store", str(walked), "audit", "--json")
    assert present(modules, (*NEVER, "duckdb")) == []
    # the decisions are re-derived with statsmodels' OLS: its submodule, not its whole API
    assert "statsmodels.regression.linear_model" in modules
