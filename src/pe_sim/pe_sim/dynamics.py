"""Exact unicycle motion under a command held constant over one step.

With (v, omega) constant over dt the robot moves on a circular arc (a straight
line when omega = 0). Writing a = omega dt / 2, the exact displacement is

    dx = v dt sinc(a) cos(theta + a),   dy = v dt sinc(a) sin(theta + a),
    dtheta = omega dt,

with sinc(a) = sin(a) / a. This form has no division by omega, so one formula
covers the arc and its straight-line limit; near a = 0 sinc uses its Taylor
series, exact to double precision. Units: metres, radians, seconds; world frame.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_SINC_TAYLOR_BELOW = 1e-4  # below this |a|, 1 - a^2/6 + a^4/120 is exact in float64


@numba.njit(cache=True, inline="always")
def sinc(a: float) -> float:
    """sin(a) / a, continuous at a = 0."""
    if abs(a) < _SINC_TAYLOR_BELOW:
        a2 = a * a
        return 1.0 - a2 / 6.0 + a2 * a2 / 120.0
    return math.sin(a) / a


@numba.njit(cache=True, inline="always")
def wrap_angle(angle: float) -> float:
    """Angle wrapped to [-pi, pi); angles already inside are returned unchanged (bit for bit)."""
    if -math.pi <= angle < math.pi:
        return angle
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


@numba.njit(cache=True, inline="always")
def arc_step(x: float, y: float, theta: float, v: float, omega: float, dt: float):
    """Exact next pose (x, y, theta) after holding (v, omega) for dt seconds."""
    half = 0.5 * omega * dt
    chord = v * dt * sinc(half)
    heading = theta + half
    return x + chord * math.cos(heading), y + chord * math.sin(heading), wrap_angle(theta + 2.0 * half)


@numba.njit(cache=True)
def _arc_step_array(pose, command, dt, out):
    flat_pose = pose.reshape(-1, 3)
    flat_cmd = command.reshape(-1, 2)
    flat_out = out.reshape(-1, 3)
    for i in range(flat_pose.shape[0]):
        x, y, th = arc_step(flat_pose[i, 0], flat_pose[i, 1], flat_pose[i, 2],
                            flat_cmd[i, 0], flat_cmd[i, 1], dt)
        flat_out[i, 0] = x
        flat_out[i, 1] = y
        flat_out[i, 2] = th


def unicycle_step(pose: np.ndarray, command: np.ndarray, dt: float) -> np.ndarray:
    """Exact next poses for arrays of poses ``(..., 3)`` [x, y, theta] and commands
    ``(..., 2)`` [v, omega] held for ``dt`` seconds. Commands are used as given
    (clip them to the robot's bounds first)."""
    pose = np.ascontiguousarray(pose, dtype=np.float64)
    command = np.ascontiguousarray(np.broadcast_to(command, (*pose.shape[:-1], 2)), dtype=np.float64)
    out = np.empty_like(pose)
    _arc_step_array(pose, command, float(dt), out)
    return out
