"""The store, verify, bundles and DVC see exactly the same host parts: a part that is a
symbolic link is read by none of them (and said so), and the ignore file hides only the
journal's lock file, never a part whose name ends like one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pathspec
from click.testing import CliRunner

from gateledger.cli.main import cli
from ledger.verify import verify

REPO = Path(__file__).resolve().parents[2]


def test_a_linked_host_part_is_read_by_nothing_and_refused_by_export(filled, tmp_path):
    store = filled.store
    elsewhere = tmp_path / "mounted-h2"
    shutil.copytree(store.parts_dir / "h1", elsewhere)  # a whole host's evidence, linked in
    (store.parts_dir / "h2").symlink_to(elsewhere, target_is_directory=True)
    assert store.parts() == ["h1"] and store.linked_parts() == ["h2"]
    found = [str(p) for p in verify(store, check_index=False)]
    assert any(p.startswith("parts/h2: host part is a symbolic link") for p in found), found
    res = CliRunner().invoke(
        cli, ["--store", str(store.root), "export", str(tmp_path / "b.tar.gz")]
    )
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert "parts/h2 is a symbolic link" in lines[0]
    assert not (tmp_path / "b.tar.gz").exists()


def test_the_ignore_file_hides_lock_files_not_parts_named_like_them():
    lines = (REPO / ".dvcignore").read_text().splitlines()
    spec = pathspec.GitIgnoreSpec.from_lines(lines)  # the ignore syntax DVC follows
    assert spec.match_file(".ledger/parts/h1/journal.jsonl.lock")
    assert spec.match_file(".ledger/work/locks/ab12.lock")
    for kept in (
        ".ledger/parts/gpu.lock/journal.jsonl",
        ".ledger/parts/gpu.lock/objects/ab/" + "ab" * 32,
        ".ledger/parts/h1/journal.head",
    ):
        assert not spec.match_file(kept), kept
