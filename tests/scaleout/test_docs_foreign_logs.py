"""docs/runner.md's foreign-log examples are what the parsers accept: the minimal jsonl log is
an ok log, the summary block an ok autoresearch log, the adapter's header is read as a header,
and the example script the page shows is the one shipped in examples/."""

from __future__ import annotations

import re
from pathlib import Path

from ledger.ingest import log_defects
from ledger.rawlog import parse_raw_log

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "docs" / "runner.md").read_text()
SECTION = TEXT[TEXT.index("## Foreign logs") : TEXT.index("## On a GPU")]
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", SECTION, re.S)


def test_the_minimal_jsonl_log_is_an_ok_log():
    log = next(body for kind, body in BLOCKS if body.startswith('{"type": "header"'))
    parsed = parse_raw_log(log.encode())
    assert log_defects(parsed) == [] and parsed.status == "ok"
    assert parsed.metrics["val_bpb"] == 1.0412 and parsed.steps == 2
    assert parsed.header.budget_s == 10.0


def test_the_summary_block_is_an_ok_autoresearch_log_and_the_adapter_header_a_header():
    block = next(body for kind, body in BLOCKS if body.startswith("---"))
    parsed = parse_raw_log(block.encode(), "autoresearch")
    assert parsed.status == "ok" and parsed.header is None
    assert parsed.metrics["num_steps"] == 953 and abs(parsed.metrics["mfu"] - 0.398) < 1e-12
    header = next(body for kind, body in BLOCKS if '"autoresearch-adapter"' in body)
    with_header = parse_raw_log((header + "training...\n" + block).encode(), "autoresearch")
    assert with_header.header.overrides["TIME_BUDGET"] == 300
    assert with_header.runner == "autoresearch-adapter" and with_header.status == "ok"


def test_the_example_script_shown_is_the_shipped_one():
    [script] = [body for kind, body in BLOCKS if kind == "python"]
    assert script == (ROOT / "examples" / "own-script" / "train.py").read_text()
