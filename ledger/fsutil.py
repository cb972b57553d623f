"""Atomic, durable file writes that a SIGKILL can interrupt without leaving a torn file.

Why: a store must verify after any crash. Every file is written to a `.tmp-` file in the
same folder, fsynced, then renamed over its final name; leftovers are ignored by readers.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from ledger.errors import StorageError

TMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def ensure_dir(path: Path) -> None:
    """mkdir -p, as a LedgerError naming the folder when it cannot be made."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create folder {path}: {exc.strerror or exc}") from None


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, sync_dir: bool = True) -> None:
    """Write `data` to `path` all-or-nothing (temp file, fsync, rename, fsync folder)."""
    folder = path.parent
    ensure_dir(folder)
    tmp = folder / f"{TMP_PREFIX}{path.name[:16]}-{secrets.token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    if sync_dir:
        fsync_dir(folder)
