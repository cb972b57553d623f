"""`compile: true` on CPU: inductor kernels, same model maths, still replayable bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

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


def test_compile_without_a_cxx_compiler_is_one_clear_line(tmp_path, corpus):
    env = {k: v for k, v in os.environ.items() if k != "CXX"}
    env["PATH"] = str(tmp_path / "empty-bin")  # no g++, clang++ or c++ to be found
    proc, log = _run(tmp_path, corpus, "nocxx", True, env=env)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert err.count("\n") == 0 and "C++ compiler" in err and "compile" in err
    assert not log.exists()  # refused before the header: no half-started run
