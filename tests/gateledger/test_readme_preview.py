"""The README's paper preview, run as written: on a fresh machine (no key at all) it works
and says it was signed with the demo key; the demo key never signs a store that did not
choose it (a machine that ran the demo, a store without `--demo-key`)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateledger.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def preview_block() -> list[list[str]]:
    """The README's bash block that starts `ledger --store preview.ledger init`."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    (block,) = [b for b in blocks if b.startswith("ledger --store preview.ledger init")]
    return [shlex.split(line.split("#")[0])[1:] for line in block.splitlines() if line.strip()]


def run(args: list[str]):
    return CliRunner().invoke(cli, args)


def test_the_readme_preview_runs_on_a_fresh_machine(tmp_path, monkeypatch, isolated_keys):
    monkeypatch.chdir(ROOT)
    commands = preview_block()
    store = str(tmp_path / "preview.ledger")
    outputs = []
    for args in commands:
        args = [store if a == "preview.ledger" else a for a in args]
        res = run(args)
        assert res.exit_code == 0, (args, res.output)
        outputs.append(res.output)
    assert "making the demo signing key" in outputs[1]  # said, not silent
    assert "protocol (paper): 169.9 training GPU-hours" in outputs[-1]
    audit = json.loads(run(["--store", store, "audit", "--json"]).output)
    assert "demo_key" in [c["kind"] for c in audit["caveats"]]


def test_the_demo_key_signs_no_store_that_did_not_choose_it(tmp_path, isolated_keys):
    campaign = str(ROOT / "campaigns" / "demo.toml")
    demo, other = str(tmp_path / "demo"), str(tmp_path / "other")
    for store in (demo, other):
        assert run(["--store", store, "init"]).exit_code == 0
    res = run(
        ["--store", demo, "campaign", "--campaign", campaign, "--executor", "sim", "--demo-key"]
    )
    assert res.exit_code == 0, res.output
    assert run(["--store", demo, "anchor"]).exit_code == 0  # the store chose it: it signs
    res = run(["--store", other, "freeze", "screen", "--campaign", campaign, "--sim-only"])
    assert res.exit_code == 2
    assert "but the demo key, which signs only when asked for" in res.output
    assert "ledger keygen --name NAME" in res.output
    assert not list(Path(other).glob("parts/*/objects/*/*"))  # nothing was signed


@pytest.mark.parametrize("passphrase", [None, "s3cret"])
def test_keygen_says_when_a_key_is_not_encrypted(tmp_path, monkeypatch, passphrase):
    if passphrase:
        monkeypatch.setenv("LEDGER_PASSPHRASE", passphrase)
    res = run(["--store", str(tmp_path / "s"), "keygen", "--name", "alice"])
    assert res.exit_code == 0, res.output
    said = "is not encrypted (no passphrase): whoever can read it can sign as alice"
    assert (said in res.output) is (passphrase is None)
