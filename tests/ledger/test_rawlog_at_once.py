"""The one-call parse of a raw log's flat lines reads every log as the line-by-line parse does.

`ledger.rawlog` parses the lines after the header in one `orjson` call when they are flat
JSON objects; any other log takes one strict parse per line. These tests hold the fast path
to the per-line one (a second, independent reading of the same bytes) on hand-made hostile
logs and on generated ones, and check the hostile cases against answers known by hand.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import rawlog
from ledger.rawlog import parse_raw_log
from runner.schema import DIVERGE_FACTOR

HEADER = b'{"type": "header", "runner": "builtin", "adam_betas": [0.8, 0.95], "seed": 1}\n'
STEP = b'{"type": "step", "step": %d, "train_seconds": 0.1, "loss": %s}\n'
EVAL = b'{"type": "eval", "val_bpb": 1.25}\n'
SUMMARY = (
    b'{"type": "summary", "status": "ok", "val_bpb": 1.25, "training_seconds": 60, '
    b'"total_seconds": 61.0, "num_steps": 3, "total_tokens": 3000, "num_params": null, '
    b'"peak_mem_mb": null, "tokens_per_s": 50.0, "mfu": null}\n'
)


def per_line(data: bytes, monkeypatch: pytest.MonkeyPatch) -> rawlog.ParsedLog:
    """The same bytes parsed one line at a time (the fast path switched off)."""
    with monkeypatch.context() as m:
        m.setattr(rawlog, "_records_at_once", lambda _data: None)
        return parse_raw_log(data)


def steps(*losses: bytes) -> bytes:
    return b"".join(STEP % (i + 1, loss) for i, loss in enumerate(losses))


def test_a_clean_log_reads_as_known_by_hand() -> None:
    data = HEADER + steps(b"2.5", b"2.4", b"2.3") + EVAL + SUMMARY
    assert rawlog._records_at_once(data) is not None  # the one-call path reads it
    parsed = parse_raw_log(data)
    assert (parsed.status, parsed.steps, parsed.first_loss) == ("ok", 3, 2.5)
    assert parsed.metrics["val_bpb"] == 1.25 and parsed.metrics["training_seconds"] == 60
    assert parsed.problems == [] and parsed.garbage == 0 and parsed.runner == "builtin"


# Lines that only parse as one document once joined, or that orjson reads differently
# from the strict parser: each must be garbage exactly as the per-line parse says.
HOSTILE = {
    "object split over two lines": (b'{"type": "step", "step": 2\n"loss": 2.0}\n', 2),
    "two objects on one line": (b'{"type": "eval"},{"type": "eval"}\n', 1),
    "a string across lines": (b'{"type": "step", "note": "a\nb", "loss": 2.0}\n', 2),
    "a repeated key": (b'{"type": "step", "loss": 2.0, "loss": 9.0}\n', 1),
    "NaN": (b'{"type": "step", "loss": NaN}\n', 1),
    "a number past a double": (b'{"type": "step", "loss": 1e999}\n', 1),
    "a bare number": (b"7\n", 1),
    "a blank line": (b"\n", 0),
    "a line indented": (b' {"type": "eval", "val_bpb": 1.25}\n', 0),
    "invalid UTF-8": (b'{"type": "step", "note": "\xff", "loss": 2.0}\n', 1),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_lines_are_garbage_as_one_line_at_a_time_says(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    middle, garbage = HOSTILE[case]
    data = HEADER + steps(b"2.5") + middle + SUMMARY
    assert rawlog._records_at_once(data) is None  # left to the strict reader
    parsed = parse_raw_log(data)
    assert parsed.garbage == garbage, parsed.problems
    assert parsed == per_line(data, monkeypatch)


def test_merge_and_split_together_do_not_fool_the_line_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One object split over two lines and two objects on one line: as many items as
    lines when joined naively, but three garbage lines to a line-by-line reader."""
    data = HEADER + b'{"type": "step", "step": 1\n"loss": 2.0}\n{"a": 1},{"b": 2}\n' + SUMMARY
    parsed = parse_raw_log(data)
    assert parsed.garbage == 3 and parsed.steps == 0
    assert parsed == per_line(data, monkeypatch)


