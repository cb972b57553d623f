"""The `local` executor: a pool of runner subprocesses, one accelerator (or CPU share) per slot.

Why subprocesses: a crash, an out-of-memory kill or a hung run must never take the
orchestrator (the one writer of the ledger) down with it; each run gets a clean interpreter,
its own `CUDA_VISIBLE_DEVICES`, and a hard deadline of budget + grace.

Builtin runs on the CPU are forked from a fork server that has imported the runner once
(`runner.forked`: about 3 CPU-seconds of imports saved per run): still one process per
run, in its own session, killed the same way. GPU runs, foreign commands and another
interpreter (`python`) start as fresh processes: a CUDA context must never cross a fork,
and a foreign script runs in its own environment.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing.connection import wait as mp_wait
from pathlib import Path

import runner.autoresearch
from ledger.errors import ConfigError
from ledger.ingest import STDERR_TAIL_BYTES
from ledger.parallel import usable_cpus
from ledger.plan_model import RunnerIdentity
from ledger.rawlog import MAX_LOG_BYTES, parse_raw_log
from runner import forked
from runner.autoresearch import budget_value
from stages.executors.base import RunResult, RunTask, StartCallback

# run by path, so any interpreter (the script's own environment) can run it
ADAPTER_PATH = Path(runner.autoresearch.__file__).resolve()

# One fork server per orchestrator process, started by the first forked run; it imports
# what every run imports (torch, the runner) once and forks each CPU run from that state.
# (Not on Windows, which has no fork: every run starts afresh there.)
_FORKS = (
    multiprocessing.get_context("forkserver")
    if "forkserver" in multiprocessing.get_all_start_methods()
    else None
)
if _FORKS is not None:
    _FORKS.set_forkserver_preload(list(forked.PRELOAD))
_FORK_LOCK = threading.Lock()


@dataclass
class LocalExecutor:
    """Runs the builtin runner (or a campaign's foreign command) as subprocesses."""

    workdir: Path
    jobs: int = 1
    device: str = "auto"
    data: Path | None = None
    gpus: list[str] = field(default_factory=list)
    grace_s: float | None = None
    python: str = sys.executable
    fork: bool = True  # builtin CPU runs forked from the warm fork server (see `forks`)
    name: str = "local"
    _procs: dict[int, subprocess.Popen | ForkedRun] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def deadline(self, task: RunTask) -> float:
        """Budget plus grace for startup, warm-up steps and evaluation."""
        grace = self.grace_s if self.grace_s is not None else 120.0 + 0.25 * task.budget_s
        return task.budget_s + grace

    def command(self, task: RunTask, config_path: Path, log_path: Path) -> tuple[list[str], str]:
        """The argv for one run and the raw-log format it produces."""
        runner = task.runner
        if runner is not None and runner.kind == "adapter":
            return self._adapter_command(task, runner, config_path), "autoresearch"
        if runner is not None and runner.kind == "command":
            if runner.command is None:
                raise ConfigError(
                    f"manifest {task.manifest[:12]}: its command runner names no command"
                )
            text = runner.command.format(
                config=shlex.quote(str(config_path)),
                seed=task.run_seed,
                declared_seed=task.seed,
                budget=budget_value(task.budget_s),
                log=shlex.quote(str(log_path)),
                manifest=task.manifest,
                host=shlex.quote(task.host),
            )
            return ["/bin/sh", "-c", text], runner.format or "autoresearch"
        argv = [
            self.python, "-m", "runner",
            "--config", str(config_path),
            "--budget", f"{task.budget_s:g}s",
            "--seed", str(task.run_seed),
            "--log", str(log_path),
            "--manifest", task.manifest,
            "--host", task.host,
            "--device", self.device,
        ]  # fmt: skip
        if task.seed_from is not None:
            argv += ["--seed-from", task.seed_from]
        if self.data is not None:
            argv += ["--data", str(self.data)]
        if self.device != "cuda" and not self.gpus:
            argv += ["--threads", str(max(1, usable_cpus() // max(1, self.jobs)))]
        return argv, "jsonl"

    def _adapter_command(
        self, task: RunTask, runner: RunnerIdentity, config_path: Path
    ) -> list[str]:
        """`runner/autoresearch.py` run by path with the script's interpreter: it checks the
        script's frozen SHA-256, sets its constants, budget and seed, writes the header."""
        if runner.script is None or runner.script_sha256 is None:
            raise ConfigError(
                f"manifest {task.manifest[:12]}: its adapter runner names no script or hash"
            )
        argv = [
            runner.python or self.python, str(ADAPTER_PATH),
            "--script", runner.script,
            "--config", str(config_path),
            "--budget", repr(float(task.budget_s)),
            "--seed", str(task.run_seed),
            "--manifest", task.manifest,
            "--host", task.host,
            "--expect-sha256", runner.script_sha256,
        ]  # fmt: skip
        if task.seed_from is not None:
            argv += ["--seed-from", task.seed_from]
        if runner.constants:
            argv += ["--constants", json.dumps(runner.constants, sort_keys=True)]
        return argv

    def _env(self, slot: int) -> dict[str, str]:
        env = dict(os.environ)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        return env

    def _run_one(self, task: RunTask, slot: int, on_start: StartCallback) -> RunResult | None:
        """Launch one run (unless `on_start` says no) and collect what it left behind.

        Each attempt gets its own file names, so a runner orphaned by a killed orchestrator
        can never write into the log of the attempt that replaces it. stdout and stderr go
        to files, not pipes: a runner that floods them costs disk, not the orchestrator's
        memory, and only the log (capped) and stderr's tail are read back.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        stem = (
            f"{task.manifest[:12]}-{task.condition[:12]}-{task.seed}-{task.host}-"
            f"{secrets.token_hex(4)}"
        )
        base = self.workdir / stem
        config_path, log_path = base.with_suffix(".config.json"), base.with_suffix(".jsonl")
        out_path, err_path = base.with_suffix(".stdout"), base.with_suffix(".stderr")
        config_path.write_text(json.dumps(task.config, indent=2, sort_keys=True))
        argv, fmt = self.command(task, config_path, log_path)
        if not on_start(task):
            config_path.unlink(missing_ok=True)
            return None
        deadline = self.deadline(task)
        override = None
        proc = self._launch(task, argv, slot, out_path, err_path)
        with self._lock:
            self._procs[proc.pid] = proc
        try:
            proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            self._terminate(proc)
            proc.wait()
            override = "timeout"
        finally:
            with self._lock:
                self._procs.pop(proc.pid, None)
        raw = _read(out_path if fmt == "autoresearch" else log_path, MAX_LOG_BYTES + 1)
        stderr = _tail(err_path, STDERR_TAIL_BYTES)
        for path in (config_path, log_path, out_path, err_path):
            path.unlink(missing_ok=True)
        if override is None and proc.returncode != 0 and parse_raw_log(raw, fmt).summary is None:
            override = "crashed"
        return RunResult(task, raw, fmt, override, stderr, deadline, proc.returncode)

    def forks(self, task: RunTask) -> bool:
        """Whether `task` is forked from the warm fork server: a builtin run on the CPU by
        this interpreter (a GPU run, a foreign command or script, another `python` starts
        afresh)."""
        builtin = task.runner is None or task.runner.kind == "builtin"
        return (
            self.fork
            and _FORKS is not None
            and builtin
            and self.device == "cpu"
            and not self.gpus
            and self.python == sys.executable
        )

    def _launch(
        self, task: RunTask, argv: list[str], slot: int, out_path: Path, err_path: Path
    ) -> subprocess.Popen | ForkedRun:
        """Start the run in its own session, its output into `out_path` and `err_path`."""
        if self.forks(task):
            # argv is `python -m runner ARGS`: the forked child runs `runner.cli.main(ARGS)`
            return ForkedRun.start(argv[3:], self._env(slot), out_path, err_path)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            return subprocess.Popen(
                argv, stdout=out, stderr=err, env=self._env(slot), start_new_session=True
            )

    @staticmethod
    def _terminate(proc: subprocess.Popen | ForkedRun) -> None:
        """SIGTERM the run's process group (it writes a summary), SIGKILL after 10 s."""
        try:
            _signal_group(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                _signal_group(proc.pid, signal.SIGKILL)

    def execute(self, tasks: Iterable[RunTask], on_start: StartCallback) -> Iterator[RunResult]:
        pending = list(tasks)
        free_slots = list(range(max(1, self.jobs)))
        running: dict[Future, int] = {}
        with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
            try:
                while pending or running:
                    while pending and free_slots:
                        slot = free_slots.pop(0)
                        future = pool.submit(self._run_one, pending.pop(0), slot, on_start)
                        running[future] = slot
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        free_slots.append(running.pop(future))
                        result = future.result()
                        if result is not None:
                            yield result
            finally:
                pending.clear()
                with self._lock:
                    procs = list(self._procs.values())
                for proc in procs:
                    self._terminate(proc)


class ForkedRun:
    """A run forked from the fork server, with the part of `subprocess.Popen` the pool uses
    (`pid`, `wait`, `returncode`).

    Why the lock: the child's exit status is read once from a pipe, and multiprocessing
    reads it both in `join` and, for every earlier child, in each `Process.start`; runs
    start and end in several threads, so every read (and every start) holds `_FORK_LOCK`
    while waiting for the pipe to become readable does not.
    """

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self.process = process
        self.pid: int = process.pid or 0

    @classmethod
    def start(cls, args: list[str], env: dict[str, str], stdout: Path, stderr: Path) -> ForkedRun:
        assert _FORKS is not None  # `LocalExecutor.forks` says so before any start
        with _FORK_LOCK:
            process = _FORKS.Process(
                target=forked.main, args=(args, env, str(stdout), str(stderr)), daemon=False
            )
            process.start()
        return cls(process)

    @property
    def returncode(self) -> int | None:
        with _FORK_LOCK:
            self.process.join(0)
            return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        if not mp_wait([self.process.sentinel], timeout):
            raise subprocess.TimeoutExpired(f"run {self.pid}", timeout or 0)
        code = self.returncode
        assert code is not None  # the sentinel is readable only once the child has exited
        return code


def _signal_group(pid: int, sig: int) -> None:
    """Signal the run's process group; a forked run that has not yet called setsid() has
    none of its own: then the process alone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        os.kill(pid, sig)


def _read(path: Path, limit: int) -> bytes:
    """At most `limit` bytes of a file (b"" when the run never wrote it)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(limit)
    except FileNotFoundError:
        return b""


def _tail(path: Path, size: int) -> bytes:
    """The last `size` bytes of a file (b"" when it is missing)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - size))
            return fh.read()
    except FileNotFoundError:
        return b""
