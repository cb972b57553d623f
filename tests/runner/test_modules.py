"""Direct tests of runner.__main__, runner.fingerprint and runner.stopflag."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys

import pytest

import runner.__main__ as runner_main
from runner import fingerprint
from runner.stopflag import StopFlag


def test_main_entry_point_exits_with_the_cli_status(monkeypatch, capsys):
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "runner",
            "--config",
            "/nonexistent.json",
            "--budget",
            "1s",
            "--seed",
            "0",
            "--log",
            "/tmp/x.jsonl",
        ],
    )
    with pytest.raises(SystemExit) as exit_info:
        runner_main.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "/nonexistent.json" in err and "\n" not in err
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "--replay" in proc.stdout


def test_provenance_code_hash_is_path_and_bytes_of_every_module_in_order():
    expected = hashlib.sha256()
    for path in sorted(fingerprint.PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(fingerprint.PACKAGE_DIR).as_posix()
        if "__pycache__" not in rel:
            expected.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    assert fingerprint.code_sha256() == expected.hexdigest()
    assert fingerprint.utc_now().endswith("Z")


def test_stopflag_turns_sigterm_into_a_flag_and_restores_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    with StopFlag() as stop:
        assert not stop.set
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.set
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_allocator_tuning_takes_on_glibc() -> None:
    import platform

    from runner.device import keep_freed_memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert keep_freed_memory() is True
