"""The local executor's two ways to start a run: forked from its warm fork server (builtin
runs on the CPU) or as a fresh process; either way one process per run, its own output
files, its exit status, and a kill at the deadline. (Bit-for-bit equality of a forked run
with a fresh replay: tests/audit/test_reproduce.py.)"""

from __future__ import annotations

import json

import pytest

from ledger.parallel import usable_cpus
from ledger.plan_model import RunnerIdentity
from stages.executors.base import RunTask
from stages.executors.local import LocalExecutor

TINY = {
    "depth": 1,
    "aspect_ratio": 32,
    "head_dim": 32,
    "seq_len": 32,
    "device_batch_size": 8,
    "total_batch_size": 512,
    "eval_tokens": 4096,
}


def task(config, *, budget_s=2.0, seed=0, runner=None) -> RunTask:
    return RunTask(
        manifest="m" * 64,
        stage="s",
        condition=f"c{seed}" + "0" * 62,
        name=f"c{seed}",
        config=config,
        coded={},
        seed=seed,
        host="local",
        budget_s=budget_s,
        runner=RunnerIdentity.model_validate(runner) if runner else None,
    )


@pytest.fixture
def corpus(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text("in the beginning was the word and the word was with god " * 2000)
    return data


def test_which_runs_are_forked(tmp_path):
    cpu = LocalExecutor(workdir=tmp_path, device="cpu")
    builtin = task(TINY)
    assert cpu.forks(builtin)
    assert cpu.forks(task(TINY, runner={"kind": "builtin"}))
    assert not cpu.forks(task(TINY, runner={"kind": "command", "command": "true"}))
    assert not cpu.forks(task(TINY, runner={"kind": "adapter", "script": "train.py"}))
    assert not LocalExecutor(workdir=tmp_path, device="auto").forks(builtin)
    assert not LocalExecutor(workdir=tmp_path, device="cuda").forks(builtin)
    assert not LocalExecutor(workdir=tmp_path, device="cpu", gpus=["0"]).forks(builtin)
    assert not LocalExecutor(workdir=tmp_path, device="cpu", python="/usr/bin/python3").forks(
        builtin
    )
    assert not LocalExecutor(workdir=tmp_path, device="cpu", fork=False).forks(builtin)


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "fresh-process"])
def test_each_run_keeps_its_own_exit_status_and_stderr(tmp_path, fork):
    """Four runs on two slots, each refused by the runner (exit 2, one line on stderr,
    no log): every one comes back crashed with its own reason, none with another's."""
    executor = LocalExecutor(workdir=tmp_path / "w", jobs=2, device="cpu", fork=fork)
    tasks = [task({**TINY, "depth": 1, f"no_such_key_{i}": 1}, seed=i) for i in range(4)]
    assert [executor.forks(t) for t in tasks] == [fork] * 4
    results = list(executor.execute(tasks, lambda _task: True))
    assert sorted(r.task.seed for r in results) == [0, 1, 2, 3]
    for r in results:
        assert r.exit_code == 2 and r.status_override == "crashed" and r.raw == b""
        assert f"no_such_key_{r.task.seed}" in r.note
    assert list((tmp_path / "w").iterdir()) == []  # config, log, stdout, stderr removed


@pytest.mark.slow
def test_a_forked_run_past_its_deadline_is_killed_and_recorded_timeout(tmp_path, corpus):
    executor = LocalExecutor(workdir=tmp_path / "w", device="cpu", data=corpus, grace_s=-57)
    long = task(TINY, budget_s=60)  # deadline: 3 s
    assert executor.forks(long)
    (result,) = executor.execute([long], lambda _task: True)
    assert result.status_override == "timeout" and result.deadline_s == 3
    assert not executor._procs  # nothing left running


@pytest.mark.slow
def test_a_forked_run_starts_as_a_fresh_one_does(tmp_path, corpus):
    """The same task both ways: both finish ok, and their headers (config, seed, threads
    the executor set, torch, code and data hashes, host) differ only in what each run
    measures for itself: its start time and the CPU's peak FLOP/s."""
    headers = {}
    for fork in (True, False):
        executor = LocalExecutor(
            workdir=tmp_path / f"w{fork}", device="cpu", data=corpus, fork=fork
        )
        (result,) = executor.execute([task(TINY)], lambda _task: True)
        assert result.exit_code == 0 and result.status_override is None
        lines = [json.loads(line) for line in result.raw.decode().splitlines()]
        assert lines[-1]["type"] == "summary" and lines[-1]["status"] == "ok"
        headers[fork] = {k: v for k, v in lines[0].items() if k not in ("started_at", "peak_flops")}
    assert headers[True]["threads"] == max(1, usable_cpus())
    assert headers[True] == headers[False]
