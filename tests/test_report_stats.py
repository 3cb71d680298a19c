"""The report's intervals and paired test against known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pe_bringup.report.stats import bootstrap_interval, mcnemar_exact, paired_outcomes, wilson_interval


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (914, 1000, 0.8950, 0.9298),     # the README's default pursuer: 91.4 % [89.5, 93.0]
    (634, 1000, 0.6037, 0.6633),     # 63.4 % [60.4, 66.3]
    (0, 20, 0.0, 0.1611),            # no successes: the upper bound is still positive
    (20, 20, 0.8389, 1.0),
])
def test_wilson_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4)
    assert hi == pytest.approx(high, abs=1e-4)


def test_wilson_without_trials_is_nan():
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_mcnemar_exact_known_values():
    # 1 vs 9 discordant pairs: 2 * P(X <= 1), X ~ Bin(10, 1/2) = 2 * 11 / 1024.
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact(9, 1) == pytest.approx(22 / 1024)
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)


def test_paired_outcomes_count_discordant_seeds_in_common():
    a = {1: True, 2: True, 3: False, 4: False, 9: True}
    b = {1: True, 2: False, 3: True, 4: False, 7: True}
    assert paired_outcomes(a, b) == (4, 1, 1)


def test_bootstrap_of_the_mean_brackets_it_and_matches_the_normal_interval():
    rng = np.random.default_rng(3)
    x = rng.normal(10.0, 2.0, size=2000)
    lo, hi = bootstrap_interval(x, resamples=4000, seed=1)
    assert lo < x.mean() < hi
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)          # ~0.088
    assert hi - lo == pytest.approx(2 * half, rel=0.1)
    assert bootstrap_interval(x, seed=1) == bootstrap_interval(x, seed=1)   # reproducible


def test_bootstrap_of_a_constant_and_of_nothing():
    assert bootstrap_interval([2.5] * 10) == (2.5, 2.5)
    assert all(math.isnan(v) for v in bootstrap_interval([]))


def test_bootstrap_resamples_rows_whole_for_ratios():
    pairs = np.array([[1.0, 10.0], [3.0, 10.0], [0.0, 10.0], [4.0, 10.0]])
    lo, hi = bootstrap_interval(pairs, statistic=lambda s: s[:, 0].sum() / s[:, 1].sum(), resamples=500)
    assert 0.0 <= lo <= 0.2 <= hi <= 0.4


def test_training_seed_spread_over_methods_of_one_configuration():
    from pe_bringup.report.analysis import training_seed_spread

    def row(method, scenario, capture):
        return {"method": method, "scenario": scenario, "opponent": "flee",
                "capture_rate": {"value": capture}}

    rows = [row("a_seed1", "s", 0.6), row("a_seed2", "s", 0.7), row("a_seed3", "s", 0.8),
            row("a_seed1", "t", 0.5), row("b", "s", 0.1)]
    spread = training_seed_spread(rows, {"a": ["a_seed1", "a_seed2", "a_seed3"], "b": ["b"]})
    assert len(spread) == 1                      # scenario t has one seed played, b one seed
    assert spread[0]["seeds"] == 3 and spread[0]["min"] == 0.6 and spread[0]["max"] == 0.8
    assert spread[0]["mean"] == pytest.approx(0.7) and spread[0]["std"] == pytest.approx(0.1)
