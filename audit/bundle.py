"""Reviewer bundles: one deterministic .tar.gz of the evidence, and a safe way to open one.

Why: a reviewer runs `ledger audit --bundle B` in an empty directory, without our repository or
DVC remote. The bundle holds what the audit needs (store.json, public keys, every part's
objects and journal, published anchors), never the derived `index.duckdb`. Members are sorted
and carry mtime 0, uid/gid 0 and no user names, so the same store gives the same bytes.
`bundle.json` lists the sha256 of every member: a changed member is reported as an audit
problem (the reviewer should see it), while a malformed or dangerous archive is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePosixPath
from typing import Any

from ledger.errors import BundleError
from ledger.jsonsafe import loads_strict
from ledger.rawlog import MAX_LOG_BYTES

FORMAT = "gateledger-bundle"
STORE_PREFIX = "store"
EXTRA_PREFIX = "extra"
MANIFEST = "bundle.json"
STORE_FILES = ("store.json",)
STORE_DIRS = ("keys", "parts", "anchors")
MAX_MEMBER_BYTES = MAX_LOG_BYTES + (16 << 20)  # the largest object is a capped raw log
MAX_TOTAL_BYTES = 64 << 30
MAX_MEMBERS = 4_000_000
MAX_MANIFEST_BYTES = 512 << 20
_CHUNK = 1 << 20


def _tool_version() -> str:
    try:
        return version("gateledger")
    except PackageNotFoundError:
        return "unknown"


def _skipped(name: str) -> bool:
    """Temp files of atomic writes and a journal's lock file are not evidence (named
    exactly: a host part may itself be called `x.lock`, and is evidence)."""
    return name.startswith(".tmp-") or name == "journal.jsonl.lock"


def _store_files(root: Path) -> dict[str, Path]:
    """Archive name -> file for everything the audit needs, in sorted order."""
    if not (root / "store.json").is_file():
        raise BundleError(f"{root}: not a ledger store (no store.json)")
    found: dict[str, Path] = {}
    for name in STORE_FILES:
        found[f"{STORE_PREFIX}/{name}"] = root / name
    for top in STORE_DIRS:
        base = root / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames.sort()
            for name in dirnames:
                if os.path.islink(os.path.join(dirpath, name)):
                    rel = (Path(dirpath) / name).relative_to(root).as_posix()
                    raise BundleError(
                        f"{rel} is a symbolic link: the store does not read it, so a bundle "
                        f"would leave it out; replace the link with the folder itself"
                    )
            for fname in filenames:
                if _skipped(fname):
                    continue
                path = Path(dirpath) / fname
                if not path.is_file():  # sockets, fifos, dangling links
                    raise BundleError(f"{path}: not a regular file; refusing to bundle it")
                rel = path.relative_to(root).as_posix()
                found[f"{STORE_PREFIX}/{rel}"] = path
    return dict(sorted(found.items()))


def _safe_name(name: str, where: str) -> str:
    p = PurePosixPath(name)
    if not name or p.is_absolute() or ".." in p.parts or "\\" in name or name != p.as_posix():
        raise BundleError(f"{where}: unsafe file name {name!r} (relative, no '..')")
    return name


def _member(name: str, size: int, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def export_bundle(
    store_root: Path,
    out: Path,
    *,
    extra_files: Mapping[str, Path] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write the bundle at `out` atomically and return its path.

    `extra_files` maps a relative name to a file (e.g. campaign TOMLs) stored under `extra/`.
    `meta` is copied into bundle.json (e.g. `{"versions": {...}}`); `meta["created_at"]` and
    `meta["tool_version"]`, when given, replace the defaults (now, installed version), which
    lets callers make byte-identical bundles.
    """
    store_root, out = Path(store_root), Path(out)
    meta = dict(meta or {})
    members: dict[str, Path] = dict(_store_files(store_root))
    for name, path in sorted((extra_files or {}).items()):
        arcname = f"{EXTRA_PREFIX}/{_safe_name(name, f'extra file {name!r}')}"
        if not Path(path).is_file():
            raise BundleError(f"{path}: cannot read extra file (not a file)")
        members[arcname] = Path(path)
    files = [{"path": name, **_file_digest(path)} for name, path in sorted(members.items())]
    manifest = {
        "format": FORMAT,
        "version": 1,
        "tool_version": meta.pop("tool_version", None) or _tool_version(),
        "created_at": meta.pop("created_at", None)
        or datetime.now(UTC).isoformat(timespec="seconds"),
        "store": STORE_PREFIX,
        "meta": meta,
        "files": files,
    }
    listing = (json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n").encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".tar.gz", dir=out.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; a bundle is meant to be shared
        with os.fdopen(fd, "wb") as raw:
            # filename="" and mtime=0 keep the gzip header free of names and times
            with (
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                tar.addfile(_member(MANIFEST, len(listing)), io.BytesIO(listing))
                for entry in files:
                    with open(members[entry["path"]], "rb") as fh:
                        tar.addfile(_member(entry["path"], entry["size"]), fh)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise BundleError(f"cannot write bundle {out}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def _file_digest(path: Path) -> dict[str, Any]:
    """sha256 and size of a file, read in chunks (a store can be larger than memory)."""
    digest, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise BundleError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return {"sha256": digest.hexdigest(), "size": size}


def _check_member(info: tarfile.TarInfo, path: Path) -> str:
    where = f"{path}: member {info.name!r}"
    if info.issym() or info.islnk():
        raise BundleError(f"{where} is a link; refusing to extract")
    if info.isdev() or info.isfifo() or not (info.isfile() or info.isdir()):
        raise BundleError(f"{where} is not a regular file; refusing to extract")
    return _safe_name(info.name.rstrip("/") if info.isdir() else info.name, where)


@dataclass
class BundleLimits:
    """Caps on what a bundle may unpack to: a small archive can expand to anything."""

    member_bytes: int = MAX_MEMBER_BYTES
    total_bytes: int = MAX_TOTAL_BYTES
    members: int = MAX_MEMBERS


def open_bundle(
    path: Path, dest: Path, limits: BundleLimits | None = None
) -> tuple[Path, list[str]]:
    """Extract a bundle into `dest` and check every member against bundle.json.

    Returns `(store_root, problems)`. Raises LedgerError (one line, naming the member) for a
    file that is not a gzip tar, lacks bundle.json, holds absolute paths, `..`, links,
    devices or duplicate names, or exceeds the `limits` (member size, total size, member
    count). Members are streamed to disk and hashed on the way, never held in memory.
    Changed, missing, unlisted or unexpected members are returned as problems, so a tampered
    bundle becomes an audit finding rather than a crash.
    """
    path, dest, limits = Path(path), Path(dest), limits or BundleLimits()
    if dest.exists() and any(dest.iterdir()):
        raise BundleError(f"{dest}: destination for the bundle is not empty")
    if not path.is_file():
        raise BundleError(f"{path}: no such bundle")
    dest.mkdir(parents=True, exist_ok=True)
    staging = dest / ".incoming"
    digests: dict[str, str] = {}
    manifest_bytes: bytes | None = None
    total = 0
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for count, info in enumerate(tar, start=1):
                name = _check_member(info, path)
                if count > limits.members:
                    raise BundleError(f"{path}: more than {limits.members} members")
                if info.isdir():
                    continue
                if name in digests or (name == MANIFEST and manifest_bytes is not None):
                    raise BundleError(f"{path}: member {name!r} appears twice")
                cap = MAX_MANIFEST_BYTES if name == MANIFEST else limits.member_bytes
                if info.size > cap:
                    raise BundleError(
                        f"{path}: member {name!r} is {info.size} bytes, more than the {cap} allowed"
                    )
                total += info.size
                if total > limits.total_bytes:
                    raise BundleError(f"{path}: unpacks to more than {limits.total_bytes} bytes")
                handle = tar.extractfile(info)
                if name == MANIFEST:
                    manifest_bytes = handle.read() if handle else b""
                    continue
                digests[name] = _stream(handle, staging / name, info.size)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BundleError(f"{path}: not a .tar.gz bundle or damaged ({exc})") from exc
    if manifest_bytes is None:
        raise BundleError(f"{path}: no {MANIFEST} in the bundle; not a gateledger bundle")
    listed = _listed(path, manifest_bytes)
    problems: list[str] = []
    for name in sorted(digests):
        if not name.startswith((f"{STORE_PREFIX}/", f"{EXTRA_PREFIX}/")):
            problems.append(f"bundle member {name!r} is outside store/ and extra/; not extracted")
            continue
        if name not in listed:
            problems.append(f"bundle member {name!r} is not listed in {MANIFEST}")
        elif digests[name] != listed[name]:
            problems.append(f"bundle member {name!r} does not match its sha256 in {MANIFEST}")
        target = dest.joinpath(*PurePosixPath(name).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, target)
    shutil.rmtree(staging, ignore_errors=True)
    problems += [
        f"bundle member {name!r} is listed in {MANIFEST} but missing"
        for name in sorted(set(listed) - set(digests))
    ]
    store_root = dest / STORE_PREFIX
    if not (store_root / "store.json").is_file():
        problems.append(f"bundle has no {STORE_PREFIX}/store.json")
        store_root.mkdir(parents=True, exist_ok=True)
    return store_root, problems


def _stream(handle: Any, target: Path, size: int) -> str:
    """Copy a member to `target` in chunks, hashing as it goes; its sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, written = hashlib.sha256(), 0
    with open(target, "wb") as out:
        while handle is not None:
            chunk = handle.read(_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > size:
                raise BundleError(f"member {target.name!r} is longer than its header says")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _listed(path: Path, data: bytes) -> dict[str, str]:
    """bundle.json's path -> sha256 table (LedgerError when it is malformed)."""
    try:
        manifest = loads_strict(data, f"{path}: {MANIFEST}", max_bytes=MAX_MANIFEST_BYTES)
        if manifest.get("format") != FORMAT:
            raise BundleError(
                f"{path}: {MANIFEST} format is {manifest.get('format')!r}, expected {FORMAT!r}"
            )
        return {f["path"]: f["sha256"] for f in manifest["files"]}
    except (KeyError, TypeError, AttributeError) as exc:
        raise BundleError(f"{path}: {MANIFEST} is malformed ({exc})") from None
