"""Hostile input gets one line, exit 2, and nothing written: deep nesting, huge lines and
logs, NaN, repeated keys, garbage, decompression bombs. A planted object cannot crash
verify or audit."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from click.testing import CliRunner

from audit.bundle import BundleLimits, open_bundle
from audit.rederive import audit_store
from gateledger.cli.main import cli
from ledger.errors import LedgerError
from ledger.ingest import ingest, record_run_start
from ledger.manifest import freeze
from ledger.rawlog import MAX_LINE_BYTES, parse_raw_log
from ledger.verify import verify

from .conftest import C0, make_log, make_plan

DEEP = 100_000


def _snapshot(store):
    return sorted(
        (str(p), p.stat().st_size)
        for p in store.root.rglob("*")
        if p.is_file() and not p.name.endswith(".lock")
    )


@pytest.fixture
def frozen(store, key):
    mid = freeze(store, make_plan(), key)
    record_run_start(store, mid, C0, 0, "h1", key=key)
    return store, mid


def _one_line_exit_2(res, *words):
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    assert all(w in lines[0] for w in words), lines[0]


def _ingest_cli(store, path, mid=None):
    args = ["--store", str(store.root), "--host", "h1", "ingest", str(path)]
    if mid:
        args += ["--manifest", mid, "--condition", "c0", "--seed", "0", "--host", "h1"]
    return CliRunner().invoke(cli, args)


@pytest.mark.parametrize(
    "name,data,words",
    [
        (
            "deep",
            b'{"type":"header","x":' + b"[" * DEEP + b"]" * DEEP + b"}\n",
            ("nested more than 64 levels",),
        ),
        (
            "long",
            b'{"type":"step","pad":"' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n',
            ("bytes, more than the", "allowed per line"),
        ),
        (
            "nan",
            make_log(None).replace(b'"val_bpb":1.25,"training', b'"val_bpb":NaN,"training'),
            ("NaN is not a JSON number",),
        ),
        (
            "dupkey",
            make_log(None).replace(
                b'{"type":"summary","status":"ok"',
                b'{"type":"summary","status":"ok","status":"diverged"',
            ),
            ("duplicate key 'status'",),
        ),
        ("garbage", b"\x00\xffnot a log\x13\n" * 50, ("not JSON records",)),
    ],
)
def test_bad_raw_log_is_refused_and_nothing_is_written(frozen, tmp_path, name, data, words):
    store, mid = frozen
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(data)
    before = _snapshot(store)
    for manifest in (mid, None):  # a declared run and unplanned compute alike
        _one_line_exit_2(_ingest_cli(store, path, manifest), *words)
    assert _snapshot(store) == before


def test_log_larger_than_the_cap_is_refused_without_reading_it_whole(frozen, tmp_path, monkeypatch):
    import gateledger.recording as api
    import ledger.rawlog as rawlog

    store, mid = frozen
    monkeypatch.setattr(rawlog, "MAX_LOG_BYTES", 4096)
    monkeypatch.setattr(api, "MAX_LOG_BYTES", 4096)
    path = tmp_path / "big.jsonl"
    path.write_bytes(make_log(mid) + b'{"type":"step","step":3,"loss":2.0}\n' * 200)
    _one_line_exit_2(_ingest_cli(store, path, mid), "more than the 4096 allowed")


def test_nan_summary_is_never_recorded_ok(frozen, key):
    store, mid = frozen
    # what the runner's own writer would never produce, but a foreign one might: null metric
    raw = make_log(mid).replace(b'"val_bpb":1.25,"training', b'"val_bpb":null,"training')
    with pytest.raises(LedgerError, match="no finite val_bpb"):
        ingest(store, raw, manifest=mid, condition=C0, seed=0, host="h1", key=key)


@pytest.mark.parametrize(
    "text,words",
    [
        ('{"campaign": ' + "[" * DEEP + "]" * DEEP + "}", ("nested more than 64 levels",)),
        ('{"campaign": "t", "campaign": "u"}', ("duplicate key 'campaign'",)),
        ('{"budget_s": Infinity}', ("Infinity is not a JSON number",)),
    ],
)
def test_bad_plan_is_one_line(store, tmp_path, text, words):
    plan = tmp_path / "plan.json"
    plan.write_text(text)
    res = CliRunner().invoke(cli, ["--store", str(store.root), "freeze", "--plan", str(plan)])
    _one_line_exit_2(res, f"plan {plan}", *words)


def test_deep_campaign_toml_is_one_line(store, tmp_path):
    camp = tmp_path / "deep.toml"
    camp.write_text("[campaign]\nname = 'x'\n[base]\nd = " + "[" * DEEP + "]" * DEEP + "\n")
    res = CliRunner().invoke(cli, ["--store", str(store.root), "status", "--campaign", str(camp)])
    _one_line_exit_2(res, str(camp), "nested")


def test_planted_deep_objects_do_not_break_verify_or_audit(filled):
    store = filled.store
    deep = b'{"body":' + b"[" * DEEP + b"]" * DEEP + b',"kind":"decision"}'
    store.put_bytes(deep)
    line = b'{"at":' + b"[" * DEEP + b"]" * DEEP + b"}"
    journal = store.journal()
    journal.path.write_bytes(journal.path.read_bytes() + line + b"\n")
    found = [str(p) for p in verify(store)]
    assert any("object is nested more than 64 levels deep: not used" in p for p in found), found
    assert any("journal.jsonl: line" in p and "more than a journal event's" in p for p in found)
    result = audit_store(store)  # no RecursionError, no traceback
    assert result.verdict == "problems"


def _tar_gz(members: dict[str, bytes | int]) -> bytes:
    """A gzip tar; an int member is that many zero bytes (streamed, never in memory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(data, int):
                info.size = data
                tar.addfile(info, _Zeros(data))
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Zeros(io.RawIOBase):
    def __init__(self, n: int) -> None:
        self.left = n

    def read(self, size: int = -1) -> bytes:
        n = self.left if size < 0 else min(size, self.left)
        self.left -= n
        return b"\0" * n


LISTING = json.dumps({"format": "gateledger-bundle", "files": []}).encode()


def test_bundle_bomb_member_is_refused_before_it_is_read(tmp_path):
    bomb = tmp_path / "bomb.tar.gz"
    bomb.write_bytes(_tar_gz({"bundle.json": LISTING, "store/parts/h/objects/aa/x": 1 << 30}))
    assert bomb.stat().st_size < 5 << 20  # a gigabyte of zeros in about a megabyte
    with pytest.raises(LedgerError, match="is 1073741824 bytes, more than the"):
        open_bundle(bomb, tmp_path / "review")
    assert not any((tmp_path / "review").rglob("x"))


def test_bundle_total_size_and_member_count_are_capped(tmp_path):
    many = tmp_path / "many.tar.gz"
    many.write_bytes(
        _tar_gz({"bundle.json": LISTING, **{f"store/f{i}": b"x" * 100 for i in range(30)}})
    )
    with pytest.raises(LedgerError, match="more than 10 members"):
        open_bundle(many, tmp_path / "a", BundleLimits(members=10))
    with pytest.raises(LedgerError, match="unpacks to more than 1000 bytes"):
        open_bundle(many, tmp_path / "b", BundleLimits(total_bytes=1000))


def test_raw_log_parser_reports_every_problem():
    lines = [
        b'{"type":"header","manifest":null}',
        b'{"type":"header","manifest":null}',
        b"not json",
        b'{"type":"step","step":1,"loss":3.0}',
        b'{"type":"eval","val_bpb":1.5}',
        b'{"type":"summary","status":"ok","val_bpb":1.2}',
    ]
    parsed = parse_raw_log(b"\n".join(lines) + b"\n")
    assert "line 2: second header" in parsed.problems
    assert parsed.garbage == 1 and any(
        p.startswith("line 3: not valid JSON") for p in parsed.problems
    )
    assert "summary val_bpb 1.2 disagrees with the eval line's 1.5" in parsed.problems


def test_a_journal_line_of_the_wrong_shape_is_reported_and_never_read(filled):
    """Every field present, but a kind that is a list, a time nested 900 deep: one finding
    naming the line, and nothing downstream meets them (no TypeError, no RecursionError)."""
    store = filled.store
    deep = "[" * 900 + "]" * 900
    line = (
        '{"at":' + deep + ',"kind":["run_started"],"manifest":null,"object":null,'
        '"prev":"' + "0" * 64 + '","run":[1],"seq":99}'
    ).encode()
    journal = store.journal()
    journal.path.write_bytes(journal.path.read_bytes() + line + b"\n")
    found = [str(p) for p in verify(store)]
    assert any("journal.jsonl: line" in p and "kind is not a string" in p for p in found), found
    assert audit_store(store).verdict == "problems"
