"""Scratch folders of Ray workers killed mid-run are swept by the next task (no Ray needed)."""

from __future__ import annotations

import os
import subprocess
import sys

from stages.executors.ray import SCRATCH_PREFIX, sweep_orphan_scratch


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_only_folders_of_dead_workers(tmp_path):
    dead = tmp_path / f"{SCRATCH_PREFIX}{_dead_pid()}-abc"
    (dead / "run").mkdir(parents=True)
    (dead / "run" / "log.jsonl").write_text("{}\n")
    alive = tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}-def"
    alive.mkdir()
    unrelated = tmp_path / f"{SCRATCH_PREFIX}notapid"
    unrelated.mkdir()
    other = tmp_path / "someone-else"
    other.mkdir()
    assert sweep_orphan_scratch(tmp_path) == [dead]
    assert not dead.exists()
    assert alive.is_dir() and unrelated.is_dir() and other.is_dir()
