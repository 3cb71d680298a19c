"""Nash averaging of the pursuit-evasion meta-game (Balduzzi et al., 2018, "Re-evaluating
evaluation"), for a capture matrix of pursuers (rows) against evaders (columns).

The meta-game is constant-sum: a pursuer scores the capture rate, its evader one minus it.
Each side's maximin mixture comes from a small linear program (``scipy.optimize.linprog``);
among the mixtures that reach the game's value, the one with the largest entropy is taken
(unique, and it splits weight evenly between copies of the same policy, so adding a
duplicate to the pool cannot move anyone's rating). Ratings:

* pursuer i: its capture rate against the evaders' Nash mixture, (A q)_i;
* evader j: its escape rate against the pursuers' Nash mixture, 1 - (p^T A)_j.

A policy in the support of its side's mixture rates exactly the game's value (pursuers) or
one minus it (evaders); one outside it rates at most that. Ratings are in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog, minimize

#: Slack (in payoff units) allowed when keeping the mixtures that reach the game's value.
VALUE_TOLERANCE = 1e-7


@dataclass(frozen=True)
class NashAverage:
    """The meta-game's solution: ``value`` (the capture rate at equilibrium), each side's
    maximum-entropy Nash mixture and each policy's rating."""

    value: float
    pursuer_mixture: np.ndarray
    evader_mixture: np.ndarray
    pursuer_rating: np.ndarray
    evader_rating: np.ndarray


def maximin(payoff: np.ndarray) -> tuple[float, np.ndarray]:
    """(value, mixture) of the row player who maximises ``payoff`` (rows x columns) against
    a minimising column player."""
    rows, cols = payoff.shape
    c = np.zeros(rows + 1)
    c[-1] = -1.0                                       # maximise v
    a_ub = np.hstack([-payoff.T, np.ones((cols, 1))])  # v - (p^T A)_j <= 0 for every column j
    a_eq = np.hstack([np.ones((1, rows)), np.zeros((1, 1))])
    bounds = [(0.0, 1.0)] * rows + [(None, None)]
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(cols), A_eq=a_eq, b_eq=[1.0], bounds=bounds, method="highs")
    if not res.success:
        raise RuntimeError(f"maximin LP failed: {res.message}")
    return float(res.x[-1]), np.clip(res.x[:rows], 0.0, 1.0)


def max_entropy_maximin(payoff: np.ndarray, value: float, start: np.ndarray) -> np.ndarray:
    """The mixture of largest entropy among those that guarantee ``value`` against every
    column (``start`` is one of them)."""
    rows = payoff.shape[0]
    if rows == 1:
        return np.ones(1)
    eps = 1e-12

    def neg_entropy(p: np.ndarray) -> float:
        return float(np.sum(p * np.log(p + eps)))

    def gradient(p: np.ndarray) -> np.ndarray:
        return np.log(p + eps) + 1.0

    constraints = [
        {"type": "eq", "fun": lambda p: np.sum(p) - 1.0, "jac": lambda p: np.ones(rows)},
        {"type": "ineq", "fun": lambda p: payoff.T @ p - value + VALUE_TOLERANCE, "jac": lambda p: payoff.T},
    ]
    res = minimize(neg_entropy, start, jac=gradient, bounds=[(0.0, 1.0)] * rows, constraints=constraints,
                   method="SLSQP", options={"maxiter": 500, "ftol": 1e-12})
    p = np.clip(res.x if res.success else start, 0.0, None)
    if np.min(payoff.T @ p) < value - 1e-5:  # the optimiser left the equilibrium set
        p = start
    return p / p.sum()


def nash_average(capture: np.ndarray) -> NashAverage:
    """Nash averaging of the capture matrix ``capture`` (pursuers x evaders, rates in [0, 1])."""
    a = np.asarray(capture, dtype=float)
    if a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"need a non-empty pursuers x evaders matrix, got shape {a.shape}")
    value, p0 = maximin(a)
    neg_value, q0 = maximin(-a.T)   # the evaders maximise -capture
    p = max_entropy_maximin(a, value, p0)
    q = max_entropy_maximin(-a.T, neg_value, q0)
    return NashAverage(value=value, pursuer_mixture=p, evader_mixture=q,
                       pursuer_rating=a @ q, evader_rating=1.0 - p @ a)


__all__ = ["NashAverage", "max_entropy_maximin", "maximin", "nash_average"]
