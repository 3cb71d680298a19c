"""Safety from true geometry: robot body discs against obstacle discs, the arena
and teammates' bodies.

This is the measuring stick for the safety-violation metric of the project's
brief, deliberately independent of any barrier function: it only knows discs
and the arena rectangle. Clearance is a signed surface distance in metres
(negative = overlap); touching (clearance exactly 0) is not a violation.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Clearance categories reported per robot.
KIND_NONE, KIND_OBSTACLE, KIND_WALL, KIND_TEAMMATE = 0, 1, 2, 3


@numba.njit(cache=True, inline="always")
def disc_clearance(x: float, y: float, r: float, cx: float, cy: float, cr: float) -> float:
    """Surface distance between the disc (x, y, r) and the disc (cx, cy, cr)."""
    return math.hypot(x - cx, y - cy) - r - cr


@numba.njit(cache=True, inline="always")
def arena_clearance(x: float, y: float, r: float, half_w: float, half_h: float) -> float:
    """Least distance from the disc (x, y, r) to the boundary of the arena
    [-half_w, half_w] x [-half_h, half_h]; negative when the disc is not fully inside."""
    return min(half_w - abs(x), half_h - abs(y)) - r


@numba.njit(cache=True)
def static_clearance(x, y, r, obstacles, n_obstacles, half_w, half_h):
    """(clearance, kind) of one body disc against the arena and the first
    ``n_obstacles`` rows (cx, cy, radius) of ``obstacles``."""
    best = arena_clearance(x, y, r, half_w, half_h)
    kind = KIND_WALL
    for k in range(n_obstacles):
        c = disc_clearance(x, y, r, obstacles[k, 0], obstacles[k, 1], obstacles[k, 2])
        if c < best:
            best = c
            kind = KIND_OBSTACLE
    return best, kind


def body_clearance(
    pose: np.ndarray,
    radius: float,
    obstacles: np.ndarray,
    half_w: float,
    half_h: float,
) -> float:
    """Clearance (m) of one robot body at ``pose`` against obstacles ``(M, 3)`` and the arena."""
    obstacles = np.ascontiguousarray(obstacles, dtype=np.float64).reshape(-1, 3)
    c, _ = static_clearance(float(pose[0]), float(pose[1]), float(radius), obstacles,
                            obstacles.shape[0], float(half_w), float(half_h))
    return c
