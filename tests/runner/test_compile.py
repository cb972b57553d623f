"""`compile: true` on CPU: inductor kernels, same model maths, still replayable bit for bit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from runner import schema
from tests.runner.conftest import TINY


def _has_cxx() -> bool:
    from torch._inductor import cpp_builder

    try:
        cpp_builder.get_cpp_compiler()
    except Exception:
        return False
    return True


def _run(tmp_path, corpus, name, compile_model, env=None):
    cfg = tmp_path / f"{name}.json"
    cfg.write_text(json.dumps({**TINY, "compile": compile_model}))
    log = tmp_path / f"{name}.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--config", str(cfg), "--budget", "60s", "--steps", "6",
         "--seed", "3", "--log", str(log), "--data", str(corpus), "--device", "cpu",
         "--threads", "1", "--quiet"],
        capture_output=True, text=True, env=env)
    return proc, log


def _losses(log):
    return [x["loss"] for x in map(json.loads, log.read_text().splitlines()) if x["type"] == "step"]


@pytest.mark.slow
@pytest.mark.skipif(not _has_cxx(), reason="no C++ compiler for inductor on this machine")
def test_compiled_cpu_run_is_deterministic_and_matches_eager(tmp_path, corpus):
    proc, first = _run(tmp_path, corpus, "c1", True)
    assert proc.returncode == 0, proc.stderr
    proc, second = _run(tmp_path, corpus, "c2", True)
    assert proc.returncode == 0, proc.stderr
    compiled = _losses(first)
    assert len(compiled) == 6 and compiled == _losses(second)
    proc, eager_log = _run(tmp_path, corpus, "e", False)
    assert proc.returncode == 0, proc.stderr
    eager = _losses(eager_log)
    # Same network and optimizer: fused kernels only change rounding, so the first steps
    # agree to float32 noise; the initial loss of a near-uniform model is ~ln(256) = 5.55.
    assert compiled[0] == pytest.approx(eager[0], rel=1e-5)
    assert compiled[0] == pytest.approx(5.545, abs=0.05)
    assert compiled == pytest.approx(eager, rel=1e-3)
    header = json.loads(first.read_text().splitlines()[0])
    assert header["compile"] is True


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to impersonate")
def test_failure_mid_run_ends_the_log_with_a_crashed_summary(tmp_path, corpus):
    # a "compiler" that answers --version like g++ but fails every compilation
    fake = tmp_path / "bin" / "g++"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nfor a in "$@"; do case "$a" in --version|-v) exec '
                    f'{shutil.which("g++")} "$@";; esac; done\n'
                    'echo "fatal error: broken toolchain" >&2\nexit 1\n')
    fake.chmod(0o755)
    env = {**os.environ, "CXX": str(fake), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}
    proc, log = _run(tmp_path, corpus, "broken", True, env=env)
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("error: training crashed after 0 step(s)") and "Error" in err
    lines = schema.validate_log(log)  # raises unless header ... summary all validate
    assert lines[0]["type"] == "header" and lines[-1]["type"] == "summary"
    assert lines[-1]["status"] == "crashed" and lines[-1]["val_bpb"] is None
    assert lines[-1]["error"].split(":")[0].endswith("Error")


def test_compile_without_a_cxx_compiler_is_one_clear_line(tmp_path, corpus):
    env = {k: v for k, v in os.environ.items() if k != "CXX"}
    env["PATH"] = str(tmp_path / "empty-bin")  # no g++, clang++ or c++ to be found
    proc, log = _run(tmp_path, corpus, "nocxx", True, env=env)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert err.count("\n") == 0 and "C++ compiler" in err and "compile" in err
    assert not log.exists()  # refused before the header: no half-started run
