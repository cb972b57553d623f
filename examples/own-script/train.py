"""Your own training script, writing the ledger's jsonl log (docs/runner.md, Foreign logs)."""

import argparse
import json
import time
from pathlib import Path

import numpy as np

p = argparse.ArgumentParser()
for flag in ("--config", "--log", "--manifest", "--host"):
    p.add_argument(flag, required=True)
p.add_argument("--seed", type=int, required=True)
p.add_argument("--budget", type=float, required=True)
a = p.parse_args()
cfg = json.loads(Path(a.config).read_text())
rng = np.random.default_rng(a.seed)  # the seed the ledger derived for this run
with open(a.log, "w") as log:

    def write(**record):
        print(json.dumps(record), file=log, flush=True)

    write(type="header", manifest=a.manifest, seed=a.seed, host=a.host, budget_s=a.budget, **cfg)
    w, start, step = rng.normal(size=cfg["width"]), time.time(), 0
    while time.time() - start < a.budget:  # a toy training loop: noisy gradient descent
        step += 1
        w -= cfg["lr"] * 2 * w + rng.normal(scale=cfg["noise"], size=w.size)
        write(type="step", step=step, train_seconds=time.time() - start, loss=float(w @ w))
    val_bpb, seconds = 1.0 + float(w @ w) / w.size, time.time() - start
    write(type="eval", val_bpb=val_bpb)
    write(type="summary", status="ok", val_bpb=val_bpb, training_seconds=seconds,
          total_seconds=seconds, num_steps=step)  # fmt: skip
