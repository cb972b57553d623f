"""The scan's shortcuts decide each object as the full parse does.

`ledger.scan` tells a raw log from a JSON envelope without parsing the log's first line in
Python, and skips the nesting walk of objects with too few brackets to nest past the limit.
Held here to the plain readings they replace (`json.loads` of the whole bytes; `depth_of`).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.jsonsafe import MAX_DEPTH, depth_of
from ledger.scan import _classify, _envelope
from ledger.store import Store


def reference_envelope(data: bytes) -> dict[str, Any] | None:
    """The envelope test as one `json.loads` of the whole bytes."""
    if data[:256].lstrip()[:1] != b"{":
        return None
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) and "kind" in obj and "body" in obj else None


PIECES = [
    b'{"body":{},"kind":"run"}',
    b'{"type": "header", "seed": 1}',
    b'{"kind": "run",\n "body": {}}',
    b"{",
    b"}",
    b"\n",
    b" ",
    b"\t",
    b"NaN",
    b'{"a": NaN}',
    b'"text"',
    b"7",
    b"\xff",
    b"[1, 2]",
    b'{"body": {}, "kind": "run"}\n',
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=6))
def test_envelope_or_not_as_one_parse_of_the_whole_bytes_says(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    assert _envelope(data) == reference_envelope(data)


def test_a_log_whose_first_line_is_an_envelope_is_raw() -> None:
    """Known by hand: an envelope on line 1 and more lines after it is no single document."""
    data = b'{"body":{},"kind":"run"}\n{"type": "step", "loss": 2.0}\n'
    assert _envelope(data) is None
    assert _envelope(b'{"body":{},"kind":"run"}\n') == {"body": {}, "kind": "run"}


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 2):
        value = {"a": value}
    return {"body": value, "kind": "run"}


def test_nesting_past_the_limit_is_still_refused(tmp_path) -> None:
    """One level past MAX_DEPTH is refused as deep, one level under is stored as canonical."""
    store = Store.init(tmp_path / "s", host="h1")
    for depth, verdict in ((MAX_DEPTH + 1, "deep"), (MAX_DEPTH, "object")):
        obj = nested(depth)
        assert depth_of(obj) == depth
        oid = store.put_bytes(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode())
        assert _classify(oid, str(store.path_of(oid)))[0] == verdict
