"""Designs against textbook answers (Montgomery, Design and Analysis of Experiments, ch. 6, 8)."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from ledger.errors import LedgerError
from stages.designs import (
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


# Montgomery, Design and Analysis of Experiments, Table 8.14, written out here (not read from
# the module): (k, p) -> generators, resolution.
MONTGOMERY_8_14 = {
    (3, 1): (["C=AB"], 3), (4, 1): (["D=ABC"], 4), (5, 1): (["E=ABCD"], 5),
    (5, 2): (["D=AB", "E=AC"], 3), (6, 1): (["F=ABCDE"], 6), (6, 2): (["E=ABC", "F=BCD"], 4),
    (6, 3): (["D=AB", "E=AC", "F=BC"], 3), (7, 1): (["G=ABCDEF"], 7),
    (7, 2): (["F=ABCD", "G=ABDE"], 4), (7, 3): (["E=ABC", "F=BCD", "G=ACD"], 4),
    (7, 4): (["D=AB", "E=AC", "F=BC", "G=ABC"], 3), (8, 1): (["H=ABCDEFG"], 8),
    (8, 2): (["G=ABCD", "H=ABEF"], 5), (8, 3): (["F=ABC", "G=ABD", "H=BCDE"], 4),
    (8, 4): (["E=BCD", "F=ACD", "G=ABC", "H=ABD"], 4),
}  # fmt: skip


def _word_length_pattern(runs: np.ndarray) -> tuple[int, ...]:
    """(A_1, ..., A_k): how many products of columns are constant on the runs, by length.

    Independent of the module: every subset of columns of the run matrix, as a 0/1 mask; a
    product of ±1 columns is constant iff the parity of its -1 entries is the same in every row.
    """
    n, k = runs.shape
    masks = (np.arange(1, 2**k)[:, None] >> np.arange(k)) & 1
    parity = ((runs < 0).astype(int) @ masks.T) % 2
    constant = np.all(parity == parity[0], axis=0)
    lengths = masks.sum(axis=1)[constant]
    return tuple(int(np.sum(lengths == length)) for length in range(1, k + 1))


def _brute_force_runs(k: int, p: int, words: tuple[tuple[int, ...], ...]) -> np.ndarray:
    base = np.array(
        [[1 if (i >> j) & 1 else -1 for j in range(k - p)] for i in range(2 ** (k - p))]
    )
    extra = [np.prod(base[:, list(w)], axis=1) for w in words]
    return np.column_stack([base, *extra])


@pytest.mark.parametrize("kp", sorted(MONTGOMERY_8_14))
def test_defaults_are_montgomerys_table_and_minimum_aberration(kp):
    k, p = kp
    generators, resolution = MONTGOMERY_8_14[kp]
    d = fractional(k, p)
    assert d.generators == generators and d.resolution == resolution
    runs = np.array([[r[f] for f in d.factors] for r in d.runs])
    assert len({tuple(r) for r in runs}) == 2 ** (k - p)
    wlp = _word_length_pattern(runs)
    assert min(i + 1 for i, a in enumerate(wlp) if a) == resolution
    assert sum(wlp) == 2**p - 1
    # minimum aberration: no choice of generators (interactions of the base columns) has a
    # lexicographically smaller word length pattern
    interactions = [w for r in range(2, k - p + 1) for w in combinations(range(k - p), r)]
    best = min(
        _word_length_pattern(_brute_force_runs(k, p, ws)) for ws in combinations(interactions, p)
    )
    assert wlp == best


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


def test_point_structure_of_a_design_a_subset_and_a_reduced_factorial():
    from stages.designs import point_structure

    half = point_structure(fractional(4, 1).runs, list("ABCD"))
    assert (half.regular, half.defining_relation, half.resolution) == (True, ["I", "ABCD"], 4)
    assert half.label == "2^(4-1) IV" and half.constant == {}
    # the four points with A = -1 of the full 2^3: a full factorial in B, C, A constant
    reduced = point_structure([r for r in full_factorial(3) if r["A"] == -1], list("ABC"))
    assert (reduced.varying, reduced.constant, reduced.regular) == (["B", "C"], {"A": -1}, True)
    assert reduced.resolution is None and reduced.label == "2^2"
    # three points are no fraction; on (1), ab, c the product AB is +1 throughout
    three = point_structure(
        [{"A": -1, "B": -1, "C": -1}, {"A": 1, "B": 1, "C": -1}, {"A": -1, "B": -1, "C": 1}],
        list("ABC"),
    )
    assert not three.regular and three.defining_relation == ["I", "AB"]
