"""Fixed data and evaluation of the toy, in the shape of autoresearch's prepare.py.

train.py imports its constants and helpers from here; the ledger's adapter sets
`TIME_BUDGET` in train.py for each run. The text is built here, so nothing is downloaded.
"""

import math

import torch

MAX_SEQ_LEN = 32
TIME_BUDGET = 300  # training seconds per run (the adapter replaces it with the run's budget)
TEXT = (
    "in the beginning was the word, and the word was with the lab. "
    "the quick brown fox jumps over the lazy dog. pack my box with five dozen liquor jugs. "
) * 60


def _tokens() -> tuple[torch.Tensor, torch.Tensor]:
    data = torch.tensor(list(TEXT.encode()), dtype=torch.long)
    cut = int(0.9 * len(data))
    return data[:cut], data[cut:]


def make_batches(batch_size: int, generator: torch.Generator):
    """Endless (inputs, targets) batches of byte windows from the training split."""
    train, _ = _tokens()
    while True:
        starts = torch.randint(0, len(train) - MAX_SEQ_LEN - 1, (batch_size,), generator=generator)
        x = torch.stack([train[s : s + MAX_SEQ_LEN] for s in starts])
        y = torch.stack([train[s + 1 : s + MAX_SEQ_LEN + 1] for s in starts])
        yield x, y


@torch.no_grad()
def evaluate_bpb(model: torch.nn.Module) -> float:
    """Bits per byte on the validation split (bytes are the tokens: one byte per target)."""
    _, val = _tokens()
    usable = (len(val) - 1) // MAX_SEQ_LEN * MAX_SEQ_LEN
    x = val[:usable].view(-1, MAX_SEQ_LEN)
    y = val[1 : usable + 1].view(-1, MAX_SEQ_LEN)
    logits = model(x)
    nats = torch.nn.functional.cross_entropy(logits.view(-1, 256), y.reshape(-1), reduction="sum")
    return float(nats) / (math.log(2) * y.numel())
