"""A toy pretraining script in autoresearch's shape: single file, no flags.

Hyperparameters are module-level constants, the budget is TIME_BUDGET from prepare.py, the
seed is a literal, and the run ends with autoresearch's `---` summary block. It trains a
tiny byte-level model on CPU in seconds. The ledger runs it unchanged through
`runner = { adapter = "autoresearch", script = "train.py" }` (docs/campaign.md).
"""

import time

import torch
from prepare import MAX_SEQ_LEN, TIME_BUDGET, evaluate_bpb, make_batches

# Hyperparameters (edit these directly, no CLI flags needed)
DEPTH = 2
ASPECT_RATIO = 16
MATRIX_LR = 0.01
DEVICE_BATCH_SIZE = 8
WARMDOWN_RATIO = 0.5

torch.manual_seed(42)
torch.set_num_threads(1)


class Model(torch.nn.Module):
    def __init__(self, depth: int, width: int) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(256, width)
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(depth))
        self.head = torch.nn.Linear(width, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for block in self.blocks:
            h = h + torch.relu(block(h))
        return self.head(h)


t_start = time.time()
model = Model(DEPTH, DEPTH * ASPECT_RATIO)
optimizer = torch.optim.AdamW(model.parameters(), lr=MATRIX_LR)
batches = make_batches(DEVICE_BATCH_SIZE, torch.Generator().manual_seed(42))
print(f"Time budget: {TIME_BUDGET}s")
step, training_time = 0, 0.0
while training_time < TIME_BUDGET:
    t0 = time.time()
    progress = training_time / TIME_BUDGET
    lrm = 1.0 if progress < 1 - WARMDOWN_RATIO else (1 - progress) / WARMDOWN_RATIO
    for group in optimizer.param_groups:
        group["lr"] = MATRIX_LR * lrm
    x, y = next(batches)
    loss = torch.nn.functional.cross_entropy(model(x).view(-1, 256), y.view(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if not loss.item() < 100:  # autoresearch's rule: NaN or above 100 fails the run
        print("FAIL")
        raise SystemExit(1)
    training_time += time.time() - t0
    step += 1
    print(f"\rstep {step:05d} ({100 * progress:.1f}%) | loss: {loss.item():.6f}", end="")
print()
val_bpb = evaluate_bpb(model)
num_params = sum(p.numel() for p in model.parameters())
print("---")
print(f"val_bpb:          {val_bpb:.6f}")
print(f"training_seconds: {training_time:.1f}")
print(f"total_seconds:    {time.time() - t_start:.1f}")
print("peak_vram_mb:     0.0")
print("mfu_percent:      0.00")
print(f"total_tokens_M:   {step * DEVICE_BATCH_SIZE * MAX_SEQ_LEN / 1e6:.1f}")
print(f"num_steps:        {step}")
print(f"num_params_M:     {num_params / 1e6:.1f}")
print(f"depth:            {DEPTH}")
