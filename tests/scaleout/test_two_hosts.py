"""Two hosts, one ledger: each runs its host block into its own part, DVC carries the parts,
and one machine decides and audits the merged store. Slow (git + dvc subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SIM_CAMPAIGN

pytestmark = pytest.mark.slow


def sh(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return proc.stdout


def git_commit(repo: Path, env: dict[str, str], message: str) -> None:
    sh(["git", "add", "-A"], repo, env)
    sh(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", message], repo, env)


def test_two_hosts_merge_through_a_dvc_remote(tmp_path, isolated_keys):
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "LEDGER_KEY_DIR": str(isolated_keys),
    }
    remote, a, b = tmp_path / "remote", tmp_path / "a100", tmp_path / "l40s"
    a.mkdir()
    (a / "campaign.toml").write_text(
        SIM_CAMPAIGN.replace('hosts = ["h1"]', 'hosts = ["a100"]').replace(
            'hosts = ["h1", "h2"]', 'hosts = ["a100", "l40s"]'
        )
    )
    sh(["git", "init", "-q"], a, env)
    sh(["dvc", "init", "-q"], a, env)
    sh(["dvc", "remote", "add", "-d", "shared", str(remote)], a, env)
    (a / ".gitignore").write_text(".ledger/index.duckdb\n.ledger/work/\n")
    ledger_a = ["ledger", "--host", "a100"]
    sh([*ledger_a, "init"], a, env)
    sh(["ledger", "keygen", "--name", "lead"], a, env)
    # screen runs on a100 only; freeze, run, decide there
    sh([*ledger_a, "campaign", "--executor", "sim", "--until", "screen"], a, env)
    sh([*ledger_a, "freeze", "gate", "--sim-only"], a, env)
    sh([*ledger_a, "run", "gate", "--executor", "sim", "--host", "a100"], a, env)
    sh(["dvc", "add", ".ledger/parts/a100"], a, env)
    git_commit(a, env, "a100: screen decided, gate block run")
    sh(["dvc", "push"], a, env)

    sh(["git", "clone", "-q", str(a), str(b)], tmp_path, env)
    sh(["dvc", "pull"], b, env)
    sh(["ledger", "--host", "l40s", "run", "gate", "--executor", "sim", "--host", "l40s"], b, env)
    sh(["dvc", "add", ".ledger/parts/l40s"], b, env)
    git_commit(b, env, "l40s: gate block run")
    sh(["dvc", "push"], b, env)

    sh(["git", "pull", "-q", "--no-rebase", str(b)], a, env)
    sh(["dvc", "pull"], a, env)
    sh(["ledger", "reindex"], a, env)
    decided = json.loads(sh([*ledger_a, "decide", "gate", "--json"], a, env))
    assert len(decided["runs"]) == 20 and not decided["missing"]
    audit = json.loads(sh(["ledger", "audit", "--json"], a, env))
    assert audit["verdict"] == "clean", audit["problems"]
    rows = json.loads(
        sh(
            [
                "ledger",
                "sql",
                "SELECT host, count(*) AS n FROM runs WHERE stage = 'gate' "
                "GROUP BY host ORDER BY host",
                "--json",
            ],
            a,
            env,
        )
    )
    assert [(r["host"], r["n"]) for r in rows] == [("a100", 10), ("l40s", 10)]
