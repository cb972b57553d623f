"""The runner on an accelerator, checked in one command; prints one JSON object.

On a GPU host, in a fresh clone with the package installed (no data, no network needed)::

    python benchmarks/gpu_check.py                      # CUDA, autoresearch's reference shape
    python benchmarks/gpu_check.py --device cpu         # the CPU fallback: a tiny shape, seconds

What it does (each phase in subprocesses, through the real CLIs; a phase that fails is recorded
with its error and the next one still runs; a phase whose expected end passes ``--time-limit``
is recorded as skipped, so the most telling phases come first):

1. writes a synthetic corpus (``synthetic_corpus``: Zipf-distributed words with a successor
   rule, so context helps); on CUDA as word tokens, vocabulary 8192 like autoresearch's
   tokenizer (``train.bin``, ``val.bin``, ``token_bytes.json``; bytes per token = word + space);
   on CPU as bytes. ``--data PATH`` uses your own data instead;
2. ``reference``: ``python -m runner`` with ``campaigns/paper.toml``'s ``[base]`` config
   (autoresearch's reference shape: depth 8, aspect ratio 64, head_dim 128, seq 2048,
   524,288 tokens per step, bf16 autocast, ``compile: true``) for ``--budget`` seconds
   (default 120): tokens/s, MFU against the runner's peak table, peak memory, val_bpb;
3. ``ledger``: ``campaigns/paper.toml``'s first stage (``screen-2m``, its own 2-minute budget;
   ``--stage-budget`` overrides) in a temporary store: ``ledger init``, ``keygen``, ``freeze``,
   ``run --device cuda --limit 2 --host a100`` (``--ledger-jobs`` 2: both runs at once on the
   GPUs there are, one GPU shared if that is all), then ``ledger audit --allow-undecided``;
4. ``replay``: two ``--steps N`` runs of the reference config (``--replay-steps``, default 10)
   compared step by step: ``identical`` (bit for bit), else the largest loss and val_bpb
   differences against ``REPLAY_TOLERANCE`` (bf16's relative precision, 2^-8);
5. ``no_compile``: the same config with ``compile: false`` for ``--eager-budget`` seconds
   (default 30: tokens/s and MFU are steady-state figures, and the 8-minute plan has no room
   for a second 120 s run).

Time plan on one H100-class GPU: reference ~150 s, ledger ~165 s, replay ~60 s, no_compile
~60 s: about 7.5 minutes (``--time-limit`` 480 s). With ``--device cpu`` the shape is ``TINY``
(and the campaign's base and factor levels are scaled down to it, budgets 1 s): seconds; CI
runs that.

``--out DIR`` (default ``$OUT`` if set, else a temporary folder) receives ``gpu_check.json``
(rewritten after every phase, so a run cut short still leaves its results) and the runner's raw
logs. Exit 0 when ``ok`` is true, 1 otherwise.

Output schema (``SCHEMA``, checked by ``tests/runner/test_gpu_check.py``)::

    {"schema": "gpu_check/1", "ok": bool, "errors": [str], "device": "cuda"|"cpu",
     "device_name": str, "torch": str, "cuda": str|null, "peak_flops": num|null,
     "peak_flops_source": str, "shape": "reference"|"tiny", "config": {runner config},
     "data": {"path": str, "kind": "bytes"|"tokens", "generated": bool},
     "wall_seconds": num, "time_limit_s": num,
     "reference": RUN, "no_compile": RUN,
     "replay": {"phase": "ok"|"failed"|"skipped", "steps": int, "runs": [RUN, RUN],
                "identical": bool|null, "max_abs_loss_diff": num|null,
                "max_rel_loss_diff": num|null, "val_bpb_diff": num|null,
                "tolerance": {"rel_loss": num, "val_bpb": num}, "within_tolerance": bool|null},
     "ledger": {"phase": ..., "stage": str, "campaign": str, "budget_s": num, "host": str,
                "limit": int, "jobs": int, "executed": int|null, "statuses": {status: n},
                "runs": [{"condition": str, "seed": int, "status": str, "val_bpb": num|null,
                          "training_seconds": num|null, "tokens_per_s": num|null, "mfu": num|null}],
                "audit_exit": int|null, "audit_ok": bool|null, "audit_problems": [str],
                "commands": [{"command": str, "exit": int|null, "seconds": num}]},
     "goal": {"mfu_target": 0.4, "mfu": num|null, "met": bool|null, "note": str}}
    RUN = {"phase": "ok"|"failed"|"skipped", "status": runner status|null, "budget_s": num,
           "compile": bool, "val_bpb", "tokens_per_s", "mfu", "peak_mem_mb",
           "training_seconds", "warmup_seconds", "eval_seconds", "total_seconds": num|null,
           "num_steps", "num_params": int|null, "flops_per_token": num|null,
           "wall_seconds": num, "log": str|null, "error": str|null}
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "campaigns" / "paper.toml"
SCHEMA_VERSION = "gpu_check/1"
MFU_TARGET = 0.40  # autoresearch's published H100 example reaches 39.8 %
REPLAY_TOLERANCE = {"rel_loss": 2.0**-8, "val_bpb": 2.0**-8}
TOKEN_VOCAB = 8192  # autoresearch's tokenizer size
# The CPU fallback's shape (the runner tests' TINY) and the paper factors scaled down to it.
TINY = {
    "depth": 1,
    "aspect_ratio": 32,
    "head_dim": 16,
    "seq_len": 32,
    "device_batch_size": 4,
    "total_batch_size": 256,
    "eval_tokens": 1024,
    "compile": False,
}
TINY_FACTOR_LEVELS = {"total_batch_size": [128, 256], "depth": [1, 2], "aspect_ratio": [16, 32]}
TINY_CONDITIONS = {"bridge": {"depth": 1, "aspect_ratio": 16}}

_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_PHASE = {"enum": ["ok", "failed", "skipped"]}
RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "phase",
        "status",
        "budget_s",
        "compile",
        "val_bpb",
        "tokens_per_s",
        "mfu",
        "peak_mem_mb",
        "training_seconds",
        "warmup_seconds",
        "eval_seconds",
        "total_seconds",
        "num_steps",
        "num_params",
        "flops_per_token",
        "wall_seconds",
        "log",
        "error",
    ],
    "properties": {
        "phase": _PHASE,
        "status": {"type": ["string", "null"]},
        "budget_s": {"type": "number"},
        "compile": {"type": "boolean"},
        "val_bpb": _NUM,
        "tokens_per_s": _NUM,
        "mfu": _NUM,
        "peak_mem_mb": _NUM,
        "training_seconds": _NUM,
        "warmup_seconds": _NUM,
        "eval_seconds": _NUM,
        "total_seconds": _NUM,
        "num_steps": _INT,
        "num_params": _INT,
        "flops_per_token": _NUM,
        "wall_seconds": {"type": "number"},
        "log": {"type": ["string", "null"]},
        "error": {"type": ["string", "null"]},
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "schema",
        "ok",
        "errors",
        "device",
        "device_name",
        "torch",
        "cuda",
        "peak_flops",
        "peak_flops_source",
        "shape",
        "config",
        "data",
        "wall_seconds",
        "time_limit_s",
        "reference",
        "no_compile",
        "replay",
        "ledger",
        "goal",
    ],
    "properties": {
        "schema": {"const": SCHEMA_VERSION},
        "ok": {"type": "boolean"},
        "errors": {"type": "array", "items": {"type": "string"}},
        "device": {"enum": ["cuda", "cpu"]},
        "device_name": {"type": "string"},
        "torch": {"type": "string"},
        "cuda": {"type": ["string", "null"]},
        "peak_flops": _NUM,
        "peak_flops_source": {"type": "string"},
        "shape": {"enum": ["reference", "tiny"]},
        "config": {"type": "object"},
        "data": {
            "type": "object",
            "required": ["path", "kind", "generated"],
            "properties": {
                "path": {"type": "string"},
                "kind": {"enum": ["bytes", "tokens"]},
                "generated": {"type": "boolean"},
            },
        },
        "wall_seconds": {"type": "number"},
        "time_limit_s": {"type": "number"},
        "reference": RUN_SCHEMA,
        "no_compile": RUN_SCHEMA,
        "replay": {
            "type": "object",
            "required": [
                "phase",
                "steps",
                "runs",
                "identical",
                "max_abs_loss_diff",
                "max_rel_loss_diff",
                "val_bpb_diff",
                "tolerance",
                "within_tolerance",
            ],
            "properties": {
                "phase": _PHASE,
                "steps": {"type": "integer"},
                "runs": {"type": "array", "items": RUN_SCHEMA},
                "identical": {"type": ["boolean", "null"]},
                "max_abs_loss_diff": _NUM,
                "max_rel_loss_diff": _NUM,
                "val_bpb_diff": _NUM,
                "tolerance": {"type": "object", "required": ["rel_loss", "val_bpb"]},
                "within_tolerance": {"type": ["boolean", "null"]},
            },
        },
        "ledger": {
            "type": "object",
            "required": [
                "phase",
                "stage",
                "campaign",
                "budget_s",
                "host",
                "limit",
                "jobs",
                "executed",
                "statuses",
                "runs",
                "audit_exit",
                "audit_ok",
                "audit_problems",
                "commands",
            ],
            "properties": {
                "phase": _PHASE,
                "stage": {"type": "string"},
                "campaign": {"type": "string"},
                "budget_s": {"type": "number"},
                "host": {"type": "string"},
                "limit": {"type": "integer"},
                "jobs": {"type": "integer"},
                "executed": _INT,
                "statuses": {"type": "object"},
                "runs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": [
                            "condition",
                            "seed",
                            "status",
                            "val_bpb",
                            "training_seconds",
                            "tokens_per_s",
                            "mfu",
                        ],
                        "properties": {
                            "condition": {"type": "string"},
                            "seed": {"type": "integer"},
                            "status": {"type": "string"},
                            "val_bpb": _NUM,
                            "training_seconds": _NUM,
                            "tokens_per_s": _NUM,
                            "mfu": _NUM,
                        },
                    },
                },
                "audit_exit": _INT,
                "audit_ok": {"type": ["boolean", "null"]},
                "audit_problems": {"type": "array", "items": {"type": "string"}},
                "commands": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["command", "exit", "seconds"],
                        "properties": {
                            "command": {"type": "string"},
                            "exit": _INT,
                            "seconds": {"type": "number"},
                        },
                    },
                },
            },
        },
        "goal": {
            "type": "object",
            "required": ["mfu_target", "mfu", "met", "note"],
            "properties": {
                "mfu_target": {"type": "number"},
                "mfu": _NUM,
                "met": {"type": ["boolean", "null"]},
                "note": {"type": "string"},
            },
        },
    },
}


def schema_errors(out: dict[str, Any]) -> list[str]:
    """Problems of an output object against ``SCHEMA`` (the runner's dependency-free checker)."""
    from runner.schema import compile_schema, errors

    return errors(out, compile_schema(SCHEMA))


# ----------------------------------------------------------------------------- data


def synthetic_words(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct pronounceable lower-case words (consonant-vowel syllables)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < count:
        n = int(rng.integers(1, 4))
        w = "".join(
            consonants[rng.integers(len(consonants))] + vowels[rng.integers(len(vowels))]
            for _ in range(n)
        )
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def synthetic_ids(n_tokens: int, vocab: int, seed: int = 0) -> tuple[Any, Any]:
    """(word ids, successor table): Zipf draws; with probability 1/2 a word is instead the
    successor (a random permutation) of the previous draw, so a model that reads context gains
    (the next word is the previous word's successor at about a quarter of positions)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    weights = 1.0 / (np.arange(vocab) + 2.7)
    draws = rng.choice(vocab, size=n_tokens, p=weights / weights.sum())
    successor = rng.permutation(vocab)
    follow = rng.random(n_tokens) < 0.5
    ids = draws.copy()
    ids[1:][follow[1:]] = successor[draws[:-1][follow[1:]]]
    return ids, successor


def synthetic_corpus(folder: Path, n_tokens: int, vocab: int, tokens: bool, seed: int = 0) -> Path:
    """Write ``synthetic_ids`` as a corpus; return the path to pass as ``--data``.

    ``tokens``: ``train.bin``/``val.bin`` (90/10) uint16 word ids and ``token_bytes.json`` (each
    word's UTF-8 length plus its space); else one ``corpus.txt`` of the words (byte tokens).
    """
    import numpy as np

    ids, _ = synthetic_ids(n_tokens, vocab, seed)
    words = synthetic_words(vocab, seed)
    folder.mkdir(parents=True, exist_ok=True)
    if tokens:
        split = int(n_tokens * 0.9)
        ids.astype(np.uint16)[:split].tofile(folder / "train.bin")
        ids.astype(np.uint16)[split:].tofile(folder / "val.bin")
        (folder / "token_bytes.json").write_text(json.dumps([len(w) + 1 for w in words]))
        return folder
    path = folder / "corpus.txt"
    path.write_text(" ".join(words[i] for i in ids.tolist()), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- campaign


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"cannot write {value} to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise ValueError(f"cannot write {type(value).__name__} to TOML")


def dump_toml(doc: dict[str, Any]) -> str:
    """TOML for a campaign-shaped document: tables of values and one array of tables."""
    lines: list[str] = []
    for name, body in doc.items():
        items = body if isinstance(body, list) else [body]
        for item in items:
            lines.append(f"[[{name}]]" if isinstance(body, list) else f"[{name}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items()]
            lines.append("")
    return "\n".join(lines)


def derive_campaign(source: Path, data: str, budget: str | None, tiny: bool) -> tuple[dict, str]:
    """The source campaign cut to its first stage, pointed at ``data``; (document, stage name).

    ``tiny`` replaces the base config's shape with ``TINY`` and the factor levels and named
    conditions that set the shape with ``TINY_FACTOR_LEVELS``/``TINY_CONDITIONS``.
    """
    doc = tomllib.loads(source.read_text(encoding="utf-8"))
    doc["campaign"] = {
        **doc["campaign"],
        "name": f"{doc['campaign']['name']}-gpu-check",
        "data": data,
    }
    stage = dict(doc["stages"][0])
    stage.pop("from", None)
    stage.pop("add", None)
    if budget is not None:
        stage["budget"] = budget
    doc["stages"] = [stage]
    if tiny:
        doc["base"] = {**doc["base"], **TINY}
        for spec in doc.get("factors", {}).values():
            if spec["key"] in TINY_FACTOR_LEVELS:
                spec["levels"] = TINY_FACTOR_LEVELS[spec["key"]]
        doc["conditions"] = {**doc.get("conditions", {}), **TINY_CONDITIONS}
    return doc, stage["name"]


# ----------------------------------------------------------------------------- phases


class Check:
    """Runs the phases, keeps the output object and rewrites it after every phase."""

    def __init__(self, args: argparse.Namespace, out_dir: Path, work: Path) -> None:
        self.args, self.out_dir, self.work = args, out_dir, work
        self.t0 = time.perf_counter()
        self.out: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "ok": False,
            "errors": [],
            "time_limit_s": float(args.time_limit),
        }

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def fits(self, seconds: float) -> bool:
        """Whether a phase expected to take ``seconds`` ends within the time limit."""
        return self.elapsed() + seconds <= self.args.time_limit

    def save(self) -> None:
        self.out["wall_seconds"] = self.elapsed()
        (self.out_dir / "gpu_check.json").write_text(json.dumps(self.out, indent=1))

    def error(self, where: str, message: str) -> None:
        self.out["errors"].append(f"{where}: {message}")

    def runner(
        self,
        name: str,
        cfg: dict[str, Any],
        budget_s: float,
        data: str,
        expect_s: float,
        steps: int | None = None,
    ) -> dict[str, Any]:
        """One ``python -m runner`` run; RUN fields from its raw log."""
        from runner.schema import validate_log

        rec: dict[str, Any] = {k: None for k in RUN_SCHEMA["required"]}
        rec.update(
            phase="skipped",
            budget_s=float(budget_s),
            compile=bool(cfg.get("compile")),
            wall_seconds=0.0,
        )
        if not self.fits(expect_s):
            rec["error"] = (
                f"skipped: {expect_s:.0f} s would pass the {self.args.time_limit:.0f} s limit"
            )
            self.error(name, rec["error"])
            return rec
        cfg_path, log = self.work / f"{name}.config.json", self.out_dir / f"{name}.jsonl"
        cfg_path.write_text(json.dumps(cfg))
        argv = [
            sys.executable,
            "-m",
            "runner",
            "--config",
            str(cfg_path),
            "--budget",
            f"{budget_s:g}s",
            "--seed",
            "0",
            "--log",
            str(log),
            "--data",
            data,
            "--device",
            self.args.device,
            "--quiet",
        ]
        if steps is not None:
            argv += ["--steps", str(steps)]
        if self.args.device == "cpu":
            argv += ["--threads", "1"]  # a tiny shape gains nothing from more, and CI shares cores
        t = time.perf_counter()
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, cwd=str(REPO), timeout=max(60.0, 3 * expect_s)
            )
            stderr, code = proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            stderr, code = (
                (e.stderr or b"").decode(errors="replace")
                if isinstance(e.stderr, bytes)
                else (e.stderr or ""),
                None,
            )
        rec["wall_seconds"] = time.perf_counter() - t
        rec["log"] = log.name if log.exists() else None
        tail = (stderr or "").strip().splitlines()[-1:] or [""]
        try:
            lines = validate_log(log)
        except (OSError, ValueError) as e:
            rec.update(phase="failed", error=f"exit {code}: {tail[0] or e}")
            self.error(name, rec["error"])
            return rec
        header, summary = lines[0], lines[-1]
        for key in (
            "status",
            "val_bpb",
            "tokens_per_s",
            "mfu",
            "peak_mem_mb",
            "training_seconds",
            "warmup_seconds",
            "eval_seconds",
            "total_seconds",
            "num_steps",
            "num_params",
        ):
            rec[key] = summary.get(key)
        rec["flops_per_token"] = header.get("flops_per_token")
        rec["phase"] = "ok" if code == 0 and summary["status"] == "ok" else "failed"
        if rec["phase"] == "failed":
            rec["error"] = (
                summary.get("error") or f"exit {code}, status {summary['status']}: {tail[0]}"
            )
            self.error(name, rec["error"])
        return rec

    def replay(self, cfg: dict[str, Any], data: str, expect_s: float) -> dict[str, Any]:
        """Two ``--steps`` runs of ``cfg``; compared step by step."""
        steps = self.args.replay_steps
        res: dict[str, Any] = {
            "phase": "ok",
            "steps": steps,
            "runs": [],
            "identical": None,
            "max_abs_loss_diff": None,
            "max_rel_loss_diff": None,
            "val_bpb_diff": None,
            "tolerance": REPLAY_TOLERANCE,
            "within_tolerance": None,
        }
        for i in (1, 2):
            res["runs"].append(
                self.runner(f"replay{i}", cfg, self.args.budget, data, expect_s, steps)
            )
        if any(r["phase"] != "ok" for r in res["runs"]):
            res["phase"] = (
                "skipped" if all(r["phase"] == "skipped" for r in res["runs"]) else "failed"
            )
            return res
        losses = [
            [
                x["loss"]
                for x in map(json.loads, (self.out_dir / r["log"]).read_text().splitlines())
                if x["type"] == "step"
            ]
            for r in res["runs"]
        ]
        a, b = losses
        diffs = [abs(x - y) for x, y in zip(a, b, strict=True)]
        rel = [d / abs(x) for d, x in zip(diffs, a, strict=True) if x]
        bpb = [r["val_bpb"] for r in res["runs"]]
        res.update(
            identical=a == b and bpb[0] == bpb[1],
            max_abs_loss_diff=max(diffs),
            max_rel_loss_diff=max(rel) if rel else 0.0,
            val_bpb_diff=abs(bpb[0] - bpb[1]),
        )
        res["within_tolerance"] = (
            res["max_rel_loss_diff"] <= REPLAY_TOLERANCE["rel_loss"]
            and res["val_bpb_diff"] <= REPLAY_TOLERANCE["val_bpb"]
        )
        if not res["within_tolerance"]:
            res["phase"] = "failed"
            self.error(
                "replay",
                f"replays differ beyond tolerance (relative loss "
                f"{res['max_rel_loss_diff']:.3g}, val_bpb {res['val_bpb_diff']:.3g})",
            )
        return res

    def ledger(self, data: str, expect_s: float) -> dict[str, Any]:
        """The campaign's first stage through the ledger CLI in a temporary store, then audit."""
        a = self.args
        doc, stage = derive_campaign(Path(a.campaign), data, a.stage_budget, a.shape == "tiny")
        camp = self.work / "campaign.toml"
        camp.write_text(dump_toml(doc))
        from stages.campaign import parse_budget

        res: dict[str, Any] = {
            "phase": "ok",
            "stage": stage,
            "campaign": str(a.campaign),
            "budget_s": parse_budget(doc["stages"][0]["budget"], "budget"),
            "host": a.host,
            "limit": 2,
            "jobs": a.ledger_jobs,
            "executed": None,
            "statuses": {},
            "runs": [],
            "audit_exit": None,
            "audit_ok": None,
            "audit_problems": [],
            "commands": [],
        }
        expect_s = (
            res["budget_s"] * math.ceil(2 / a.ledger_jobs) + expect_s + 15
        )  # + init, freeze, audit
        if not self.fits(expect_s):
            res["phase"] = "skipped"
            self.error(
                "ledger", f"skipped: {expect_s:.0f} s would pass the {a.time_limit:.0f} s limit"
            )
            return res
        store = self.work / "store"
        env = {**os.environ, "LEDGER_KEY_DIR": str(self.work / "keys")}
        gpus = []
        if a.device == "cuda":
            import torch

            n = max(1, torch.cuda.device_count())
            gpus = ["--gpus", ",".join(str(i % n) for i in range(a.ledger_jobs))]
        steps = [
            ["init"],
            ["keygen", "--name", "gpu-check"],
            ["freeze", stage, "--campaign", str(camp)],
            [
                "run",
                stage,
                "--campaign",
                str(camp),
                "--host",
                a.host,
                "--device",
                a.device,
                "--limit",
                "2",
                "--jobs",
                str(a.ledger_jobs),
                "--data",
                data,
                *gpus,
            ],
            ["audit", "--allow-undecided"],  # two runs of the stage: in progress, not decided
        ]
        records: list[str] = []
        for cmd in steps:
            argv = [sys.executable, "-m", "gateledger", "--store", str(store), *cmd, "--json"]
            t = time.perf_counter()
            try:
                proc = subprocess.run(
                    argv,
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=str(self.work),
                    timeout=max(120.0, 2 * expect_s),
                )
                code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
            except subprocess.TimeoutExpired:
                code, stdout, stderr = None, "", "timed out"
            res["commands"].append(
                {"command": f"ledger {cmd[0]}", "exit": code, "seconds": time.perf_counter() - t}
            )
            parsed = _json_or_none(stdout)
            if cmd[0] == "run" and isinstance(parsed, dict):
                res["executed"], res["statuses"] = (
                    parsed.get("executed"),
                    parsed.get("statuses", {}),
                )
                records = parsed.get("records", [])
            if cmd[0] == "audit":
                res["audit_exit"], res["audit_ok"] = code, code == 0
                res["audit_problems"] = _audit_problems(parsed)
                if code != 0:
                    res["phase"] = "failed"
                    self.error(
                        "ledger audit", f"exit {code}: {'; '.join(res['audit_problems'][:3])}"
                    )
            elif code != 0:
                res["phase"] = "failed"
                tail = (stderr or stdout).strip().splitlines()[-1:] or [""]
                self.error(f"ledger {cmd[0]}", f"exit {code}: {tail[0]}")
                break
        res["runs"] = _ledger_runs(store, records)
        if res["phase"] == "ok" and (
            len(res["runs"]) != 2 or any(r["status"] != "ok" for r in res["runs"])
        ):
            res["phase"] = "failed"
            self.error(
                "ledger run", f"expected 2 ok runs, got {[r['status'] for r in res['runs']]}"
            )
        return res


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _audit_problems(parsed: Any) -> list[str]:
    """The problem lines of ``ledger audit --json`` output, whatever its nesting."""
    if not isinstance(parsed, dict):
        return []
    found = parsed.get("findings", parsed.get("problems", []))
    return [f if isinstance(f, str) else json.dumps(f, sort_keys=True) for f in found][:20]


def _ledger_runs(store: Path, record_ids: list[str]) -> list[dict[str, Any]]:
    """Each run record the ledger wrote: condition, seed, status and metrics."""
    from ledger.store import Store

    runs: list[dict[str, Any]] = []
    opened = Store.open(store)
    for rid in record_ids:
        body = opened.get_json(rid)["body"]
        metrics = body.get("metrics") or {}
        runs.append(
            {
                "condition": body["condition"][:12],
                "seed": body["seed"],
                "status": body["status"],
                "val_bpb": metrics.get("val_bpb"),
                "training_seconds": metrics.get("training_seconds"),
                "tokens_per_s": metrics.get("tokens_per_s"),
                "mfu": metrics.get("mfu"),
            }
        )
    return runs


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Run every phase, print the output object; 0 when it is ok."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument(
        "--shape",
        choices=["reference", "tiny"],
        default=None,
        help="reference (campaign base config) or tiny; default: reference on cuda, tiny on cpu",
    )
    ap.add_argument(
        "--budget", type=float, default=None, help="reference run seconds (120; tiny 1)"
    )
    ap.add_argument(
        "--eager-budget", type=float, default=None, help="no_compile run seconds (30; tiny 1)"
    )
    ap.add_argument("--replay-steps", type=int, default=None, help="steps per replay (10; tiny 4)")
    ap.add_argument(
        "--stage-budget",
        default=None,
        help="budget of the ledger stage (default the campaign's; tiny 1s)",
    )
    ap.add_argument(
        "--ledger-jobs", type=int, default=None, help="parallel ledger runs (cuda 2, cpu 1)"
    )
    ap.add_argument("--host", default="a100", help="the campaign host block to run")
    ap.add_argument("--campaign", default=str(PAPER))
    ap.add_argument("--data", default=None, help="training data (default: a generated corpus)")
    ap.add_argument(
        "--time-limit",
        type=float,
        default=480.0,
        help="seconds; phases that would end later are skipped (default 480)",
    )
    ap.add_argument(
        "--out", default=None, help="output folder (default $OUT, else a temporary one)"
    )
    args = ap.parse_args(argv)
    tiny = (args.shape or ("reference" if args.device == "cuda" else "tiny")) == "tiny"
    args.shape = "tiny" if tiny else "reference"
    args.budget = args.budget or (1.0 if tiny else 120.0)
    args.eager_budget = args.eager_budget or (1.0 if tiny else 30.0)
    args.replay_steps = args.replay_steps or (4 if tiny else 10)
    args.stage_budget = args.stage_budget or ("1s" if tiny else None)
    args.ledger_jobs = args.ledger_jobs or (2 if args.device == "cuda" else 1)
    # expected seconds per run beyond its budget (startup, compile, evaluation); autoresearch's
    # depth-8 H100 run spends 26 s so
    overhead = 15.0 if tiny or args.device == "cpu" else 30.0

    import torch

    from runner import device as device_mod

    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            json.dumps(
                {
                    "schema": SCHEMA_VERSION,
                    "ok": False,
                    "errors": ["--device cuda: no CUDA device is available (try --device cpu)"],
                }
            )
        )
        return 2
    out_dir = Path(args.out or os.environ.get("OUT") or tempfile.mkdtemp(prefix="gpu-check-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpu-check-work-") as work_name:
        work = Path(work_name)
        check = Check(args, out_dir, work)
        out = check.out
        dev = torch.device(args.device)
        peak, source = device_mod.peak_flops(dev)
        out.update(
            device=args.device,
            device_name=device_mod.describe(dev),
            torch=torch.__version__,
            cuda=torch.version.cuda,
            peak_flops=peak,
            peak_flops_source=source,
            shape=args.shape,
        )
        base = tomllib.loads(Path(args.campaign).read_text(encoding="utf-8"))["base"]
        cfg = {**base, **TINY} if tiny else dict(base)
        out["config"] = cfg
        if args.data is None:
            n_tokens = 200_000 if tiny else 24_000_000
            data = str(
                synthetic_corpus(
                    work / "data", n_tokens, TOKEN_VOCAB if not tiny else 64, tokens=not tiny
                )
            )
            out["data"] = {"path": data, "kind": "bytes" if tiny else "tokens", "generated": True}
        else:
            data = str(Path(args.data).resolve())
            out["data"] = {
                "path": data,
                "generated": False,
                "kind": "tokens"
                if data.endswith(".bin") or Path(data, "train.bin").exists()
                else "bytes",
            }
        check.save()

        # most telling first: if time runs short, the comparison run is what gets skipped
        phases = [
            (
                "reference",
                lambda: check.runner("reference", cfg, args.budget, data, args.budget + overhead),
            ),
            ("ledger", lambda: check.ledger(data, overhead)),
            ("replay", lambda: check.replay(cfg, data, overhead)),
            (
                "no_compile",
                lambda: check.runner(
                    "no_compile",
                    {**cfg, "compile": False},
                    args.eager_budget,
                    data,
                    args.eager_budget + overhead,
                ),
            ),
        ]
        for name, phase in phases:
            try:
                out[name] = phase()
            except Exception as exc:  # noqa: BLE001 - a broken phase is reported, the rest still runs
                check.error(name, f"{type(exc).__name__}: {exc}")
                out[name] = {"phase": "failed", "error": f"{type(exc).__name__}: {exc}"}
            check.save()
        mfu = out["reference"].get("mfu")
        on_gpu = args.device == "cuda" and not tiny
        out["goal"] = {
            "mfu_target": MFU_TARGET,
            "mfu": mfu,
            "met": (mfu >= MFU_TARGET) if on_gpu and mfu is not None else None,
            "note": "MFU of the compiled reference run against the device's dense bf16 peak "
            "(autoresearch's H100 example: 39.8 %)"
            if on_gpu
            else "no MFU goal off the GPU reference shape",
        }
        problems = schema_errors(out)
        out["errors"] += [f"schema: {p}" for p in problems]
        out["ok"] = not out["errors"]
        check.save()
    print(json.dumps(out, indent=1))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
