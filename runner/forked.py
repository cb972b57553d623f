"""A run forked from an orchestrator's warm fork server, instead of a fresh `python -m runner`.

Why: a fresh process spends about 3 CPU-seconds importing before its first step (torch
~1.5 s; `torch._dynamo` ~1.4 s, which torch's own optimizers import when the first one is
built, compiled or not), as long as a 10-second demo run's evaluation. The local executor's
fork server imports `PRELOAD` once and forks every CPU run from it; `main` then does what
`python -m runner ARGS` does, in the forked child. The numbers are a fresh process's:
threads, determinism, seeds and the allocator are all set by the run itself, after the fork.

This module itself imports no torch, so an orchestrator can name `main` as a process target.
"""

from __future__ import annotations

import gc
import os
import sys

from runner import cli

# what every run imports, loaded once by the fork server
PRELOAD = ("runner.train", "torch._dynamo", "runner.forked")


def main(argv: list[str], env: dict[str, str], stdout: str, stderr: str) -> None:
    """`python -m runner ARGV` in this (forked) process: its own session (so the orchestrator
    can kill the run's whole process group), `env` as its environment, its output into the
    files `stdout` and `stderr`; exits with the runner's status.

    The objects inherited from the server are frozen first: the collections of the run
    (the one after warm-up included) then scan only what the run itself built.
    """
    gc.freeze()
    os.setsid()
    for fd, path in ((1, stdout), (2, stderr)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    os.environ.clear()
    os.environ.update(env)
    sys.exit(cli.main(argv))
