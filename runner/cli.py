"""Command line: ``python -m runner --config CFG.json --budget 300s --seed 0 --log run.jsonl``.

Bad input of any kind ends with one ``error: ...`` line on stderr and exit status 2; a
run that wrote its summary exits 0 whatever its status (the log carries the outcome).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import NoReturn

from runner import config
from runner.errors import TrainingCrashed, UsageError
from runner.replay import load as load_replay

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*$")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_budget(text: str) -> float:
    """``300s``, ``5m``, ``2h`` or plain seconds -> seconds (> 0)."""
    m = _BUDGET.match(text)
    if not m or float(m.group(1)) <= 0:
        raise UsageError(
            f"--budget: expected a positive duration like 300s, 5m, 2h or 300, got {text!r}"
        )
    return float(m.group(1)) * _UNIT[m.group(2)]


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message}\n")
        sys.exit(2)


def _positive_int(name: str):  # type: ignore[no-untyped-def]
    def conv(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {v}")
        return v

    return conv


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be an integer, got {text!r}") from None
    if not 0 <= v < 2**63:
        raise argparse.ArgumentTypeError(f"--seed must be in [0, 2**63), got {v}")
    return v


def _seed_from(text: str) -> dict[str, object]:
    """``MANIFEST:CONDITION:SEED[:WITNESS]`` -> the inputs the orchestrator derived ``--seed``
    from (WITNESS: the digest of the freeze's timestamp token, under a witness-bound rule)."""
    parts = text.split(":")
    if len(parts) not in (3, 4) or not all(parts[:2]) or (len(parts) == 4 and not parts[3]):
        raise argparse.ArgumentTypeError(
            f"--seed-from must be MANIFEST:CONDITION:SEED[:WITNESS], got {text!r}"
        )
    try:
        seed = int(parts[2])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seed-from: the declared seed must be an integer, got {parts[2]!r}"
        ) from None
    out: dict[str, object] = {"manifest": parts[0], "condition": parts[1], "seed": seed}
    if len(parts) == 4:
        out["witness"] = parts[3]
    return out


def build_parser() -> argparse.ArgumentParser:
    """The runner's argument parser (also used by the docs)."""
    p = _Parser(
        prog="python -m runner",
        description="Fixed-time-budget GPT trainer writing a JSONL raw log.",
    )
    p.add_argument(
        "--config", required=True, help="JSON object of config keys (unknown keys are errors)"
    )
    p.add_argument("--budget", required=True, help="training-time budget: 300s, 5m, 2h or seconds")
    p.add_argument("--seed", type=_seed, required=True, help="controls init and data order")
    p.add_argument("--log", required=True, help="raw log path (JSON lines)")
    p.add_argument(
        "--seed-from",
        type=_seed_from,
        default=None,
        metavar="MANIFEST:CONDITION:SEED[:WITNESS]",
        help="record that --seed is the effective seed the ledger derived from these "
        "(header `seed_inputs`); the runner trains with --seed either way",
    )
    p.add_argument("--manifest", default=None, help="manifest id to cite in the header")
    p.add_argument(
        "--host",
        default=None,
        help="the cell's host name to record in the header (default: this machine's "
        "name); the machine's own name is always recorded as `machine`",
    )
    p.add_argument(
        "--steps",
        type=_positive_int("--steps"),
        default=None,
        help="run exactly N optimizer steps (deterministic replay; progress = step/N)",
    )
    p.add_argument(
        "--replay",
        default=None,
        metavar="LOG",
        help="replay a recorded run exactly: take each step's schedule progress from "
        "LOG (same config, seed, data and threads give the same losses on CPU); "
        "runs LOG's number of steps unless --steps is smaller, with LOG's "
        "--threads unless given",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument(
        "--data", default=None, help="text file, folder of .txt, .bin tokens (default data/corpus)"
    )
    p.add_argument(
        "--threads", type=_positive_int("--threads"), default=None, help="CPU threads (torch)"
    )
    p.add_argument("--quiet", action="store_true", help="do not print the summary on stdout")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    t_start = time.perf_counter()
    args = build_parser().parse_args(argv)
    try:
        if args.seed_from and args.manifest and args.seed_from["manifest"] != args.manifest:
            raise UsageError(
                f"--seed-from names manifest {args.seed_from['manifest']!r}, "
                f"not --manifest {args.manifest!r}"
            )
        cfg = config.load(args.config)
        budget_s = parse_budget(args.budget)
        from runner import train  # deferred: input errors are reported before torch loads

        schedule, steps, threads, replay_sha = None, args.steps, args.threads, None
        if args.replay is not None:
            recorded = load_replay(args.replay, cfg, args.seed)
            schedule, replay_sha = recorded.progress, recorded.sha256
            if steps is not None and steps > len(schedule):
                raise UsageError(
                    f"--steps {steps} exceeds the {len(schedule)} steps in --replay {args.replay}"
                )
            steps = steps or len(schedule)
            threads = threads or recorded.threads  # the recorded count unless told otherwise
        opts = train.RunOptions(
            cfg=cfg,
            budget_s=budget_s,
            seed=args.seed,
            log=Path(args.log),
            manifest=args.manifest,
            host=args.host,
            steps=steps,
            device=args.device,
            data=args.data,
            threads=threads,
            schedule=schedule,
            replay_sha256=replay_sha,
            seed_inputs=args.seed_from,
        )
        summary = train.run(opts, t_start)
    except UsageError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    except TrainingCrashed as e:  # the log already ends with a `crashed` summary
        sys.stderr.write(f"error: {e}\n")
        return 1
    if not args.quiet:
        print(json.dumps(summary))
    return 0
