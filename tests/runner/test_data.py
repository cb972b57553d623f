"""Data formats: text files/folders and nanoGPT-style uint16 .bin with a token-byte table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runner import data as data_mod
from runner import schema, train
from runner.errors import UsageError

TABLE = [0, 1, 2, 3, 1, 2, 3, 4, 1, 2]  # token 0 is a zero-byte special token


def _bin_folder(root: Path, with_val: bool) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    rng.integers(0, len(TABLE), 6000, dtype=np.uint16).tofile(root / "train.bin")
    if with_val:
        rng.integers(0, len(TABLE), 1500, dtype=np.uint16).tofile(root / "val.bin")
    (root / "token_bytes.json").write_text(json.dumps(TABLE))
    return root


def test_text_split_is_last_tenth(corpus: Path) -> None:
    ds = data_mod.load(corpus, 32)
    raw = corpus.read_bytes()
    assert ds.kind == "bytes" and ds.vocab_size == 256 and ds.token_bytes is None
    assert len(ds.val) == int(len(raw) * data_mod.VAL_FRACTION)
    assert bytes(ds.val) == raw[-len(ds.val) :] and len(ds.train) + len(ds.val) == len(raw)


def test_folder_of_txt_files(tmp_path: Path, corpus: Path) -> None:
    (tmp_path / "b").mkdir()
    text = corpus.read_bytes()
    (tmp_path / "b" / "2.txt").write_bytes(text[:30000])
    (tmp_path / "1.txt").write_bytes(text[30000:])
    (tmp_path / "notes.md").write_text("ignored")
    ds = data_mod.load(tmp_path, 32)
    assert (
        bytes(ds.train) + bytes(ds.val) == text[30000:] + text[:30000]
    )  # sorted paths: 1.txt, b/2.txt
    assert len(ds.files) == 2


def test_bin_tokens_with_byte_table(tmp_path: Path, tiny_cfg: dict) -> None:
    folder = _bin_folder(tmp_path / "tok", with_val=False)
    ds = data_mod.load(folder / "train.bin", 32)
    assert ds.kind == "tokens" and ds.vocab_size == len(TABLE) and len(ds.val) == 600
    log = tmp_path / "run.jsonl"
    train.run(
        train.RunOptions(
            cfg={**tiny_cfg, "eval_tokens": 320},
            budget_s=60,
            seed=0,
            log=log,
            steps=3,
            device="cpu",
            data=str(folder / "train.bin"),
        )
    )
    recs = schema.validate_log(log)
    header, ev = recs[0], next(r for r in recs if r["type"] == "eval")
    assert header["vocab_size"] == len(TABLE) and header["data_kind"] == "tokens"
    _, y = data_mod.eval_slice(ds.val, 32, 320)
    nbytes = np.asarray(TABLE)[y.numpy()]
    assert ev["eval_bytes"] == int(nbytes.sum()) and ev["eval_tokens"] == int((nbytes > 0).sum())


def test_bin_folder_uses_val_bin(tmp_path: Path) -> None:
    folder = _bin_folder(tmp_path / "tok", with_val=True)
    ds = data_mod.load(folder, 32)
    assert len(ds.train) == 6000 and len(ds.val) == 1500
    assert np.array_equal(ds.val, np.fromfile(folder / "val.bin", dtype=np.uint16))


def test_bin_errors(tmp_path: Path) -> None:
    folder = _bin_folder(tmp_path / "tok", with_val=False)
    (folder / "token_bytes.json").unlink()
    with pytest.raises(UsageError, match="token_bytes"):
        data_mod.load(folder / "train.bin", 32)
    (folder / "token_bytes.json").write_text(json.dumps(TABLE[:5]))
    with pytest.raises(UsageError, match="token id"):
        data_mod.load(folder / "train.bin", 32)


def test_missing_or_tiny_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="runner.data prepare"):
        data_mod.load(None, 32)
    (tmp_path / "t.txt").write_text("too short")
    with pytest.raises(UsageError, match="too little data"):
        data_mod.load(tmp_path / "t.txt", 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no .txt files"):
        data_mod.load(tmp_path / "empty", 32)


def test_batches_depend_only_on_seed(corpus: Path) -> None:
    import torch

    ds = data_mod.load(corpus, 32)
    a = data_mod.Batches(ds.train, 32, 4, 7, torch.device("cpu"))
    b = data_mod.Batches(ds.train, 32, 4, 7, torch.device("cpu"))
    xa, ya = a.next()
    xb, yb = b.next()
    assert torch.equal(xa, xb) and torch.equal(xa[:, 1:], ya[:, :-1])
