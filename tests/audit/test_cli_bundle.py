"""A reviewer's path: `ledger export`, then `ledger audit --bundle` in an empty directory."""

from __future__ import annotations

import io
import json
import tarfile

from click.testing import CliRunner

from gateledger.cli.main import cli


def test_export_then_audit_bundle_elsewhere(tmp_path, sim_campaign, monkeypatch):
    runner = CliRunner()
    store = str(tmp_path / ".ledger")
    runner.invoke(cli, ["--store", store, "init"])
    runner.invoke(cli, ["--store", store, "keygen", "--name", "me"])
    res = runner.invoke(
        cli,
        [
            "--store",
            store,
            "campaign",
            "--campaign",
            str(sim_campaign),
            "--executor",
            "sim",
            "--until",
            "gate",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    bundle = tmp_path / "evidence.tar.gz"
    res = runner.invoke(
        cli, ["--store", store, "export", str(bundle), "--campaign", str(sim_campaign)]
    )
    assert res.exit_code == 0, res.output

    empty = tmp_path / "reviewer"
    empty.mkdir()
    monkeypatch.chdir(empty)
    res = runner.invoke(cli, ["audit", "--bundle", str(bundle), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["verdict"] == "clean" and [s["stage"] for s in out["stages"]] == ["screen", "gate"]
    assert list(empty.iterdir()) == []  # nothing left behind in the reviewer's folder

    # a bundle whose raw log was altered in transit fails, naming the member
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(bundle) as src, tarfile.open(tampered, "w:gz") as dst:
        changed = False
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if data is not None and not changed and b'"type": "summary"' in data:
                data = data.replace(b'"status": "ok"', b'"status": "ok" ', 1)
                member.size = len(data)
                changed = True
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    assert changed
    res = runner.invoke(cli, ["audit", "--bundle", str(tampered)])
    assert res.exit_code == 1
    assert "bundle" in res.output or "corrupted" in res.output
