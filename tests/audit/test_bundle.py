"""Reviewer bundles: deterministic export, safe extraction, tampering reported."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from audit.bundle import export_bundle, open_bundle
from ledger.errors import BundleError, LedgerError

META = {
    "versions": {"python": "3.11", "torch": "2.9"},
    "created_at": "2025-01-01T00:00:00Z",
    "tool_version": "0.1.0",
}


def fake_store(root: Path) -> Path:
    files = {
        "store.json": b'{"format":"gateledger-store","version":1}',
        "keys/k1.json": b'{"public":"x"}',
        "parts/h1/objects/ab/" + "ab" * 32: b"object bytes",
        "parts/h1/journal.jsonl": b'{"seq":0}\n',
        "parts/h2/objects/cd/" + "cd" * 32: b"\x00\x01binary",
        "anchors/a1.json": b"{}",
        "parts/h1/objects/ab/.tmp-123": b"half written",
        "parts/h1/journal.jsonl.lock": b"",
        "index.duckdb": b"derived cache",
        "notes.txt": b"not evidence",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_round_trip_same_bytes(tmp_path):
    store = fake_store(tmp_path / "store")
    campaign = tmp_path / "demo.toml"
    campaign.write_text("[campaign]\nname = 'demo'\n")
    bundle = export_bundle(
        store, tmp_path / "out" / "b.tar.gz", extra_files={"demo.toml": campaign}, meta=META
    )
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        assert names == sorted(names)
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in tar.getmembers())
    assert "store/index.duckdb" not in names and "store/notes.txt" not in names
    assert not any(".tmp-" in n or n.endswith(".lock") for n in names)
    root, problems = open_bundle(bundle, tmp_path / "review")
    assert problems == []
    assert root == tmp_path / "review" / "store"
    for rel in (
        "store.json",
        "keys/k1.json",
        "parts/h1/journal.jsonl",
        "anchors/a1.json",
        "parts/h2/objects/cd/" + "cd" * 32,
    ):
        assert (root / rel).read_bytes() == (store / rel).read_bytes()
    assert (tmp_path / "review" / "extra" / "demo.toml").read_bytes() == campaign.read_bytes()
    with tarfile.open(bundle) as tar:
        manifest = json.loads(tar.extractfile("bundle.json").read())
    assert manifest["meta"]["versions"]["torch"] == "2.9"
    assert manifest["tool_version"] == "0.1.0"
    assert {f["path"] for f in manifest["files"]} == {n for n in names if n != "bundle.json"}


def test_export_is_deterministic(tmp_path):
    store = fake_store(tmp_path / "store")
    a = export_bundle(store, tmp_path / "a.tar.gz", meta=META).read_bytes()
    b = export_bundle(store, tmp_path / "b.tar.gz", meta=META).read_bytes()
    assert a == b


def _write_tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    path.write_bytes(gzip.compress(buf.getvalue()))
    return path


def _manifest(files: dict[str, bytes]) -> bytes:
    import hashlib

    return json.dumps(
        {
            "format": "gateledger-bundle",
            "version": 1,
            "files": [
                {"path": n, "sha256": hashlib.sha256(d).hexdigest()} for n, d in files.items()
            ],
        }
    ).encode()


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil", "store/../../evil"])
def test_rejects_path_traversal(tmp_path, name):
    files = {"store/store.json": b"{}"}
    bad = _write_tar(
        tmp_path / "bad.tar.gz", {**files, name: b"pwned", "bundle.json": _manifest(files)}
    )
    with pytest.raises(BundleError, match="unsafe file name"):
        open_bundle(bad, tmp_path / "review")
    assert not (tmp_path / "evil.txt").exists()


def test_rejects_links(tmp_path):
    files = {"store/store.json": b"{}"}
    bad = _write_tar(
        tmp_path / "bad.tar.gz",
        {**files, "bundle.json": _manifest(files)},
        links={"store/keys/k.json": "/etc/passwd"},
    )
    with pytest.raises(BundleError, match="'store/keys/k.json' is a link"):
        open_bundle(bad, tmp_path / "review")


def test_tampered_member_reported_not_raised(tmp_path):
    store = fake_store(tmp_path / "store")
    bundle = export_bundle(store, tmp_path / "b.tar.gz", meta=META)
    with tarfile.open(bundle) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    members["store/parts/h1/journal.jsonl"] = b'{"seq":1}\n'
    members["store/keys/k2.json"] = b"{}"
    del members["store/anchors/a1.json"]
    tampered = _write_tar(tmp_path / "t.tar.gz", members)
    root, problems = open_bundle(tampered, tmp_path / "review")
    assert (root / "parts/h1/journal.jsonl").read_bytes() == b'{"seq":1}\n'
    text = "\n".join(problems)
    assert "'store/parts/h1/journal.jsonl' does not match its sha256" in text
    assert "'store/keys/k2.json' is not listed" in text
    assert "'store/anchors/a1.json' is listed in bundle.json but missing" in text
    assert len(problems) == 3


def test_not_a_bundle(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball")
    with pytest.raises(BundleError, match="not a .tar.gz bundle"):
        open_bundle(junk, tmp_path / "r1")
    no_manifest = _write_tar(tmp_path / "nm.tar.gz", {"store/store.json": b"{}"})
    with pytest.raises(BundleError, match="no bundle.json"):
        open_bundle(no_manifest, tmp_path / "r2")
    with pytest.raises(BundleError, match="no such bundle"):
        open_bundle(tmp_path / "missing.tar.gz", tmp_path / "r3")


def test_export_refuses_non_store_and_bad_extra_name(tmp_path):
    with pytest.raises(BundleError, match="not a ledger store"):
        export_bundle(tmp_path, tmp_path / "b.tar.gz", meta=META)
    store = fake_store(tmp_path / "store")
    with pytest.raises(BundleError, match="unsafe file name"):
        export_bundle(
            store, tmp_path / "b.tar.gz", extra_files={"../x": store / "store.json"}, meta=META
        )
    assert not (tmp_path / "b.tar.gz").exists()


def test_a_truncated_bundle_is_a_bundle_error(tmp_path):
    """A download cut off halfway: one BundleError (still a LedgerError, exit 2), no traceback."""
    whole = export_bundle(fake_store(tmp_path / "store"), tmp_path / "b.tar.gz", meta=META)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(BundleError, match="not a .tar.gz bundle or damaged") as caught:
        open_bundle(cut, tmp_path / "review")
    assert isinstance(caught.value, LedgerError) and caught.value.exit_code == 2
