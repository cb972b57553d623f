"""How strongly each stage's logs are bound, from its frozen manifest alone, and said wherever
the verdict is: the audit's JSON, the terminal, the HTML banner and metrics.json. Logs that
bind only by their status evidence never show as a plain CLEAN."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from click.testing import CliRunner

from gateledger.cli.main import cli
from ledger.binding_level import binding_level, weakest


@pytest.mark.parametrize(
    ("runner", "level", "bound", "unbound"),
    [
        ({"kind": "builtin", "version": "1", "code_sha256": "x"}, "builtin", "data", ""),
        ({"kind": "command", "command": "c", "format": "jsonl"}, "header", "seed", "data"),
        ({"kind": "command", "command": "c", "format": "autoresearch"}, "status-only", "", "seed"),
        (
            {"kind": "adapter", "script": "t.py", "format": "autoresearch"},
            "header",
            "script",
            "data",
        ),
    ],
)
def test_the_level_follows_from_the_runner_kind_and_format(runner, level, bound, unbound):
    got = binding_level({"runner": runner})
    assert got.level == level
    assert (bound in got.bound) if bound else True
    assert (unbound in got.unbound) if unbound else not got.unbound
    assert got.header_required is (level != "status-only")


def test_the_weakest_of_several_stages():
    levels = [binding_level({"runner": {"kind": k, "format": f}}) for k, f in
              (("builtin", None), ("command", "autoresearch"), ("command", "jsonl"))]  # fmt: skip
    assert weakest(levels).level == "status-only"
    assert weakest(levels[::2]).level == "header" and weakest([]) is None


SUMMARY_ONLY = textwrap.dedent("""
    import json, sys
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    cfg = json.load(open(args["--config"]))
    print("step 00010 | loss 3.1")
    print("---")
    print(f"val_bpb:          {1.0 + cfg['lr']:.6f}")
    print("training_seconds: 0.01")
    print("total_seconds:    0.02")
""")
CAMPAIGN = """
[campaign]
name = "bare"
runner = {{ command = "{python} {script} --config {{config}}", format = "autoresearch", keys = ["lr"] }}
[base]
lr = 0.02
[conditions]
slow = {{ lr = 0.01 }}
fast = {{ lr = 0.03 }}
[[stages]]
name = "gate"
budget = "5m"
add = ["slow", "fast"]
rule = {{ top_k = 1 }}
"""


@pytest.mark.slow
def test_status_only_logs_are_never_a_plain_clean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(SUMMARY_ONLY)
    (tmp_path / "c.toml").write_text(
        CAMPAIGN.format(python=sys.executable, script=tmp_path / "train.py")
    )
    runner = CliRunner()

    def ledger(*args):
        return runner.invoke(cli, ["--store", ".ledger", "--host", "local", *args])

    assert ledger("init").exit_code == 0 and ledger("keygen", "--name", "me").exit_code == 0
    for step in ("freeze", "run", "decide"):
        assert ledger(step, "gate", "--campaign", "c.toml").exit_code == 0
    audit = json.loads(ledger("audit", "--json").output)
    assert audit["verdict"] == "clean"  # every check passed ...
    assert audit["binding"]["weakest"] == "status-only"  # ... on logs that prove less
    assert audit["stages"][0]["binding"]["level"] == "status-only"
    assert "config" in audit["stages"][0]["binding"]["unbound"]
    text = ledger("audit").output
    assert "audit: clean with status-only logs" in text
    assert "logs bound: status-only" in text and "caveat: Status-only logs (gate)" in text
    res = ledger("report", "html", "--campaign", "c.toml", "--out", "report", "--metrics", "m.json")
    assert res.exit_code == 0, res.output
    html = (tmp_path / "report" / "report.html").read_text()
    assert '<div class="banner caveat">' in html and '<div class="banner clean">' not in html
    assert "CLEAN (status-only logs: configs, seeds and budgets not proved)" in html
    assert "nothing proves which config, seed or budget" in html
    assert "sim-only plan" not in html and "not hashed (own runner" in html
    assert json.loads((tmp_path / "m.json").read_text())["binding"] == "status-only"
