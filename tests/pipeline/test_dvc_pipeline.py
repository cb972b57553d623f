"""The main job in a temporary clone: `dvc repro`, then push/pull to a second clone and audit.

Slow (real training and the corpus download from the package registry); CI runs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def sh(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


@pytest.fixture
def clone(tmp_path, isolated_keys):
    """A clone of the working tree (tracked files, as committed or not) with the smoke campaign."""
    dest = tmp_path / "clone"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "LEDGER_KEY_DIR": str(isolated_keys),
    }
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "clone"],
    ):
        sh(cmd, dest, env)
    shutil.copy(Path(__file__).with_name("smoke.toml"), dest / "campaigns" / "smoke.toml")
    params = (dest / "params.yaml").read_text()
    params = params.replace("campaigns/demo.toml", "campaigns/smoke.toml").replace(
        "jobs: 2", "jobs: 1"
    )
    (dest / "params.yaml").write_text(params)
    return dest, env


def test_dvc_repro_then_push_pull_and_audit_from_a_second_clone(clone, tmp_path):
    repo, env = clone
    sh(["dvc", "repro"], repo, env)
    metrics = json.loads((repo / "metrics.json").read_text())
    assert metrics["audit_clean"] is True
    assert metrics["best_condition"]
    assert metrics["training_gpu_hours"] > 0
    audit = json.loads((repo / "audit.json").read_text())
    assert audit["verdict"] == "clean"
    assert (repo / "report" / "report.html").read_text().count("<img") >= 2
    shown = sh(["dvc", "metrics", "show", "--json"], repo, env).stdout
    assert "best_val_bpb" in shown
    # `dvc plots show` draws image plots that need no network (no Vega from a CDN), in
    # reading order: effects, ranks, costs
    sh(["dvc", "plots", "show"], repo, env)
    page = (repo / "dvc_plots" / "index.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert [Path(src).name for src in images] == [
        "workspace_plots_1-effects.png",
        "workspace_plots_2-ranks.png",
        "workspace_plots_3-costs.png",
    ]
    assert all((repo / "dvc_plots" / src).read_bytes()[:4] == b"\x89PNG" for src in images)
    assert "http://" not in page and "https://" not in page

    remote = tmp_path / "remote"
    sh(["dvc", "remote", "add", "-d", "shared", str(remote)], repo, env)
    sh(["dvc", "push"], repo, env)
    sh(["git", "add", "-A"], repo, env)
    sh(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "ran"], repo, env)

    second = tmp_path / "second"
    sh(["git", "clone", "-q", str(repo), str(second)], tmp_path, env)
    sh(["dvc", "pull"], second, env)
    sh(["ledger", "reindex"], second, env)
    result = sh(["ledger", "audit", "--json"], second, env)
    assert json.loads(result.stdout)["verdict"] == "clean"
