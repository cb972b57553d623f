"""Plain file edits of one stored object wherever it lies: its loose file, or a pack.

What someone with file access does. A packed object is edited inside its pack, the index
rewritten to match and the pack renamed to the sha256 of its new bytes, so that nothing
but the object's own re-hash can catch it. Written from the documented layout (header,
`<id> <offset> <length>` lines, a blank line, the bytes), not with the ledger's writer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path


def pack_entries(path: Path) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A pack's header line and its (id, bytes) in index order."""
    data = path.read_bytes()
    head, _, body = data.partition(b"\n\n")
    header, *lines = head.split(b"\n")
    entries = []
    for line in lines:
        oid, offset, length = line.decode().split(" ")
        entries.append((oid, body[int(offset) : int(offset) + int(length)]))
    return header, entries


def write_pack(folder: Path, header: bytes, entries: list[tuple[str, bytes]]) -> Path:
    """A pack of `entries` in `folder`, named by its bytes' sha256."""
    index, offset = [], 0
    for oid, data in entries:
        index.append(f"{oid} {offset} {len(data)}".encode())
        offset += len(data)
    data = b"\n".join([header, *index]) + b"\n\n" + b"".join(d for _, d in entries)
    path = folder / f"{hashlib.sha256(data).hexdigest()}.pack"
    path.write_bytes(data)
    return path


def edit_object(store, oid: str, change: Callable[[bytes], bytes]) -> None:
    """Rewrite object `oid`'s bytes as `change(old)`, wherever it lies."""
    path = store.path_of(oid)
    assert path is not None, oid
    path.chmod(0o644)
    if path.parent.name != "packs":
        path.write_bytes(change(path.read_bytes()))
        return
    header, entries = pack_entries(path)
    path.unlink()
    write_pack(path.parent, header, [(e, change(d) if e == oid else d) for e, d in entries])


def flip_byte(offset: int) -> Callable[[bytes], bytes]:
    """A change that flips one bit of the byte at `offset` (negative: from the end)."""

    def change(data: bytes) -> bytes:
        out = bytearray(data)
        out[offset] ^= 0x01
        return bytes(out)

    return change
