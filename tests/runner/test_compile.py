"""`compile: true` on CPU: inductor kernels, same model maths, still replayable bit for bit.

Compiled and eager float32 kernels reassociate sums differently, and the difference after
several optimizer steps depends on the CPU's vector width, so later losses are never
compared. What is compared holds on any x86-64 or ARM CPU:

* two compiled runs: exactly equal, every step (determinism);
* the same model in float64, compiled and eager: loss and every gradient agree to 1e-10
  (reassociation noise there is ~1e-15; a different formula is off by orders of magnitude);
* the same model in float32: loss and gradients of one step each lie within the float32
  accumulation bound of the float64 answer (see :func:`_float32_bound`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from runner import schema
from runner.model import GPT, GPTConfig
from tests.runner.conftest import TINY

VOCAB = 256  # byte-level tokens
SHAPE = {"dim": 32, "depth": 1, "n_heads": 2, "head_dim": 16, "seq_len": 32}  # TINY's shape
# the architecture knobs on: a short-window layer (masked attention), then a long one with a
# value embedding (both attention paths and the gate go through the compiler)
KNOBS = {"depth": 2, "window_pattern": "SL", "value_embeds": True}
BATCH = 4


def _has_cxx() -> bool:
    from torch._inductor import cpp_builder

    try:
        cpp_builder.get_cpp_compiler()
    except Exception:
        return False
    return True


needs_cxx = pytest.mark.skipif(
    not _has_cxx(), reason="no C++ compiler for inductor on this machine"
)


def _run(tmp_path, corpus, name, compile_model, env=None):
    cfg = tmp_path / f"{name}.json"
    cfg.write_text(json.dumps({**TINY, "compile": compile_model}))
    log = tmp_path / f"{name}.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "--config",
            str(cfg),
            "--budget",
            "60s",
            "--steps",
            "6",
            "--seed",
            "3",
            "--log",
            str(log),
            "--data",
            str(corpus),
            "--device",
            "cpu",
            "--threads",
            "1",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    return proc, log


def _losses(log):
    return [x["loss"] for x in map(json.loads, log.read_text().splitlines()) if x["type"] == "step"]


def _generic_model(dtype: torch.dtype) -> GPT:
    """The runner's model at TINY's width with the knobs on (``KNOBS``) and every weight random
    (none zero, as at init), so that every parameter gets a non-trivial gradient."""
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(
            vocab_size=VOCAB,
            dim=SHAPE["dim"],
            head_dim=SHAPE["head_dim"],
            seq_len=SHAPE["seq_len"],
            **KNOBS,
        )
    )
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, p.shape[1] ** -0.5)
            else:
                p.uniform_(0.5, 1.5)
    return model.to(dtype)


def _loss_and_grads(dtype: torch.dtype, compiled: bool) -> tuple[float, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, VOCAB, (BATCH, SHAPE["seq_len"]), generator=gen)
    y = torch.randint(0, VOCAB, (BATCH, SHAPE["seq_len"]), generator=gen)
    model = _generic_model(dtype)
    fwd = model.compiled() if compiled else model
    loss = fwd(x, y)
    loss.backward()
    return loss.item(), {n: p.grad.double() for n, p in model.named_parameters()}


def _float32_bound() -> float:
    """Normwise relative error allowed for one float32 forward+backward.

    Each dot product of length n carries at most gamma_n = n*u/(1 - n*u) relative error
    (Higham, Accuracy and Stability of Numerical Algorithms, eq. 3.4; u = 2^-24); the longest
    reduction here is the vocabulary (softmax sums, head gradients) or the tokens of a batch
    (weight gradients), and a gradient passes through at most ``chain`` such products in
    sequence (per block: two norms, attention's QKV, scores, values and projection, the MLP's
    two matrices; then head and softmax), each adding its gamma.
    """
    u = 2.0**-24
    n = max(VOCAB, BATCH * SHAPE["seq_len"], 4 * SHAPE["dim"])
    chain = 9 * KNOBS["depth"] + 2
    return chain * n * u / (1 - n * u)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.slow
@needs_cxx
def test_compiled_cpu_run_is_deterministic(tmp_path, corpus):
    proc, first = _run(tmp_path, corpus, "c1", True)
    assert proc.returncode == 0, proc.stderr
    proc, second = _run(tmp_path, corpus, "c2", True)
    assert proc.returncode == 0, proc.stderr
    compiled = _losses(first)
    assert len(compiled) == 6 and compiled == _losses(second)  # bit for bit, every step
    header = json.loads(first.read_text().splitlines()[0])
    assert header["compile"] is True
    proc, eager_log = _run(tmp_path, corpus, "e", False)
    assert proc.returncode == 0, proc.stderr
    # the first step's loss is forward numerics only: the same model, to float32 rounding;
    # a near-uniform model's loss over 256 byte tokens is ln(256) = 5.545
    eager = _losses(eager_log)
    assert compiled[0] == pytest.approx(eager[0], rel=_float32_bound())
    assert compiled[0] == pytest.approx(5.545, abs=0.05)


@pytest.mark.slow
@needs_cxx
def test_compiled_and_eager_compute_the_same_model():
    loss64, grads64 = _loss_and_grads(torch.float64, compiled=False)
    loss64c, grads64c = _loss_and_grads(torch.float64, compiled=True)
    assert set(grads64) == set(grads64c) and all(g.norm() > 0 for g in grads64.values())
    assert abs(loss64c - loss64) <= 1e-10 * loss64
    for name, g in grads64.items():
        assert _rel(grads64c[name], g) <= 1e-10, name
    # float32, eager and compiled alike: within float32's accumulation bound of float64
    bound = _float32_bound()
    assert bound < 1e-3  # the bound still separates rounding from a different model
    for compiled in (False, True):
        loss32, grads32 = _loss_and_grads(torch.float32, compiled=compiled)
        assert abs(loss32 - loss64) <= bound * loss64, compiled
        for name, g in grads64.items():
            assert _rel(grads32[name], g) <= bound, (compiled, name)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to impersonate")
def test_failure_mid_run_ends_the_log_with_a_crashed_summary(tmp_path, corpus):
    # a "compiler" that answers --version like g++ but fails every compilation
    fake = tmp_path / "bin" / "g++"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\nfor a in "$@"; do case "$a" in --version|-v) exec '
        f'{shutil.which("g++")} "$@";; esac; done\n'
        'echo "fatal error: broken toolchain" >&2\nexit 1\n'
    )
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
