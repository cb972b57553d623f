"""Hashes and host facts for the log header, so a reviewer can tie a log to code and data."""

from __future__ import annotations

import hashlib
import platform
import socket
from datetime import UTC, datetime
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def code_sha256() -> str:
    """SHA-256 over the runner's ``*.py`` files in sorted path order (path and bytes of each)."""
    h = hashlib.sha256()
    for f in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = f.relative_to(PACKAGE_DIR).as_posix()
        if "__pycache__" in rel:
            continue
        h.update(rel.encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def host() -> str:
    """Host name (the orchestrator may override it with its own cell name)."""
    return socket.gethostname() or platform.node() or "unknown"


def utc_now() -> str:
    """ISO-8601 UTC timestamp with a trailing Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
