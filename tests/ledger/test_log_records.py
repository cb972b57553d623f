"""A parsed log hands its header, eval and summary as models (`ledger.log_records`), with the
contract's keys typed and a runner's own keys kept as written; a record that does not fit
is a defect of the log, named key by key. Every expected value below is read off the bytes
written in the test, by hand."""

from __future__ import annotations

from ledger.log_records import LogHeader, LogSummary
from ledger.rawlog import METRICS, failure_reason, parse_raw_log

HEADER = (
    b'{"type":"header","manifest":"' + b"m" * 64 + b'","seed":7,"effective_seed":7,'
    b'"seed_inputs":{"manifest":"' + b"m" * 64 + b'","condition":"c","seed":0},'
    b'"host":"h1","budget_s":300,"runner":"builtin","threads":2,'
    b'"depth":4,"adam_betas":[0.8,0.95],"model_dim":128}\n'
)
STEP = b'{"type":"step","step":%d,"train_seconds":%s,"loss":2.5}\n'
EVAL = b'{"type":"eval","val_bpb":1.25,"eval_tokens":10,"eval_bytes":12,"eval_seconds":0.5}\n'
SUMMARY = (
    b'{"type":"summary","status":"ok","val_bpb":1.25,"training_seconds":300,'
    b'"total_seconds":301.5,"num_steps":2,"total_tokens":4096,"num_params":null,'
    b'"peak_mem_mb":null,"tokens_per_s":13.6,"mfu":null,"log_seconds":0.1}\n'
)


def test_the_header_types_the_contract_and_keeps_the_config_as_written():
    parsed = parse_raw_log(HEADER + STEP % (1, b"150") + STEP % (2, b"300") + EVAL + SUMMARY)
    header = parsed.header
    assert isinstance(header, LogHeader) and parsed.defects == []
    assert (header.manifest, header.seed, header.host, header.budget_s) == ("m" * 64, 7, "h1", 300)
    assert header.seed_inputs is not None and header.seed_inputs.condition == "c"
    assert (header.runner, header.threads, header.torch) == ("builtin", 2, None)
    # the runner's own keys: its config and its extras, untouched
    assert header.config == {"depth": 4, "adam_betas": [0.8, 0.95], "model_dim": 128}
    assert header.written["depth"] == 4 and header.written["seed"] == 7
    assert header.says("effective_seed") and not header.says("data_sha256")
    assert (parsed.manifest, parsed.runner) == ("m" * 64, "builtin")


def test_the_eval_and_summary_are_models_and_fill_the_metrics():
    parsed = parse_raw_log(HEADER + STEP % (1, b"150") + EVAL + SUMMARY)
    assert parsed.eval is not None and parsed.eval.val_bpb == 1.25
    assert parsed.eval.written["eval_seconds"] == 0.5  # an extra key, kept
    summary = parsed.summary
    assert isinstance(summary, LogSummary) and summary.status == "ok"
    assert summary.written["log_seconds"] == 0.1
    assert tuple(parsed.metrics) == METRICS
    assert parsed.metrics["total_seconds"] == 301.5 and parsed.metrics["num_steps"] == 2
    assert parsed.metrics["num_params"] is None and parsed.status == "ok"


def test_a_summary_of_the_wrong_shape_is_a_defect_and_the_run_a_crash():
    bad = SUMMARY.replace(b'"status":"ok"', b'"status":"lost"').replace(
        b'"num_steps":2', b'"num_steps":"2"'
    )
    parsed = parse_raw_log(HEADER + STEP % (1, b"150") + STEP % (2, b"290.5") + bad)
    assert parsed.summary is None and parsed.status == "crashed"
    (defect,) = parsed.defects
    assert defect.startswith("line 4: summary: status: must be 'ok', 'diverged', 'crashed' or")
    assert "num_steps: must be an integer, not '2'" in defect
    # the seconds and steps of a crash: the last step line's (it did have a summary line,
    # so it is not said to have died without one)
    assert (parsed.metrics["training_seconds"], parsed.metrics["num_steps"]) == (290.5, 2)
    assert not any("no summary record" in p for p in parsed.problems)


def test_a_log_without_a_summary_died_at_its_last_step():
    parsed = parse_raw_log(HEADER + STEP % (1, b"150") + STEP % (3, b"200"))
    assert parsed.status == "crashed" and parsed.defects == []
    assert (parsed.metrics["training_seconds"], parsed.metrics["num_steps"]) == (200, 3)
    assert "no summary record (the process died)" in parsed.problems


def test_the_runners_error_is_read_from_the_summary():
    crashed = SUMMARY.replace(b'"status":"ok"', b'"status":"crashed"').replace(
        b'"log_seconds":0.1', b'"error":"  CUDA out of memory  "'
    )
    parsed = parse_raw_log(HEADER + crashed)
    assert failure_reason(parsed, b"stderr line\n") == "CUDA out of memory"
    assert failure_reason(parse_raw_log(HEADER), b"a\nlast words\n\n") == "last words"


def test_the_autoresearch_block_fills_the_same_summary():
    block = (
        b"step 1 | loss: 3.2\n---\nval_bpb: 0.9979\ntraining_seconds: 300.1\n"
        b"total_seconds: 325.9\npeak_vram_mb: 45060.2\nmfu_percent: 39.80\n"
        b"total_tokens_M: 499.6\nnum_steps: 953\nnum_params_M: 50.3\ndepth: 8\n"
    )
    parsed = parse_raw_log(block, "autoresearch")
    summary = parsed.summary
    assert isinstance(summary, LogSummary) and summary.status == "ok"
    assert (summary.num_steps, summary.total_tokens, summary.num_params) == (
        953,
        499_600_000,
        50_300_000,
    )
    assert summary.peak_mem_mb == 45060.2 and abs(summary.mfu - 0.398) < 1e-12
    assert abs(summary.tokens_per_s - 499_600_000 / 300.1) < 1e-6
    assert parsed.metrics == summary.metrics and parsed.steps == 953
    no_val = block.replace(b"val_bpb: 0.9979\n", b"val_bpb: nan\n")
    assert parse_raw_log(no_val, "autoresearch").summary.status == "diverged"
