"""The README's "Sharing evidence with DVC" steps, run as written, in a clone and a second
clone with a local DVC remote: what to commit, push, pull, reindex, audit, and `dvc status`
staying clean.

The commands come from the README itself (its two bash blocks in that section), so the
test fails when the README stops working. Only the placeholders change: the remote folder,
the clone URL. The demo job before them runs on the simulator over a small committed corpus
(`dvc commit corpus`) so the test takes seconds; test_dvc_pipeline.py trains for real.
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


def sh(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{script}\nfailed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def readme_blocks() -> list[str]:
    """The sender's and the receiver's bash blocks of the README's sharing section (the one
    that starts `dvc remote add`, the one that starts `git clone URL`), comments dropped."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Sharing evidence with DVC") :]
    section = section[: section.index("\n## ", 5)]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    send = [b for b in blocks if b.startswith("dvc remote add")]
    receive = [b for b in blocks if b.startswith("git clone URL")]
    assert len(send) == len(receive) == 1, "the sender's and the receiver's steps"
    return [
        "\n".join(
            line.split("  #")[0].rstrip()
            for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        )
        for block in (send[0], receive[0])
    ]


@pytest.fixture
def clone(tmp_path, isolated_keys):
    """A git repository of the working tree (tracked and new files), pushed to a bare origin."""
    repo = tmp_path / "one"
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
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "LEDGER_KEY_DIR": str(isolated_keys),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "DVC_NO_ANALYTICS": "1",
    }
    params = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(params.replace("executor: local", "executor: sim"))
    sh(
        f"git init -q -b main && git add -A && git commit -qm clone && "
        f"git init -q --bare -b main {tmp_path / 'origin.git'} && "
        f"git remote add origin {tmp_path / 'origin.git'} && git push -q -u origin main",
        repo,
        env,
    )
    return repo, env


def test_readme_sharing_steps_in_two_clones(clone, tmp_path):
    repo, env = clone
    corpus = repo / "data" / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "tiny.txt").write_text("In the beginning was the word. " * 2000)
    sh("dvc commit -f corpus && dvc repro", repo, env)  # the demo job, on the simulator
    assert json.loads((repo / "metrics.json").read_text())["simulated_runs"] > 0
    send, receive = readme_blocks()
    remote = tmp_path / "remote"
    sh(send.replace("/mnt/shared/ledger-remote", str(remote)), repo, env)
    assert (remote / "files").is_dir()
    assert "nothing to commit" in sh("git status", repo, env).stdout
    receive = receive.replace("URL", str(tmp_path / "origin.git"))
    out = sh(receive, tmp_path, env)
    second = tmp_path / "demo"
    assert (second / ".ledger" / "index.duckdb").is_file()
    assert "audit: clean" in out.stdout
    assert "Data and pipelines are up to date." in out.stdout  # after `ledger reindex`
    audit = json.loads(sh("ledger audit --json", second, env).stdout)
    assert (
        audit["verdict"] == "clean"
        and audit["costs"]["n_runs"] == json.loads((repo / "metrics.json").read_text())["runs"]
    )
