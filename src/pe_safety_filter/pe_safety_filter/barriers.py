"""Constraint assembly: VCP control-barrier constraints, linear in u = (v, omega).

Frames and units: world frame, metres, radians, seconds. A robot at p = (x, y)
with heading theta has the virtual control point (VCP)

    q = p + d e1,   e1 = (cos theta, sin theta),   e2 = (-sin theta, cos theta),

and for the unicycle q' = v e1 + d omega e2. For a barrier h(q) with gradient
g = dh/dq the continuous CBF condition  h' + gain * h >= 0  is therefore the
half-plane

    (g . e1) v + d (g . e2) omega >= -gain * h                        (*)

Barriers (r: robot radius, constraint order: obstacles as given, walls +x, -x,
+y, -y, teammates as given):

* obstacle (c, r_o):  h = |q - c|^2 - (r_o + r + d)^2,            g = 2 (q - c)
* wall +x:            h = (W/2 - r - d) - q_x,   g = (-1, 0); likewise -x, +y, -y
* teammate j:         h = |q - q_j|^2 - (r + r_j + 2d + beta)^2,   g = 2 (q - q_j),
  where q_j is the teammate's VCP and beta >= 0 the configured robot buffer.
  Responsibility is split: the pair condition
  g . q' - g . q_j' >= -gain h  is shared as  g . q' >= -gain h / 2  on each robot
  (the teammate, filtered with the same rule, takes the other half).

Each row is divided by the norm of its left-hand side (a positive scaling: the
half-plane is unchanged), so every row has unit normal and the right-hand side
is in the units of u.

Proof that the inflated barrier on the VCP implies the body condition
---------------------------------------------------------------------
|q - p| = d always. Obstacle: if h >= 0 then |q - c| >= r_o + r + d and, by the
triangle inequality, |p - c| >= |q - c| - |q - p| >= r_o + r, so the body disc
(p, r) does not overlap the obstacle disc (c, r_o). Wall x <= W/2: if h >= 0
then p_x = q_x - d cos theta <= q_x + d <= W/2 - r, so the body disc lies in
x <= W/2; the other three walls are the same with signs changed. Teammates:
if h >= 0 then |p - p_j| >= |q - q_j| - |q - p| - |q_j - p_j| = |q - q_j| - 2d
>= r + r_j + beta >= r + r_j, so the bodies do not overlap. The inflations d and
2d are tight: with the robot heading straight away from the obstacle
(q - c parallel to e1), |p - c| = |q - c| - d exactly.

The barrier is only the shaping term of the filter; the guarantee in discrete
time comes from the exact next-step check of :mod:`pe_safety_filter.kernel`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

KIND_OBSTACLE, KIND_WALL, KIND_TEAMMATE = 0, 1, 2
N_WALLS = 4
_TINY = 1e-12
#: Largest class-K gain (1/s) the filter uses. Gains given at call time are clamped
#: to [0, GAIN_MAX]; configs outside it are refused. Far above any useful gain
#: (1 / dt = 20 1/s at the shipped step; BarrierNet learns 0.5 .. 8), and small
#: enough that gain * h stays a modest finite number in every arena.
GAIN_MAX = 1000.0


@numba.njit(cache=True, inline="always")
def _row(gx, gy, c, s, d, rhs, normalize, A, b, k):
    a0 = gx * c + gy * s
    a1 = d * (gy * c - gx * s)
    if normalize:
        nrm = math.sqrt(a0 * a0 + a1 * a1)
        if nrm > _TINY:
            a0 /= nrm
            a1 /= nrm
            rhs /= nrm
    A[k, 0] = a0
    A[k, 1] = a1
    b[k] = rhs


@numba.njit(cache=True)
def assemble(x, y, th, d, radius, obstacles, n_obs, half_w, half_h, teammates, tm_radii, n_tm,
             g_obs, g_wall, g_tm, gains, n_gains, buffer, normalize, A, b, dist):
    """Fill rows ``A[k] . u >= b[k]`` for k < n_obs + 4 + n_tm and return that count.

    ``gains`` (length ``n_gains``, clamped to [0, GAIN_MAX]) overrides the per-kind defaults ``g_obs``,
    ``g_wall``, ``g_tm`` when ``n_gains > 0`` (then it must hold one gain per row).
    ``dist[k]`` receives the barrier as a signed distance (m) of the VCP from the
    inflated set: |q - c| - R for discs, h for walls (same sign as h).
    """
    c = math.cos(th)
    s = math.sin(th)
    qx = x + d * c
    qy = y + d * s
    k = 0
    for i in range(n_obs):
        dx = qx - obstacles[i, 0]
        dy = qy - obstacles[i, 1]
        R = obstacles[i, 2] + radius + d
        h = dx * dx + dy * dy - R * R
        gain = min(max(gains[k], 0.0), GAIN_MAX) if n_gains > 0 else g_obs
        _row(2.0 * dx, 2.0 * dy, c, s, d, -gain * h, normalize, A, b, k)
        dist[k] = math.hypot(dx, dy) - R
        k += 1
    lim_x = half_w - radius - d
    lim_y = half_h - radius - d
    for w in range(N_WALLS):
        if w == 0:
            h, gx, gy = lim_x - qx, -1.0, 0.0
        elif w == 1:
            h, gx, gy = lim_x + qx, 1.0, 0.0
        elif w == 2:
            h, gx, gy = lim_y - qy, 0.0, -1.0
        else:
            h, gx, gy = lim_y + qy, 0.0, 1.0
        gain = min(max(gains[k], 0.0), GAIN_MAX) if n_gains > 0 else g_wall
        _row(gx, gy, c, s, d, -gain * h, normalize, A, b, k)
        dist[k] = h
        k += 1
    for j in range(n_tm):
        tq_x = teammates[j, 0] + d * math.cos(teammates[j, 2])
        tq_y = teammates[j, 1] + d * math.sin(teammates[j, 2])
        dx = qx - tq_x
        dy = qy - tq_y
        R = radius + tm_radii[j] + 2.0 * d + buffer
        h = dx * dx + dy * dy - R * R
        gain = min(max(gains[k], 0.0), GAIN_MAX) if n_gains > 0 else g_tm
        _row(2.0 * dx, 2.0 * dy, c, s, d, -0.5 * gain * h, normalize, A, b, k)
        dist[k] = math.hypot(dx, dy) - R
        k += 1
    return k


def assemble_constraints(
    pose: np.ndarray,
    lookahead: float,
    radius: float,
    obstacles: np.ndarray,
    half_width: float,
    half_height: float,
    teammates: np.ndarray | None = None,
    teammate_radii: np.ndarray | None = None,
    gains: np.ndarray | None = None,
    default_gains: tuple[float, float, float] = (2.0, 2.0, 2.0),
    robot_buffer: float = 0.0,
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Constraint rows for one robot: ``(A (C, 2), b (C,), dist (C,))`` with ``A u >= b``.

    ``pose`` (3,) world frame; ``obstacles`` (M, 3) rows (cx, cy, r); ``teammates``
    (K, 3) poses with radii (K,); ``gains`` (C,) per-row gains (1/s) in constraint
    order, else ``default_gains`` = (obstacle, wall, teammate). C = M + 4 + K.
    """
    pose = np.asarray(pose, dtype=np.float64)
    obstacles = np.ascontiguousarray(obstacles, dtype=np.float64).reshape(-1, 3)
    if teammates is None:
        teammates = np.zeros((0, 3))
    teammates = np.ascontiguousarray(teammates, dtype=np.float64).reshape(-1, 3)
    if teammate_radii is None:
        teammate_radii = np.full(len(teammates), radius)
    teammate_radii = np.ascontiguousarray(teammate_radii, dtype=np.float64).reshape(-1)
    n = obstacles.shape[0] + N_WALLS + teammates.shape[0]
    g = np.zeros(0) if gains is None else np.ascontiguousarray(gains, dtype=np.float64).reshape(-1)
    if gains is not None and g.size != n:
        raise ValueError(f"gains must have one entry per constraint ({n}), got {g.size}")
    A = np.empty((n, 2))
    b = np.empty(n)
    dist = np.empty(n)
    assemble(float(pose[0]), float(pose[1]), float(pose[2]), float(lookahead), float(radius),
             obstacles, obstacles.shape[0], float(half_width), float(half_height), teammates,
             teammate_radii, teammates.shape[0], float(default_gains[0]), float(default_gains[1]),
             float(default_gains[2]), g, g.size, float(robot_buffer), normalize, A, b, dist)
    return A, b, dist
