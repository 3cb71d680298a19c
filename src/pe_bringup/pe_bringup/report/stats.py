"""Intervals and paired tests for the report; pure functions of their inputs.

* :func:`wilson_interval`: 95 % (by default) score interval of a binomial rate.
* :func:`bootstrap_interval`: percentile bootstrap interval of a statistic (mean by
  default) of a sample, seeded so a report is reproducible.
* :func:`mcnemar_exact`: two-sided exact McNemar test of two methods' paired binary
  outcomes on the same episodes (seeds).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from pe_sim.intervals import Z_95 as Z_95  # the stack's one Wilson interval, re-exported
from pe_sim.intervals import wilson_interval as wilson_interval


def bootstrap_interval(values: Sequence[float] | np.ndarray, *, statistic: Callable[[np.ndarray], float]
                       = np.mean, level: float = 0.95, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval (lower, upper) of ``statistic`` over ``values``
    (resampling along the first axis: rows of a 2-D array are resampled whole);
    (nan, nan) for an empty sample. Vectorised over resamples for the mean and median."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(resamples, len(x)))
    samples = x[idx]
    if statistic is np.mean:
        stats = samples.mean(axis=1)
    elif statistic is np.median:
        stats = np.median(samples, axis=1)
    else:
        stats = np.array([statistic(row) for row in samples])
    alpha = 0.5 * (1.0 - level)
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: ``only_a`` episodes
    where A succeeded and B did not, ``only_b`` the reverse (binomial test of
    ``only_a`` against Binomial(only_a + only_b, 1/2)); 1.0 without discordant pairs."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


def paired_outcomes(a: dict[int, bool], b: dict[int, bool]) -> tuple[int, int, int]:
    """(seeds in common, seeds where only A succeeded, seeds where only B succeeded)."""
    common = sorted(set(a) & set(b))
    only_a = sum(1 for s in common if a[s] and not b[s])
    only_b = sum(1 for s in common if b[s] and not a[s])
    return len(common), only_a, only_b
