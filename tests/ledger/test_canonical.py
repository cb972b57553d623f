"""RFC 8785 reference vectors, refusals, and object-id checks."""

from __future__ import annotations

import contextlib
import json
import math
import re

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import (
    _risky,
    canonical_bytes,
    check_object_id,
    is_canonical,
    is_object_id,
    sha256_hex,
)
from ledger.errors import CanonicalError, LedgerError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e30, b"1e+30"),
        (4.50, b"4.5"),
        (0.002, b"0.002"),
        (1e-7, b"1e-7"),
        (-0.0, b"0"),
        (333333333.33333329, b"333333333.3333333"),
        (1e21, b"1e+21"),
        (1e20, b"100000000000000000000"),
        (9007199254740991, b"9007199254740991"),
        (5e-324, b"5e-324"),
        ("\u20ac", '"\u20ac"'.encode()),
        ("\u000f", b'"\\u000f"'),
        ('\n"\\/', b'"\\n\\"\\\\/"'),
        (True, b"true"),
        (None, b"null"),
    ],
)
def test_rfc8785_vectors(value, expected):
    assert canonical_bytes(value) == expected


def test_key_order_by_utf16_code_units():
    # RFC 8785 section 3.2.3 example: sorting by UTF-16 code units, not code points
    obj = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    order = list(json.loads(canonical_bytes(obj)))
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_rfc_example_object():
    obj = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,'
        '1e-27],"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical_bytes(obj) == expected


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_refused_with_path(bad):
    with pytest.raises(CanonicalError, match=r"\$\.a\.b\[1\]"):
        canonical_bytes({"a": {"b": [1, bad]}})


@pytest.mark.parametrize("bad", [b"x", {1, 2}, object(), 2**60])
def test_non_json_types_refused(bad):
    with pytest.raises(CanonicalError, match=r"\$\.x"):
        canonical_bytes({"x": bad})


def test_non_string_key_refused():
    with pytest.raises(CanonicalError):
        canonical_bytes({1: 2})


def test_object_ids():
    oid = sha256_hex(b"abc")
    assert oid == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert is_object_id(oid) and check_object_id(oid) == oid
    for bad in (oid.upper(), oid[:-1], oid + "0", "g" * 64, None, 5):
        assert not is_object_id(bad)
    with pytest.raises(LedgerError, match="not an object id"):
        check_object_id("xyz")


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from([-0.0, 1.0, 1e16, 1e21, 1e-7, 2**53, "é", "\u2028", "\b", "\ue000", "😀"]),
)
DOCS = st.recursive(
    VALUES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(DOCS)
def test_fast_canonical_check_agrees_with_rfc8785(doc):
    """`is_canonical` takes a fast path; whatever the bytes, it must answer as RFC 8785 does."""
    candidates = [
        json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
        json.dumps(doc, separators=(",", ":")).encode(),
    ]
    with contextlib.suppress(Exception):  # a value RFC 8785 cannot encode (ints past 2^53)
        candidates.append(rfc8785.dumps(doc))
    for data in candidates:
        parsed = json.loads(data)
        try:  # RFC 8785 reads every number as a double: the oracle does too
            truth = rfc8785.dumps(json.loads(data, parse_int=float)) == data
        except Exception:  # noqa: BLE001
            truth = False
        assert is_canonical(parsed, data) == truth, data


def test_large_integral_floats_are_canonical_as_rfc8785_writes_them():
    """RFC 8785 writes 1e16 as 10000000000000000, which parsers read as an integer."""
    data = canonical_bytes({"mfu": 1e16, "n": 3})
    assert data == b'{"mfu":10000000000000000,"n":3}'
    assert is_canonical(json.loads(data), data)
    assert not is_canonical(json.loads(b'{"n":9007199254740993}'), b'{"n":9007199254740993}')


# The single pattern `_risky` replaced (kept here as the reference reading): a number token
# after `:`, `,`, `[` or at the start with an exponent, a negative zero, an integral float
# or 16 digits; any non-ASCII byte; a \u escape.
_REFERENCE_NUM = rb"(?:^|[:,\[])"
_REFERENCE = re.compile(
    _REFERENCE_NUM + rb"-?[0-9]+(?:\.[0-9]+)?[eE]"
    rb"|" + _REFERENCE_NUM + rb"-0(?:\.0*)?(?![.0-9])"
    rb"|" + _REFERENCE_NUM + rb"-?[0-9]+\.0+(?![0-9])"
    rb"|" + _REFERENCE_NUM + rb"-?[0-9]{16}"
    rb"|[\x80-\xff]|\\u"
)
_TOKENS = [b":", b",", b"[", b"-", b"0", b"1", b"9", b".", b"e", b"E", b"0" * 16, b'"', b"a"]
_TOKENS += [b"\xc3\xa9", b"\\u", b"}", b"{"]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=16))
def test_risky_bytes_are_found_as_the_reference_pattern_finds_them(tokens: list[bytes]) -> None:
    data = b"".join(tokens)
    assert _risky(data) == (_REFERENCE.search(data) is not None)


@pytest.mark.parametrize(
    ("data", "risky"),
    [
        (b'{"a":1e-05}', True),
        (b'{"a":-0}', True),
        (b'{"a":[2.0]}', True),
        (b'{"a":12345678901234567}', True),
        (b'{"a":"\xc3\xa9"}', True),
        (b"1e5", True),
        (b'{"a":"1e5","b":-0.5,"c":[1,2.5]}', False),
        (b'{"id":"0123456789012345678"}', False),
    ],
)
def test_risky_bytes_known_by_hand(data: bytes, risky: bool) -> None:
    assert _risky(data) is risky
