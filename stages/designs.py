"""Two-level factorial designs: full and fractional 2^(k-p), generators, aliasing.

Why: a screen runs a fraction of the 2^k recipe space, so every estimate is really the sum of
an alias chain. Computing the defining relation, resolution and alias chains here, from the
generators alone, lets a reviewer see exactly what each screened effect confounds.

Words are strings of factor letters in alphabetical order ("ABD"); "I" is the identity; a
leading "-" marks a negative sign ("-ABCD"). Multiplying words is the symmetric difference of
their letters (A*A = I).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from ledger.errors import AnalysisError, CampaignError

LETTERS = "ABCDEFGH"

# Minimum-aberration generators (Montgomery, Design and Analysis of Experiments, Table 8.14;
# Box, Hunter & Hunter). Key: (k, p).
DEFAULT_GENERATORS: dict[tuple[int, int], list[str]] = {
    (3, 1): ["C=AB"],
    (4, 1): ["D=ABC"],
    (5, 1): ["E=ABCD"],
    (5, 2): ["D=AB", "E=AC"],
    (6, 1): ["F=ABCDE"],
    (6, 2): ["E=ABC", "F=BCD"],
    (6, 3): ["D=AB", "E=AC", "F=BC"],
    (7, 1): ["G=ABCDEF"],
    (7, 2): ["F=ABCD", "G=ABDE"],
    (7, 3): ["E=ABC", "F=BCD", "G=ACD"],
    (7, 4): ["D=AB", "E=AC", "F=BC", "G=ABC"],
    (8, 1): ["H=ABCDEFG"],
    (8, 2): ["G=ABCD", "H=ABEF"],
    (8, 3): ["F=ABC", "G=ABD", "H=BCDE"],
    (8, 4): ["E=BCD", "F=ACD", "G=ABC", "H=ABD"],
}

_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII", 9: "IX"}


def roman(resolution: int | None) -> str:
    """Roman numeral of a resolution, as designs are quoted in the literature ("full": none)."""
    if resolution is None:
        return "full"
    return _ROMAN.get(resolution, str(resolution))


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(LETTERS):
        raise CampaignError(
            f"design: number of factors k={k!r} must be an integer 1..{len(LETTERS)}"
        )


def full_factorial(k: int) -> list[dict[str, int]]:
    """All 2^k runs in standard (Yates) order: A alternates fastest, levels -1/+1."""
    _check_k(k)
    letters = LETTERS[:k]
    return [{f: (1 if (i >> j) & 1 else -1) for j, f in enumerate(letters)} for i in range(2**k)]


def point_name(coded: dict[str, int]) -> str:
    """Standard notation of a run: lower-case letters of factors at +1, "(1)" if all are low."""
    name = "".join(f.lower() for f in sorted(coded) if coded[f] > 0)
    return name or "(1)"


def multiply(a: str, b: str) -> str:
    """Product of two signed words (letters cancel in pairs; signs multiply)."""
    sign = (-1 if a.startswith("-") else 1) * (-1 if b.startswith("-") else 1)
    la, lb = set(a.lstrip("-")) - {"I"}, set(b.lstrip("-")) - {"I"}
    word = "".join(sorted(la ^ lb)) or "I"
    return ("-" if sign < 0 else "") + word


def _word_key(word: str) -> tuple[int, str]:
    w = word.lstrip("-")
    return (0, "") if w == "I" else (len(w), w)


def parse_generator(text: str, k: int, p: int) -> tuple[str, str, int]:
    """Parse "E=ABCD" or "E=-ABCD" into (generated letter, base word, sign), validated."""
    m = re.fullmatch(r"\s*([A-Za-z])\s*=\s*([+-]?)\s*([A-Za-z]+)\s*", str(text))
    if not m:
        raise CampaignError(f"generator {text!r}: expected the form 'E=ABCD' or 'E=-ABCD'")
    lhs, sign, rhs = m.group(1).upper(), m.group(2), m.group(3).upper()
    base = LETTERS[: k - p]
    generated = LETTERS[k - p : k]
    if lhs not in LETTERS[:k]:
        raise CampaignError(f"generator {text!r}: factor {lhs} is outside A..{LETTERS[k - 1]}")
    if lhs in base:
        raise CampaignError(
            f"generator {text!r}: {lhs} is a base factor; generated factors are {generated}"
        )
    if len(set(rhs)) != len(rhs):
        raise CampaignError(f"generator {text!r}: duplicate letter in {rhs}")
    bad = [c for c in rhs if c not in base]
    if bad:
        raise CampaignError(f"generator {text!r}: {''.join(bad)} not among the base factors {base}")
    if len(rhs) < 2:
        raise CampaignError(f"generator {text!r}: needs at least two base factors")
    return lhs, "".join(sorted(rhs)), -1 if sign == "-" else 1


@dataclass(frozen=True)
class Design:
    """A 2^(k-p) design with its aliasing structure (p = 0: the full factorial)."""

    k: int
    p: int
    generators: list[str]
    defining_relation: list[str]  # every word of the defining contrast subgroup, "I" first
    resolution: int | None  # None for a full factorial (nothing aliased)
    aliases: dict[str, list[str]]  # main effects and 2FIs -> the words aliased with them
    runs: list[dict[str, int]] = field(repr=False)

    @property
    def factors(self) -> str:
        return LETTERS[: self.k]

    @property
    def n_runs(self) -> int:
        return 2 ** (self.k - self.p)

    @property
    def label(self) -> str:
        base = f"2^{self.k}" if self.p == 0 else f"2^({self.k}-{self.p})"
        return base if self.resolution is None else f"{base} {roman(self.resolution)}"

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "p": self.p,
            "label": self.label,
            "generators": list(self.generators),
            "defining_relation": list(self.defining_relation),
            "resolution": self.resolution,
            "aliases": {t: list(v) for t, v in self.aliases.items()},
            "runs": [dict(r) for r in self.runs],
            "points": [point_name(r) for r in self.runs],
        }


def fractional(k: int, p: int, generators: list[str] | None = None) -> Design:
    """Build a 2^(k-p) design; generators default to the minimum-aberration table."""
    _check_k(k)
    if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < k:
        raise CampaignError(f"design: p={p!r} must be an integer 0..{k - 1}")
    if generators is None:
        if p == 0:
            generators = []
        elif (k, p) in DEFAULT_GENERATORS:
            generators = DEFAULT_GENERATORS[(k, p)]
        else:
            raise CampaignError(
                f"design 2^({k}-{p}): no default generators (2^{k - p} runs cannot hold {k} "
                "factors at resolution III or more); give 'generators'"
            )
    if len(generators) != p:
        raise CampaignError(
            f"design 2^({k}-{p}): needs exactly {p} generators, got {len(generators)}"
        )
    parsed = [parse_generator(g, k, p) for g in generators]
    seen = [g[0] for g in parsed]
    dup = sorted({x for x in seen if seen.count(x) > 1})
    if dup:
        raise CampaignError(f"design 2^({k}-{p}): factor {dup[0]} is generated twice")
    parsed.sort()
    # Defining words: I = (sign) RHS*LHS for each generator, closed under multiplication.
    gen_words = [("-" if s < 0 else "") + multiply(rhs, lhs) for lhs, rhs, s in parsed]
    group = {"I"}
    for r in range(1, p + 1):
        for combo in combinations(gen_words, r):
            w = "I"
            for g in combo:
                w = multiply(w, g)
            group.add(w)
    relation = sorted(group, key=_word_key)
    nontrivial = [w for w in relation if w.lstrip("-") != "I"]
    resolution = min((len(w.lstrip("-")) for w in nontrivial), default=None)
    letters = LETTERS[:k]
    effects = list(letters) + ["".join(c) for c in combinations(letters, 2)]
    aliases = {e: sorted((multiply(e, w) for w in nontrivial), key=_word_key) for e in effects}
    runs = []
    for base_run in full_factorial(k - p):
        run = dict(base_run)
        for lhs, rhs, s in parsed:
            v = s
            for c in rhs:
                v *= base_run[c]
            run[lhs] = v
        runs.append({f: run[f] for f in letters})
    return Design(
        k=k,
        p=p,
        generators=[f"{lhs}={'-' if s < 0 else ''}{rhs}" for lhs, rhs, s in parsed],
        defining_relation=relation,
        resolution=resolution,
        aliases=aliases,
        runs=runs,
    )


def parse_design_spec(spec: str) -> tuple[int, int]:
    """Read "2^(5-1)" or "2^5" (as written in papers) into (k, p)."""
    text = str(spec).replace(" ", "")
    m = re.fullmatch(r"2\^\((\d+)-(\d+)\)", text) or re.fullmatch(r"2\^(\d+)(?:-(\d+))?", text)
    if not m:
        raise CampaignError(f"design spec {spec!r}: expected '2^(k-p)' or '2^k'")
    k, p = int(m.group(1)), int(m.group(2) or 0)
    _check_k(k)
    if not 0 <= p < k:
        raise CampaignError(f"design spec {spec!r}: p must be 0..{k - 1}")
    return k, p


def design_for_runs(k: int, runs: int, generators: list[str] | None = None) -> Design:
    """The 2^(k-p) design with `runs` runs (p = k - log2 runs): campaigns state run counts."""
    _check_k(k)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 2 or runs & (runs - 1):
        raise CampaignError(f"design: runs={runs!r} must be a power of two >= 2")
    if runs > 2**k:
        raise CampaignError(f"design: runs={runs} exceeds the full factorial 2^{k}={2**k}")
    return fractional(k, k - (runs.bit_length() - 1), generators)


# --------------------------------------------------------------------------- point sets
#
# A stage's effect set is not always a textbook design: a gate after a screen estimates on the
# promoted points, or on the factorial `reduce` made. What matters for the analysis is found
# from the points themselves: which factors vary, which products of them are constant on the
# points (the defining relation, signed), and whether the points are a regular fraction (a coset
# of a subgroup of the 2^k factorial, i.e. an orthogonal two-level design).


def constant_words(levels: np.ndarray, max_words: int | None = None) -> list[tuple[int, int]]:
    """(mask, sign) of every product of columns of `levels` (±1) that is constant on its rows.

    Those words, with the identity (mask 0, sign +1) first, form the defining relation of the
    point set: a group under multiplication (XOR of masks). Found as the null space over GF(2)
    of the rows' differences (bit j = column j at -1), so the cost follows the number of words,
    not 2^columns. More than `max_words` words is an error (LedgerError) instead of a list.
    """
    n, v = levels.shape
    if n == 0 or v == 0:
        return [(0, 1)]
    bits = [sum(1 << j for j in range(v) if levels[i, j] < 0) for i in range(n)]
    pivots: dict[int, int] = {}  # pivot column -> fully reduced row
    for d in {b ^ bits[0] for b in bits} - {0}:
        for col, row in pivots.items():
            if d >> col & 1:
                d ^= row
        if not d:
            continue
        col = d.bit_length() - 1
        for other in pivots:
            if pivots[other] >> col & 1:
                pivots[other] ^= d
        pivots[col] = d
    free = [j for j in range(v) if j not in pivots]
    if max_words is not None and 2 ** len(free) > max_words:
        raise AnalysisError(
            f"{2 ** len(free)} words are constant on these rows (more than {max_words})"
        )
    basis = [(1 << f) | sum(1 << col for col, row in pivots.items() if row >> f & 1) for f in free]
    out = []
    for combo in range(2 ** len(basis)):
        mask = 0
        for i, word in enumerate(basis):
            if combo >> i & 1:
                mask ^= word
        out.append((mask, -1 if bin(bits[0] & mask).count("1") % 2 else 1))
    return sorted(out, key=lambda mw: (bin(mw[0]).count("1") > 0, mw[0]))


def is_regular(levels: np.ndarray) -> bool:
    """True when the distinct rows form a coset of a subgroup of {±1}^v (a regular fraction).

    Regular fractions (full factorials and 2^(k-p) designs from generators) are orthogonal:
    every estimable contrast is a column of ±1 balanced against every other.
    """
    rows = {tuple(int(x) for x in r) for r in levels}
    if not rows:
        return False
    size = len(rows)
    if size & (size - 1):
        return False
    as_bits = [sum(1 << j for j, x in enumerate(r) if x < 0) for r in sorted(rows)]
    shifted = {b ^ as_bits[0] for b in as_bits}
    return all((a ^ b) in shifted for a in shifted for b in shifted)


@dataclass(frozen=True)
class PointSet:
    """The aliasing structure of a set of two-level points, found from the points alone."""

    factors: list[str]
    varying: list[str]
    constant: dict[str, int]  # factor -> the one level it takes
    n_points: int
    regular: bool
    defining_relation: list[str]  # signed words over the varying factors, "I" first
    resolution: int | None  # None when no word: a full factorial in the varying factors

    @property
    def label(self) -> str:
        v, n = len(self.varying), self.n_points
        if not self.regular:
            return f"{n} points in {v} varying factors (not a regular fraction)"
        p = v - (n.bit_length() - 1)
        base = f"2^{v}" if p == 0 else f"2^({v}-{p})"
        return base if self.resolution is None else f"{base} {roman(self.resolution)}"

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "varying": list(self.varying),
            "constant": dict(self.constant),
            "n_points": self.n_points,
            "regular": self.regular,
            "defining_relation": list(self.defining_relation),
            "resolution": self.resolution,
        }


def point_structure(points: list[dict[str, int]], factors: list[str]) -> PointSet:
    """Varying and constant factors, defining relation, resolution and regularity of `points`.

    Factors are letters (words are written like "ABD"); duplicate points count once.
    """
    for i, pt in enumerate(points):
        bad = [f for f in factors if pt.get(f) not in (-1, 1)]
        if bad:
            raise AnalysisError(f"design points: point {i} has no -1/+1 level for {bad[0]}")
    distinct = sorted({tuple(int(pt[f]) for f in factors) for pt in points})
    levels = np.array(distinct, dtype=np.int64).reshape(len(distinct), len(factors))
    varying = [f for j, f in enumerate(factors) if len(set(levels[:, j])) > 1]
    constant = {f: int(levels[0, j]) for j, f in enumerate(factors) if f not in varying}
    sub = levels[:, [factors.index(f) for f in varying]]
    words = []
    for mask, sign in constant_words(sub)[1:]:
        word = "".join(f for j, f in enumerate(varying) if mask >> j & 1)
        words.append(("-" if sign < 0 else "") + word)
    relation = ["I", *sorted(words, key=_word_key)]
    resolution = min((len(w.lstrip("-")) for w in words), default=None)
    return PointSet(
        factors=list(factors),
        varying=varying,
        constant=constant,
        n_points=len(distinct),
        regular=bool(distinct) and is_regular(sub),
        defining_relation=relation,
        resolution=resolution,
    )
