"""The verdict's arithmetic and wording against hand-made differences."""

from __future__ import annotations

import pytest

from stages.evaluation_model import Estimate, significant
from stages.evaluation_stats import (
    classify,
    compare_sentence,
    headline,
    paired,
    proportion,
)


def test_paired_differences_use_the_t_interval_and_a_constant_one_is_exact():
    # differences 1, 0, 1, 0: mean 0.5, sd 0.5774, se 0.2887, t(0.975, 3) = 3.1824
    est = paired([1.0, 0.0, 1.0, 0.0], None)
    assert est.value == 0.5
    assert est.mc == pytest.approx((0.5 - 3.1824 * 0.28868, 0.5 + 3.1824 * 0.28868), abs=1e-4)
    assert paired([0.0] * 5, None).mc == (0.0, 0.0)
    # a data spread adds its variance: sd of the world deltas 0.1 -> +-0.196
    est = paired([0.0] * 5, [0.1, -0.1, 0.1, -0.1])
    assert est.data == pytest.approx((-1.96 * 0.11547, 1.96 * 0.11547), abs=1e-3)


def test_a_deterministic_proportion_has_no_monte_carlo_interval():
    est = proportion([True] * 10, None, deterministic=True)
    assert est.value == 1.0 and est.mc is None and est.data is None


def test_verdicts_follow_the_deciding_interval():
    def est(value, low, high):
        return Estimate(value=value, mc=(low, high))

    assert classify(est(0.3, 0.2, 0.4), flat=False) == "better"
    assert classify(est(-0.3, -0.4, -0.2), flat=False) == "worse"
    assert classify(est(0.05, -0.02, 0.12), flat=False) == "no detectable difference"
    assert classify(est(0.0, 0.0, 0.0), flat=False) == "identical"
    assert classify(est(0.3, 0.2, 0.4), flat=True) == "not comparable"
    # the total interval, when there is one, decides: data uncertainty can void a win
    wide = Estimate(value=0.3, mc=(0.2, 0.4), total=(-0.1, 0.7))
    assert classify(wide, flat=False) == "no detectable difference"
    verdict, sentence = compare_sentence(
        "random search", est(0.02, -0.05, 0.09), Estimate(value=None), 1.0, flat=False
    )
    assert sentence == (
        "the protocol is no better than random search at equal GPU-hours: +0.02 [-0.05, +0.09]"
    )
    _, sentence = compare_sentence(
        "Hyperband", est(0.31, 0.22, 0.40), Estimate(value=None), 0.62, flat=False
    )
    assert sentence.startswith(
        "the protocol finds the true best more often than Hyperband at 62% of the protocol's "
        "GPU-hours: +0.31 [+0.22, +0.40]"
    )
    line = headline([("Hyperband", "better", est(0.31, 0.22, 0.40), 1.0)], flat=False, best="x")
    assert line.startswith("The protocol finds the true best more often than Hyperband (+0.31")


def test_gpu_hours_keep_four_significant_digits():
    assert [significant(x) for x in (0.0213, 65.6312, 169.73, 12345.6)] == [
        "0.02130",
        "65.63",
        "169.7",
        "12346",
    ]
