"""The Ray executor on CPU: a local Ray instance declaring logical GPUs runs real (tiny)
training as `num_gpus=1` tasks; a dying worker is recorded as `crashed`; a second
`run` finishes what is left. Slow (starts Ray, trains)."""

from __future__ import annotations

import os

import pytest

from ledger.keys import generate_key
from ledger.store import Store
from stages.campaign import parse_campaign
from stages.execute import run_stage
from stages.lookup import manifest_runs
from stages.plan import freeze_stage

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

TINY = """
[campaign]
name = "ray"
{runner}
[base]
depth = 1
aspect_ratio = 32
head_dim = 32
seq_len = 32
device_batch_size = 8
total_batch_size = 256
eval_tokens = 2048
[factors]
A = {{ key = "matrix_lr", levels = [0.01, 0.04] }}
B = {{ key = "aspect_ratio", levels = [32, 64] }}
[[stages]]
name = "screen"
budget = "1s"
design = "full"
seeds = [0]
hosts = ["local"]
rule = {{ top_k = 1 }}
"""


@pytest.fixture(scope="module")
def ray_instance():
    from stages.executors.ray import RayExecutor

    RayExecutor(jobs=2)._connect()
    yield
    ray.shutdown()


@pytest.fixture
def text_data(tmp_path):
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
        "and",
        "then",
        "rests",
        "in",
        "the",
        "sun",
    ]
    path = tmp_path / "data.txt"
    path.write_text(" ".join(words[i % len(words)] for i in range(40000)))
    return path


def _setup(tmp_path, runner_line: str, data):
    from stages.executors.ray import RayExecutor

    store = Store.init(tmp_path / ".ledger", host="local")
    key = generate_key("k")
    camp = parse_campaign(TINY.format(runner=runner_line), tmp_path / "c.toml")
    manifest = freeze_stage(store, camp, "screen", key, data=data)
    ex = RayExecutor(jobs=2, data=data, device="cpu", grace_s=60)
    return store, camp, manifest, ex, key


def test_ray_runs_real_training_and_resumes(tmp_path, ray_instance, text_data):
    store, camp, manifest, ex, key = _setup(tmp_path, "", text_data)
    first = run_stage(store, camp, "screen", ex, key=key, limit=1, progress=False)
    assert first.executed == 1
    second = run_stage(store, camp, "screen", ex, key=key, progress=False)
    assert second.executed == 3 and second.already == 1
    runs = manifest_runs(store, manifest)
    assert len(runs) == 4
    assert {r.body.status for r in runs} == {"ok"}
    assert all(r.body.runner == "builtin" for r in runs)


def test_dying_worker_is_recorded_as_crashed(tmp_path, ray_instance, text_data):
    line = 'runner = { command = "kill -9 $PPID; cat {config}", format = "autoresearch" }'
    store, camp, manifest, ex, key = _setup(tmp_path, line, text_data)
    report = run_stage(store, camp, "screen", ex, key=key, progress=False)
    assert report.statuses == {"crashed": 4}
    runs = manifest_runs(store, manifest)
    assert all(r.body.metrics.val_bpb is None for r in runs)
    # the killed workers could not clean their scratch folders; a sweep (this one, or a
    # task's of a test running beside this one: they share /tmp) leaves no orphan behind
    import tempfile
    from pathlib import Path

    from stages.executors.ray import sweep_orphan_scratch

    sweep_orphan_scratch(Path(tempfile.gettempdir()))
    assert not sweep_orphan_scratch(Path(tempfile.gettempdir()))


def test_the_sweep_removes_a_dead_workers_scratch_and_keeps_a_live_ones(tmp_path):
    """Folders are named after the worker's pid: a pid that has exited is swept, this
    process's (alive) is kept, and a name that is not a scratch folder is left alone."""
    import subprocess
    import sys

    from stages.executors.ray import SCRATCH_PREFIX, sweep_orphan_scratch

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / f"{SCRATCH_PREFIX}{int(gone.stdout)}-abc"
    live = tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}-def"
    other = tmp_path / f"{SCRATCH_PREFIX}notapid"
    for folder in (dead, live, other):
        (folder / "run").mkdir(parents=True)
    assert sweep_orphan_scratch(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and other.exists()
