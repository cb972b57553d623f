"""The README's "Your own training script" steps, run as written in a copy of the repository:
from `ledger init` through `ledger try`, freeze, run and decide of both stages, to a clean
audit, with the example script and campaign the README names."""

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


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Your own training script") :]
    section = section[: section.index("\n## ", 5)]
    [block] = re.findall(r"```bash\n(.*?)```", section, re.S)
    return "\n".join(line.split("  #")[0].rstrip() for line in block.splitlines() if line.strip())


def test_the_readme_path_from_init_to_a_clean_audit(tmp_path, isolated_keys):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "LEDGER_KEY_DIR": str(isolated_keys),
    }
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_block()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "try: 2 of 2 would be recorded ok; nothing was written to the store" in out
    assert "screen: executed 8 (8 ok)" in out and "confirm: executed 6 (6 ok)" in out
    assert "audit: clean (0 problem(s)" in out
    assert "caveat: Foreign runner (screen, confirm)" in out
    audit = subprocess.run(
        ["ledger", "audit", "--json"], cwd=tmp_path, env={**env, "LEDGER_STORE": "mine.ledger"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(audit.stdout)["binding"]["weakest"] == "header"