def test_a_nested_object_is_read_strictly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A nested object with a repeated key inside: orjson keeps the last, strict refuses."""
    data = HEADER + b'{"type": "step", "x": {"k": 1, "k": 2}, "loss": 2.0}\n' + SUMMARY
    parsed = parse_raw_log(data)
    assert parsed.garbage == 1
    assert parsed == per_line(data, monkeypatch)


FRAGMENTS = [
    STEP % (1, b"2.5"),
    STEP % (2, b"2.4"),
    STEP % (3, b"250.0"),
    STEP % (4, b'"x"'),
    STEP % (5, b"null"),
    EVAL,
    SUMMARY,
    HEADER,
    b"\n",
    b"  \n",
    b'{"type": "step", "loss": 2.0}\r\n',
    b' {"type": "step", "loss": 2.0}\n',
    b'{"type": "eval", "val_bpb": 9.0}\n',
    b'{"type": "weird"}\n',
    b'{"type": "step", "s": "a:b", "loss": 2.0}\n',
    b'{"type": "step", "x": {"y": 1}, "loss": 2.0}\n',
    b'{"type": "step", "step": 9\n',
    b'"loss": 3.0}\n',
    b'{"a": 1},{"b": 2}\n',
    b"[1, 2]\n",
    b"]\n",
    b'{"type": "step", "loss": NaN}\n',
    b'{"type": "summary", "status": "diverged", "val_bpb": null}\n',
    b'{"type": "step", "loss": 2.0',
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12))
def test_any_log_reads_the_same_at_once_or_line_by_line(parts: list[bytes]) -> None:
    data = b"".join(parts)
    with pytest.MonkeyPatch.context() as m:
        fast = parse_raw_log(data)
        m.setattr(rawlog, "_records_at_once", lambda _data: None)
        assert fast == parse_raw_log(data)


def reference_divergence(losses: list, lines: list[int]) -> tuple[str | None, float | None]:
    """The step-by-step reading `_divergence` replaced: the first non-number, or the first
    loss above DIVERGE_FACTOR x the first step's."""
    first_loss, limit = None, None
    for n, loss in zip(lines, losses, strict=True):
        if type(loss) is not float and type(loss) is not int:
            return f"step line {n}: loss {loss!r} is not a finite number", first_loss
        if first_loss is None:
            first_loss, limit = float(loss), DIVERGE_FACTOR * float(loss)
        elif limit is not None and loss > limit:
            return (
                f"step line {n}: loss {loss:g} exceeds {DIVERGE_FACTOR:g} x the first "
                f"step's {first_loss:g}"
            ), first_loss
    return None, first_loss


LOSSES = st.one_of(
    st.floats(-50, 50, allow_nan=False),
    st.integers(-50, 50),
    st.sampled_from([None, "x", True, 0, 0.0, -1.0]),
)


@settings(max_examples=800, deadline=None)
@given(st.lists(LOSSES, max_size=8))
def test_divergence_is_read_as_step_by_step(losses: list) -> None:
    lines = [i + 2 for i in range(len(losses))]
    assert rawlog._divergence(losses, lines) == reference_divergence(losses, lines)


def test_divergence_known_by_hand() -> None:
    limit = DIVERGE_FACTOR * 2.0
    assert rawlog._divergence([2.0, 2.1, 1.9], [2, 3, 4]) == (None, 2.0)
    why, first = rawlog._divergence([2.0, limit + 1, "x"], [2, 3, 4])
    assert first == 2.0 and why is not None and why.startswith("step line 3: loss")
    assert (
        rawlog._divergence(["x", 2.0], [2, 3])[0] == "step line 2: loss 'x' is not a finite number"
    )
