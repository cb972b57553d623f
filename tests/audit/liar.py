"""A foreign training command (format jsonl) that tells the truth, or lies in one named way.

Used by the adversarial tests: the campaign names it as its runner, so every lie reaches the
ledger through `ledger run`, exactly as a dishonest trainer would. The lie and its victim
come from the environment: LIE (a mode below) and LIE_TARGET (the victim's matrix_lr).

Honest behaviour: val_bpb = 1 + matrix_lr (+ 0.001 per declared seed), a header that states
the config, seed (the effective seed `{seed}` the ledger derived), host, budget and manifest it
was given, real (tiny) training seconds.
"""

import json
import os
import sys
import time
from datetime import UTC, datetime

args = dict(zip(sys.argv[1::2], sys.argv[2::2], strict=False))
with open(args["--config"]) as fh:
    cfg = json.load(fh)
seed, host, budget = int(args["--seed"]), args["--host"], float(args["--budget"])
declared = int(args["--declared-seed"])
lie = os.environ.get("LIE", "")
victim = float(os.environ.get("LIE_TARGET", "-1")) == cfg["matrix_lr"]
t0 = time.perf_counter()
val = 1.0 + cfg["matrix_lr"] + 0.001 * declared
header = {
    "type": "header",
    **cfg,
    "seed": seed,
    "budget_s": budget,
    "host": host,
    "runner": "liar",
    "manifest": args["--manifest"],
    "started_at": datetime.now(UTC).isoformat(timespec="microseconds"),
}
status, train_s = "ok", 0.002
summary_val = eval_val = val
if victim:
    if lie == "swap":  # the worst condition is credited the best one's log
        header["matrix_lr"], summary_val = 0.01, 1.005
        eval_val = summary_val
    elif lie == "config":  # trained with another non-factor key, and says so
        header["weight_decay"], summary_val = 0.0, 0.9
        eval_val = summary_val
    elif lie == "seed":
        header["seed"] = seed + 7
    elif lie == "budget":
        header["budget_s"] = 5 * budget
    elif lie == "timeout":  # a good run relabelled so that it drops out
        status = "timeout"
    elif lie == "noval":
        summary_val = None
    elif lie == "evaldiff":  # the summary claims better than the evaluation measured
        summary_val = val - 0.5
    elif lie == "longtrain":
        train_s = 50 * 3600.0
lines = [
    header,
    {"type": "step", "step": 1, "train_seconds": 0.001, "loss": 3.0, "lr": 0.01, "tokens": 64},
    {"type": "step", "step": 2, "train_seconds": train_s, "loss": 2.0, "lr": 0.01, "tokens": 128},
    {"type": "eval", "val_bpb": eval_val, "eval_tokens": 10, "eval_bytes": 10},
]
summary = {
    "type": "summary",
    "status": status,
    "training_seconds": train_s,
    "total_seconds": time.perf_counter() - t0,
    "num_steps": 2,
    "total_tokens": 128,
    "num_params": 1000,
    "peak_mem_mb": None,
    "tokens_per_s": 64000.0,
    "mfu": None,
}
if not (victim and lie == "noval"):
    summary["val_bpb"] = summary_val
lines.append(summary)
with open(args["--log"], "w") as fh:
    fh.write("".join(json.dumps(x) + "\n" for x in lines))
