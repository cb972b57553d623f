"""Packs: many objects of one host part in one file, found through an untrusted index.

Why: a loose object is one small file, and a 100k-run store holds ~156k of them; an audit
that reads them from a cold disk waits on as many random reads. Once a stage is decided its
run records and logs never change, so they can live in one file read sequentially, like
git's packfiles. A pack is only another file layout: nothing in it is trusted.

Layout: `parts/<host>/packs/<id>.pack`, `<id>` the sha256 of the whole file:

    gateledger-pack 1 <host>          header: format, version, the part the pack belongs to
    <oid> <offset> <length>           the index: one line per object, offsets counted
    ...                               from the first byte after the blank line
                                      (a blank line ends the index)
    <the objects' bytes>

Reading: every object read from a pack is re-hashed to its id, exactly as a loose file is
(`ObjectCopy.read` returns the bytes; callers hash them as they hash a file's). The index
only says where to look: an altered byte, a swapped, forged or dropped index line, or a
pack cut short makes the objects it touches bad or missing, each named with the pack; a
pack whose bytes no longer hash to its name, or whose header names another part, is a
problem of its own (`pack_problems`). Writing packs into a store: `ledger.packing`.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import IntegrityError, StorageError

PACKS_DIR = "packs"
PACK_SUFFIX = ".pack"
PACK_VERSION = 1
MAX_PACK_BYTES = 64 << 20  # object bytes per pack: a bigger share of a stage is split
MAX_INDEX_BYTES = 16 << 20  # ~170k index lines: more than a pack of MAX_PACK_BYTES holds
_HEADER = re.compile(rb"gateledger-pack (0|[1-9][0-9]{0,8}) ([A-Za-z0-9._-]{1,64})")
_LINE = re.compile(rb"([0-9a-f]{64}) (0|[1-9][0-9]{0,14}) (0|[1-9][0-9]{0,14})")
_NAME = re.compile(r"[0-9a-f]{64}\.pack")


@dataclass(frozen=True)
class ObjectCopy:
    """Where one copy of an object lies: a whole loose file (`length` None), or `length`
    bytes at `offset` of a pack. Reading does not hash: the caller checks the id."""

    oid: str
    path: Path
    offset: int = 0
    length: int | None = None

    @property
    def packed(self) -> bool:
        return self.length is not None

    def read(self) -> bytes:
        """The copy's bytes (OSError when the file cannot be read; IntegrityError when the
        pack ends before the bytes its index promises)."""
        if self.length is None:
            with open(self.path, "rb") as fh:
                return fh.read()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, self.length, self.offset)
        finally:
            os.close(fd)
        if len(data) != self.length:
            raise IntegrityError(
                f"object {self.oid} is cut short in pack {self.path.name}: the pack ends "
                f"before the {self.length} bytes its index gives"
            )
        return data


@dataclass(frozen=True)
class PackIndex:
    """A pack's header and index as read, with what was wrong in them (index lines that do
    not parse are left out and said in `problems`)."""

    path: Path
    host: str | None  # the part the header names; None when the header is unreadable
    entries: tuple[ObjectCopy, ...]
    problems: tuple[str, ...]


def is_pack_name(name: str) -> bool:
    """Whether a file name is a pack's: its 64-hex id and `.pack`."""
    return _NAME.fullmatch(name) is not None


def parse_index(data: bytes, path: Path) -> PackIndex:
    """The header and index at the start of `data` (the pack, or its first bytes through
    the blank line that ends the index)."""
    end = data.find(b"\n\n")
    if end < 0:
        return PackIndex(path, None, (), ("has no complete index (not a pack, or cut short)",))
    lines = data[:end].split(b"\n")
    header = _HEADER.fullmatch(lines[0])
    if header is None or int(header[1]) != PACK_VERSION:
        why = f"header is not 'gateledger-pack {PACK_VERSION} <host>': {lines[0][:80]!r}"
        return PackIndex(path, None, (), (why,))
    start = end + 2
    entries, problems = [], []
    for number, line in enumerate(lines[1:], start=2):
        match = _LINE.fullmatch(line)
        if match is None:
            problems.append(f"index line {number} is not '<id> <offset> <length>': not read")
            continue
        oid, offset, length = match[1].decode(), int(match[2]), int(match[3])
        entries.append(ObjectCopy(oid, path, start + offset, length))
    return PackIndex(path, header[2].decode(), tuple(entries), tuple(problems))


def read_index(path: Path) -> PackIndex:
    """A pack's header and index, reading only the start of the file (StorageError when
    it cannot be read)."""
    head = b""
    try:
        with open(path, "rb") as fh:
            step = 1 << 16
            while b"\n\n" not in head and len(head) < MAX_INDEX_BYTES:
                chunk = fh.read(step)
                if not chunk:
                    break
                head += chunk
                step = min(2 * step, MAX_INDEX_BYTES)
    except OSError as exc:
        raise StorageError(f"cannot read pack {path}: {exc.strerror or exc}") from None
    return parse_index(head, path)


def pack_problems(index: PackIndex, data: bytes, part: str) -> list[str]:
    """What is wrong with a whole pack read as `data` from `part`'s packs folder, besides
    its objects (each is checked against its id by the caller)."""
    problems = list(index.problems)
    name = index.path.name
    if not is_pack_name(name):
        problems.append("is not named by its id (<sha256 of its bytes>.pack)")
    elif hashlib.sha256(data).hexdigest() != name[: -len(PACK_SUFFIX)]:
        problems.append("bytes no longer hash to its name (changed, cut short or damaged)")
    if index.host is not None and index.host != part:
        problems.append(
            f"was written for host {index.host}'s part but lies in {part}'s: objects never "
            f"move between parts"
        )
    return problems


def build_pack(host: str, objects: list[tuple[str, bytes]]) -> bytes:
    """A pack of `objects` ((id, bytes), in the order given) for `host`'s part."""
    lines, offset = [f"gateledger-pack {PACK_VERSION} {host}\n"], 0
    for oid, data in objects:
        lines.append(f"{oid} {offset} {len(data)}\n")
        offset += len(data)
    lines.append("\n")
    return "".join(lines).encode() + b"".join(data for _oid, data in objects)


__all__ = [
    "MAX_PACK_BYTES",
    "PACKS_DIR",
    "PACK_SUFFIX",
    "ObjectCopy",
    "PackIndex",
    "build_pack",
    "is_pack_name",
    "pack_problems",
    "parse_index",
    "read_index",
]
