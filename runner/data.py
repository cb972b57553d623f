"""Training data: byte-level text (default) or nanoGPT-style uint16 ``.bin`` tokens.

The validation split is fixed by the data alone (never by batch size or seed): the last
``VAL_FRACTION`` of the token stream, or ``val.bin`` when a nanoGPT folder provides one.
For ``.bin`` tokens a table of each token's UTF-8 byte length (``token_bytes.npy`` or
``token_bytes.json`` beside the file) keeps bits-per-byte exact.

``python -m runner.data prepare --out data/corpus`` builds the default corpus (see
``runner.corpus``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from runner.errors import UsageError

VAL_FRACTION = 0.1
DEFAULT_DATA = Path("data/corpus")
PREPARE_HINT = "run `python -m runner.data prepare --out data/corpus` or pass --data PATH"


@dataclass
class Dataset:
    """Token streams plus what is needed to turn nats into bits per byte."""

    train: np.ndarray
    val: np.ndarray
    vocab_size: int
    token_bytes: np.ndarray | None  # bytes per token id; None means 1 byte per token
    sha256: str
    kind: str  # "bytes" | "tokens"
    files: list[str]


def _sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with p.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _digest(files: list[Path], root: Path) -> str:
    """A single file hashes to its own SHA-256; several to SHA-256 of ``name\\0sha\\n`` lines."""
    if len(files) == 1:
        return _sha256_file(files[0])
    lines = "".join(f"{f.relative_to(root).as_posix()}\0{_sha256_file(f)}\n" for f in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def _token_bytes(folder: Path) -> np.ndarray:
    npy, js = folder / "token_bytes.npy", folder / "token_bytes.json"
    try:
        if npy.exists():
            table = np.load(npy, allow_pickle=False)
        elif js.exists():
            table = np.asarray(json.loads(js.read_text(encoding="utf-8")))
        else:
            raise UsageError(
                f"{folder}: .bin tokens need token_bytes.npy or token_bytes.json beside them"
            )
    except (OSError, ValueError) as e:
        raise UsageError(f"{folder}: cannot read token byte table ({e})") from None
    if table.ndim != 1 or table.size == 0 or table.dtype.kind not in "iu" or (table < 0).any():
        raise UsageError(f"{folder}: token byte table must be a 1-D list of non-negative integers")
    return table.astype(np.int64)


def _load_bin(p: Path) -> np.ndarray:
    try:
        arr = np.memmap(p, dtype=np.uint16, mode="r")
    except (OSError, ValueError) as e:
        raise UsageError(f"{p}: cannot read uint16 tokens ({e})") from None
    return arr


def _split(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cut = len(tokens) - max(1, int(len(tokens) * VAL_FRACTION))
    return tokens[:cut], tokens[cut:]


def load(path: str | Path | None, seq_len: int) -> Dataset:
    """Load ``path`` (text file, folder of .txt, .bin file, or folder with train.bin)."""
    if path is None:
        if not DEFAULT_DATA.exists():
            raise UsageError(
                f"no --data given and default corpus {DEFAULT_DATA}/ is missing: {PREPARE_HINT}"
            )
        path = DEFAULT_DATA
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{p}: data path does not exist ({PREPARE_HINT})")
    bin_file = p / "train.bin" if p.is_dir() else p
    if bin_file.suffix == ".bin" and bin_file.is_file():
        folder = bin_file.parent
        table = _token_bytes(folder)
        tokens = _load_bin(bin_file)
        val_file = folder / "val.bin"
        files = [bin_file]
        if p.is_dir() and val_file.is_file():
            train, val = tokens, _load_bin(val_file)
            files.append(val_file)
        else:
            train, val = _split(tokens)
        for name, arr in (("train", train), ("val", val)):
            if arr.size and int(arr.max()) >= table.size:
                raise UsageError(
                    f"{p}: {name} token id {int(arr.max())} >= token byte table size {table.size}"
                )
        files.append(
            folder
            / ("token_bytes.npy" if (folder / "token_bytes.npy").exists() else "token_bytes.json")
        )
        dataset = Dataset(
            train,
            val,
            int(table.size),
            table,
            _digest(files, folder),
            "tokens",
            [str(f) for f in files],
        )
    else:
        root = p if p.is_dir() else p.parent
        files = sorted(f for f in p.rglob("*.txt") if f.is_file()) if p.is_dir() else [p]
        if not files:
            raise UsageError(f"{p}: folder has no .txt files ({PREPARE_HINT})")
        try:
            raw = b"".join(f.read_bytes() for f in files)
        except OSError as e:
            raise UsageError(f"{p}: cannot read data ({e})") from None
        train, val = _split(np.frombuffer(raw, dtype=np.uint8))
        dataset = Dataset(
            train, val, 256, None, _digest(files, root), "bytes", [str(f) for f in files]
        )
    if len(dataset.train) < seq_len + 2 or len(dataset.val) < seq_len + 1:
        raise UsageError(
            f"{p}: too little data for seq_len {seq_len} "
            f"(train {len(dataset.train)} tokens, validation {len(dataset.val)} tokens)"
        )
    return dataset


class Batches:
    """Random training windows, seeded: the seed alone fixes the data order."""

    def __init__(
        self, tokens: np.ndarray, seq_len: int, batch: int, seed: int, device: torch.device
    ) -> None:
        self.tokens, self.seq_len, self.batch, self.device = tokens, seq_len, batch, device
        self.gen = torch.Generator().manual_seed(seed)
        self.span = np.arange(seq_len + 1, dtype=np.int64)
        self.high = len(tokens) - seq_len - 1 + 1

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (inputs, targets), each (batch, seq_len) int64 on the device."""
        starts = torch.randint(0, self.high, (self.batch,), generator=self.gen).numpy()
        buf = torch.from_numpy(self.tokens[starts[:, None] + self.span].astype(np.int64))
        if self.device.type == "cuda":
            buf = buf.pin_memory().to(self.device, non_blocking=True)
        return buf[:, :-1], buf[:, 1:]


def eval_slice(
    val: np.ndarray, seq_len: int, eval_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed non-overlapping validation sequences from the start of the split."""
    n = max(1, min(eval_tokens // seq_len, (len(val) - 1) // seq_len))
    chunk = np.asarray(val[: n * seq_len + 1], dtype=np.int64)
    x = torch.from_numpy(chunk[:-1].reshape(n, seq_len).copy())
    y = torch.from_numpy(chunk[1:].reshape(n, seq_len).copy())
    return x, y


if __name__ == "__main__":
    from runner.corpus import main

    sys.exit(main())
