"""`ledger effects CSV` on the textbook filtration example, and its input errors."""

from __future__ import annotations

import json

import pytest

from ledger.errors import LedgerError
from stages.designs import full_factorial
from stages.effects_csv import analyse_csv

FILTRATION = [45, 71, 48, 65, 68, 60, 80, 65, 43, 100, 45, 104, 75, 86, 70, 96]
KEYS = {
    "effects",
    "method",
    "df_resid",
    "t_df",
    "pse",
    "me",
    "sme",
    "block",
    "dropped",
    "dropped_reasons",
    "notes",
}


def write(tmp_path, header, rows, name="d.csv"):
    p = tmp_path / name
    p.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return p


def filtration_csv(tmp_path):
    rows = [[r["A"], r["B"], r["C"], r["D"], y]
            for r, y in zip(full_factorial(4), FILTRATION, strict=True)]  # fmt: skip
    return write(tmp_path, ["A", "B", "C", "D", "rate"], rows)


def test_saturated_lenth(tmp_path):
    out = analyse_csv(filtration_csv(tmp_path), "rate", terms="all").to_dict()
    assert set(out) == KEYS and out["method"] == "lenth" and out["df_resid"] == 0
    assert out["pse"] == pytest.approx(2.625)
    eff = {e["term"]: e["effect"] for e in out["effects"]}
    assert eff["A"] == pytest.approx(21.625) and eff["AC"] == pytest.approx(-18.125)
    assert set(out["effects"][0]) == {
        "term",
        "effect",
        "coef",
        "se",
        "t",
        "p",
        "q",
        "ci_low",
        "ci_high",
        "aliases",
    }
    json.dumps(out, allow_nan=False)


def test_main_and_explicit_terms(tmp_path):
    path = filtration_csv(tmp_path)
    out = analyse_csv(path, "rate").to_dict()
    assert out["method"] == "ols" and out["df_resid"] == 11 and out["pse"] is None
    out = analyse_csv(path, "rate", terms="A, C, AC").to_dict()
    assert [e["term"] for e in out["effects"]] == ["A", "C", "AC"]
    assert out["effects"][2]["effect"] == pytest.approx(-18.125)


def test_non_letter_columns_detected_by_levels(tmp_path):
    rows = [[r["A"], r["B"], "h1" if i < 2 else "h2", 10 + 2 * r["A"] - r["B"]]
            for i, r in enumerate(full_factorial(2) * 2)]  # fmt: skip
    p = write(tmp_path, ["lr", "depth", "host", "y"], rows)
    out = analyse_csv(p, "y", terms="all").to_dict()
    assert [e["term"] for e in out["effects"]] == ["lr", "depth", "lr:depth"]
    assert out["effects"][0]["effect"] == pytest.approx(4.0)


def test_block(tmp_path):
    rows = []
    for host, off in (("h1", 0.0), ("h2", 0.5)):
        rows += [[r["A"], r["B"], host, 10 + 2 * r["A"] - r["B"] + off] for r in full_factorial(2)]
    out = analyse_csv(write(tmp_path, ["A", "B", "host", "y"], rows), "y", block="host").to_dict()
    assert out["effects"][1]["effect"] == pytest.approx(-2.0) and out["df_resid"] == 4


def test_errors(tmp_path):
    with pytest.raises(LedgerError, match="no such file"):
        analyse_csv(tmp_path / "nope.csv", "y")
    p = write(tmp_path, ["A", "B", "y"], [[1, -1, 2.0], [-1, 1, 3.0]])
    with pytest.raises(LedgerError, match="no column 'rate'"):
        analyse_csv(p, "rate")
    p = write(tmp_path, ["A", "B", "y"], [[1, -1, 2.0], [-1, 1, "abc"]], "bad_y.csv")
    with pytest.raises(LedgerError, match=r"bad_y.csv: column 'y', line 3: 'abc'"):
        analyse_csv(p, "y")
    p = write(tmp_path, ["A", "B", "y"], [[1, 0, 2.0], [-1, 1, 3.0]], "bad_level.csv")
    with pytest.raises(LedgerError, match=r"bad_level.csv: column 'B', line 2: '0'"):
        analyse_csv(p, "y")
    p = write(tmp_path, ["lr", "y"], [[0.1, 2.0]], "nofactor.csv")
    with pytest.raises(LedgerError, match="no factor columns"):
        analyse_csv(p, "y")


def test_aliases_dropped_and_block_in_the_json(tmp_path):
    """A 2^(4-1) with D = ABC and two hosts: chains AB = CD etc., CD listed as dropped."""
    from stages.designs import fractional

    rows = []
    for host, off in (("h1", 0.0), ("h2", 0.3)):
        rows += [
            [r["A"], r["B"], r["C"], r["D"], host, 10 + 2 * r["A"] + r["A"] * r["B"] + off]
            for r in fractional(4, 1).runs
        ]
    out = analyse_csv(
        write(tmp_path, ["A", "B", "C", "D", "host", "y"], rows), "y", terms="all", block="host"
    ).to_dict()
    chains = {e["term"]: e["aliases"] for e in out["effects"]}
    assert chains == {
        "A": ["BCD"],
        "B": ["ACD"],
        "C": ["ABD"],
        "D": ["ABC"],
        "AB": ["CD"],
        "AC": ["BD"],
        "AD": ["BC"],
    }
    assert out["block"] == "host" and out["dropped"][:3] == ["BC", "BD", "CD"]
    assert out["dropped_reasons"]["CD"] == "aliased with AB"
    json.dumps(out, allow_nan=False)
