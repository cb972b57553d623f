"""Designs against textbook answers (Montgomery, Design and Analysis of Experiments, ch. 6, 8)."""

from __future__ import annotations

import pytest

from ledger.errors import LedgerError
from stages.designs import (
    DEFAULT_GENERATORS,
    design_for_runs,
    fractional,
    full_factorial,
    parse_design_spec,
    point_name,
    roman,
)


def test_full_factorial_standard_order():
    names = [point_name(r) for r in full_factorial(3)]
    assert names == ["(1)", "a", "b", "ab", "c", "ac", "bc", "abc"]
    assert full_factorial(2) == [
        {"A": -1, "B": -1},
        {"A": 1, "B": -1},
        {"A": -1, "B": 1},
        {"A": 1, "B": 1},
    ]


def test_point_name():
    assert point_name({"A": -1, "B": -1}) == "(1)"
    assert point_name({"A": 1, "B": -1, "C": 1, "D": -1, "E": 1}) == "ace"


def test_half_fraction_example_8_1():
    d = fractional(4, 1)
    assert d.generators == ["D=ABC"]
    assert d.defining_relation == ["I", "ABCD"]
    assert d.resolution == 4 and roman(d.resolution) == "IV"
    assert [point_name(r) for r in d.runs] == ["(1)", "ad", "bd", "ab", "cd", "ac", "bc", "abcd"]
    pairs = {"A": "BCD", "B": "ACD", "C": "ABD", "D": "ABC", "AB": "CD", "AC": "BD", "AD": "BC"}
    for effect, alias in pairs.items():
        assert d.aliases[effect] == [alias]


def test_resolution_v_half_fraction():
    d = fractional(5, 1)
    assert d.generators == ["E=ABCD"]
    assert d.defining_relation == ["I", "ABCDE"]
    assert d.resolution == 5 and d.label == "2^(5-1) V"
    assert d.n_runs == 16 and len(d.runs) == 16


def test_saturated_7_4_resolution_iii():
    d = fractional(7, 4)
    assert d.generators == ["D=AB", "E=AC", "F=BC", "G=ABC"]
    assert len(d.defining_relation) == 16 and d.defining_relation[0] == "I"
    assert len(set(d.defining_relation)) == 16
    assert d.resolution == 3
    # Montgomery Table 8.19: I = ABD = ACE = BCF = ABCG = ... ; check a few words
    words = "ABD ACE BCF ABCG BCDE ACDF CDG ABEF BEG AFG DEF ADEG CEFG BDFG ABCDEFG"
    for w in words.split():
        assert w in d.defining_relation
    # every run satisfies every word of the defining relation (product of its columns = +1)
    for run in d.runs:
        for w in d.defining_relation[1:]:
            prod = 1
            for c in w:
                prod *= run[c]
            assert prod == 1


def test_6_2_resolution_iv():
    d = fractional(6, 2)
    assert d.generators == ["E=ABC", "F=BCD"]
    assert d.defining_relation == ["I", "ABCE", "ADEF", "BCDF"]
    assert d.resolution == 4


def test_3_1_resolution_iii():
    d = fractional(3, 1)
    assert d.defining_relation == ["I", "ABC"] and d.resolution == 3
    assert d.aliases["A"] == ["BC"]


def test_all_defaults_are_valid_and_at_least_resolution_iii():
    for (k, p), gens in DEFAULT_GENERATORS.items():
        d = fractional(k, p)
        assert d.generators == sorted(gens)
        assert len(d.defining_relation) == 2**p
        assert d.resolution is not None and d.resolution >= 3
        assert len({tuple(r.values()) for r in d.runs}) == 2 ** (k - p)
    assert fractional(8, 4).resolution == 4
    assert fractional(8, 2).resolution == 5


def test_negative_generator():
    d = fractional(5, 1, ["E=-ABCD"])
    assert d.defining_relation == ["I", "-ABCDE"]
    assert d.aliases["A"] == ["-BCDE"]
    assert all(r["E"] == -r["A"] * r["B"] * r["C"] * r["D"] for r in d.runs)


def test_full_factorial_design():
    d = fractional(3, 0)
    assert d.defining_relation == ["I"] and d.resolution is None
    assert d.aliases["A"] == [] and d.runs == full_factorial(3)
    assert roman(None) == "full"


@pytest.mark.parametrize(
    "gens, needle",
    [
        (["E=ABCX"], "X"),
        (["E=ABBC"], "duplicate"),
        (["D=ABC"], "base factor"),
        (["E=A"], "at least two"),
        (["E ABCD"], "form"),
        (["E=ABCD", "E=ABC"], "got 2"),
    ],
)
def test_bad_generators(gens, needle):
    with pytest.raises(LedgerError, match=needle):
        fractional(5, 1, gens)


def test_generated_twice():
    with pytest.raises(LedgerError, match="generated twice"):
        fractional(5, 2, ["E=ABC", "E=AB"])


def test_no_default_for_impossible():
    with pytest.raises(LedgerError, match="no default"):
        fractional(5, 3)


def test_parse_design_spec():
    assert parse_design_spec("2^(5-1)") == (5, 1)
    assert parse_design_spec("2^( 7 - 4 )") == (7, 4)
    assert parse_design_spec("2^5") == (5, 0)
    for bad in ("3^2", "2^(5-5)", "2^9", "abc"):
        with pytest.raises(LedgerError):
            parse_design_spec(bad)


def test_design_for_runs():
    assert design_for_runs(5, 16).generators == ["E=ABCD"]
    assert design_for_runs(5, 32).p == 0
    assert design_for_runs(7, 8).resolution == 3
    for bad in (12, 64, 1):
        with pytest.raises(LedgerError, match="runs"):
            design_for_runs(5, bad)
