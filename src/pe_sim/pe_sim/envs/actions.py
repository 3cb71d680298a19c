"""The normalised action convention shared by every environment and policy.

A policy acts in ``[-1, 1]^2``. Component 0 maps linearly to the forward speed
``v`` in ``[v_min, v_max]`` (m/s), component 1 to the turn rate ``omega`` in
``[-omega_max, omega_max]`` (rad/s, counter-clockwise positive). Actions are
clipped to ``[-1, 1]`` first, so an out-of-range action means "the bound".
Non-finite actions pass through as non-finite commands; the simulator turns
those into "stop" (see :mod:`pe_sim.batch`).

Both directions are vectorised: the last axis holds the two components and
the bounds broadcast over the leading axes, e.g. actions ``(B, 2)`` with the
bounds of one robot, or ``(B, N, 2)`` with the bounds of N robots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pe_sim.batch import RobotArrays
from pe_sim.scenario import RobotSpec

ACTION_LOW, ACTION_HIGH = -1.0, 1.0


@dataclass(frozen=True)
class CommandBounds:
    """Command bounds ``low``/``high`` of shape ``(2,)`` (one robot) or ``(N, 2)``:
    ``low = (v_min, -omega_max)``, ``high = (v_max, omega_max)`` in m/s and rad/s."""

    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, robots: CommandBounds | RobotSpec | Sequence[RobotSpec] | RobotArrays) -> CommandBounds:
        """Bounds of one robot (``RobotSpec``) or of several (a sequence or ``RobotArrays``)."""
        if isinstance(robots, CommandBounds):
            return robots
        if isinstance(robots, RobotSpec):
            return cls(np.array([robots.v_min, -robots.omega_max]),
                       np.array([robots.v_max, robots.omega_max]))
        if isinstance(robots, RobotArrays):
            v_min, v_max, omega_max = robots.v_min, robots.v_max, robots.omega_max
        else:
            v_min = np.array([r.v_min for r in robots], dtype=np.float64)
            v_max = np.array([r.v_max for r in robots], dtype=np.float64)
            omega_max = np.array([r.omega_max for r in robots], dtype=np.float64)
        return cls(np.stack([v_min, -omega_max], axis=-1), np.stack([v_max, omega_max], axis=-1))

    @property
    def scale(self) -> np.ndarray:
        """Per-component magnitude bound (max |v|, omega_max): divides command differences
        into unitless ones (the "each component scaled by its bound" of the metrics)."""
        return np.maximum(np.abs(self.low), np.abs(self.high))


def to_command(
    action: np.ndarray,
    robots: CommandBounds | RobotSpec | Sequence[RobotSpec] | RobotArrays,
) -> np.ndarray:
    """Physical commands ``(..., 2)`` = (v m/s, omega rad/s), float64, from normalised
    actions ``(..., 2)`` (clipped to [-1, 1] first)."""
    b = CommandBounds.of(robots)
    a = np.clip(np.asarray(action, dtype=np.float64), ACTION_LOW, ACTION_HIGH)
    return b.low + 0.5 * (a + 1.0) * (b.high - b.low)


def to_action(
    command: np.ndarray,
    robots: CommandBounds | RobotSpec | Sequence[RobotSpec] | RobotArrays,
) -> np.ndarray:
    """Normalised actions ``(..., 2)`` in [-1, 1], float64, from physical commands
    ``(..., 2)`` (the inverse of :func:`to_command` on the bounds; outside, clipped).
    A degenerate range (e.g. ``v_min == v_max``) maps to 0."""
    b = CommandBounds.of(robots)
    span = b.high - b.low
    safe = np.where(span > 0.0, span, 1.0)
    a = 2.0 * (np.asarray(command, dtype=np.float64) - b.low) / safe - 1.0
    return np.clip(np.where(span > 0.0, a, 0.0), ACTION_LOW, ACTION_HIGH)


__all__ = ["ACTION_HIGH", "ACTION_LOW", "CommandBounds", "to_action", "to_command"]
