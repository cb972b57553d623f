"""Device selection, numeric settings, peak FLOP/s (for MFU) and peak memory."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import resource
import sys
import time
from collections.abc import Callable

import torch

from runner.errors import UsageError

# Dense bf16 tensor-core peaks (FLOP/s); longer names first so "H100 PCIe" beats "H100".
GPU_PEAK_BF16: list[tuple[str, float]] = [
    ("GH200", 989.5e12),
    ("H200", 989.5e12),
    ("H100 PCIe", 756.0e12),
    ("H100", 989.5e12),
    ("H800", 989.5e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362.05e12),
    ("L40", 181.05e12),
    ("L4", 121e12),
    ("A10G", 70e12),
    ("A10", 125e12),
    ("RTX 4090", 165.2e12),
    ("RTX 3090", 71e12),
    ("A6000", 154.8e12),
    ("V100", 125e12),
    ("T4", 65e12),
]


def select(name: str) -> torch.device:
    """Resolve ``auto|cpu|cuda``; asking for CUDA without one is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    return torch.device(name)


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # glibc's maximum
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Stop glibc from handing tensor memory back to the OS after every free (Linux, CPU).

    PyTorch's CPU allocator is plain ``malloc``. With glibc's defaults, buffers of a few
    hundred KB to a few MB (every activation here) are mmapped or trimmed off the heap when
    freed, so each new tensor page-faults its memory in again: a linear + ReLU + square chain
    at shape (a) took 1.6 ms instead of 0.42 ms. Raising the mmap and trim thresholds keeps
    that memory in the heap for reuse. Numerics are unchanged (allocations stay 64-byte
    aligned). Returns whether the setting took (False off glibc).
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def configure(device: torch.device, threads: int | None, deterministic: bool) -> None:
    """Fix threads and numerics before any tensor is made (determinism needs both)."""
    if threads is not None:
        torch.set_num_threads(threads)
    if device.type == "cuda":
        # before the first CUDA allocation: fewer fragmentation OOMs (autoresearch sets it too);
        # a setting of the user's wins
        if not (os.environ.get("PYTORCH_ALLOC_CONF") or os.environ.get("PYTORCH_CUDA_ALLOC_CONF")):
            os.environ["PYTORCH_ALLOC_CONF"] = "expandable_segments:True"
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        if not os.environ.get("RUNNER_GLIBC_DEFAULTS"):
            keep_freed_memory()
        torch.use_deterministic_algorithms(True)
        # Denormal floats (tiny gradients early in training) make CPU kernels up to ~10x slower.
        torch.set_flush_denormal(True)


def check_compile(device: torch.device) -> None:
    """``compile: true`` on CPU needs a working C++ compiler (inductor emits C++ kernels).

    Checked before the header is written, so a machine without one fails with one line
    instead of a compiler traceback at the first step.
    """
    if device.type != "cpu":
        return
    from torch._inductor import cpp_builder  # torch: loaded only when a compile check runs

    try:
        cpp_builder.get_cpp_compiler()
    except Exception as e:  # inductor raises its own InvalidCxxCompiler
        raise UsageError(
            "config compile: true on CPU needs a C++ compiler (g++ or clang++ on PATH, "
            f"or CXX); set compile to false or install one ({type(e).__name__})"
        ) from None


def autocast(device: torch.device) -> Callable[[], contextlib.AbstractContextManager[object]]:
    """bf16 autocast on CUDA; plain fp32 on CPU."""
    if device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def describe(device: torch.device) -> str:
    """Human-readable device name for the header."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return "cpu"


def measure_cpu_fp32_peak(seconds: float = 0.3, n: int = 512) -> float:
    """Best observed fp32 matmul FLOP/s: the CPU 'peak' MFU is measured against."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t0))
    return best


def peak_flops(device: torch.device) -> tuple[float | None, str]:
    """(peak FLOP/s, how it was obtained); None where no published peak is known: an
    unknown GPU, and any CPU. Why not a CPU rate measured at startup: it is a rate, not a
    peak (a busy machine measures low, a large model beats a small test matmul), so an MFU
    against it read 100.7% on a demo run. `measure_cpu_fp32_peak` stays for the benchmarks,
    which say what they compare against."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, flops in GPU_PEAK_BF16:
            if key in name:
                return flops, f"table:{key}:bf16"
        return None, "unknown-gpu"
    return None, "cpu: no published peak"


def peak_mem_mb(device: torch.device) -> float:
    """CUDA max allocated, or the process's max resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024
