"""Confidence intervals of rates (capture, escape, violation episodes) measured on
held-out episodes: the one Wilson interval of the stack (the report, exploitability,
cross-play and self-play use it)."""

from __future__ import annotations

import math

#: Two-sided 95 % normal quantile.
Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval (lower, upper) of the rate ``successes / trials``, as fractions
    in [0, 1]; (nan, nan) without trials. Unlike the normal interval it stays inside
    [0, 1] and is not degenerate at 0 % or 100 %."""
    if trials <= 0:
        return math.nan, math.nan
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, {trials}], got {successes}")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


__all__ = ["Z_95", "wilson_interval"]
