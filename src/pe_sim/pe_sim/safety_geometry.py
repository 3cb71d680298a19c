"""Safety from true geometry: robot body discs against obstacle discs, the arena
and teammates' bodies.

This is the measuring stick for the safety-violation metric of the project's
brief, deliberately independent of any barrier function: it only knows discs
and the arena rectangle. Clearance is a signed surface distance in metres
(negative = overlap); touching (clearance exactly 0) is not a violation.

Swept clearance. A command (v, omega) held for dt moves the centre along a
circular arc of radius |v / omega| (a segment when omega = 0), exactly as
:func:`pe_sim.dynamics.arc_step`. The least clearance over the whole step is
closed form:

* to a point (an obstacle's or a teammate's centre): in the frame of the start
  pose the centre is rho (sin phi, 1 - cos phi), rho = v / omega, phi = omega t;
  the squared distance to a point (a, b) is stationary where
  a omega cos phi + (b omega - v) sin phi = 0, i.e. phi = atan2(a omega, v - b omega)
  + k pi (t = a / v on a segment). The least distance is at one of these times
  inside (0, dt) or at an end -- the projection of the point on the full circle,
  kept if its angle lies within the swept angle;
* to the arena walls: x(t) is extreme where the heading is pi/2 + k pi, y(t)
  where it is k pi (tangent parallel to the wall), or at an end.

Every candidate time is evaluated with ``arc_step`` itself, so the swept minimum
and the simulator's end pose agree to the last bit at t = dt. Between two moving
teammates the relative motion is not an arc; :func:`pair_swept_clearance` bounds
it by branch and bound with a certified second-order bound.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pe_sim.dynamics import arc_step, wrap_angle

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


@numba.njit(cache=True, inline="always")
def _arc_span(omega, dt):
    """Time (s) after which the arc has covered every point it covers in dt: dt, or
    one full turn when |omega| dt exceeds 2 pi."""
    if omega != 0.0 and abs(omega) * dt > 2.0 * math.pi:
        return 2.0 * math.pi / abs(omega)
    return dt


#: Turns (rad) within a step below this are driven as straight lines when finding the
#: closest approach to a point: far below any clearance tolerance, and the arc formula
#: divides by omega.
STRAIGHT_TURN = 1e-12


@numba.njit(cache=True, inline="always")
def _point_interior(x, y, th, v, w, dt, px, py, best, t_best):
    """Fold the interior stationary points (0 < t < dt) of the distance from (px, py) to
    the arc into (best, t_best); ``th`` wrapped, v != 0."""
    c = math.cos(th)
    s = math.sin(th)
    a = c * (px - x) + s * (py - y)
    b = -s * (px - x) + c * (py - y)
    span = _arc_span(w, dt)
    if abs(w) * dt < STRAIGHT_TURN:  # (phi0 + k pi) / w loses every digit as w -> 0
        t = a / v
        if 0.0 < t < span:
            cx, cy, _ = arc_step(x, y, th, v, w, t)
            d = math.hypot(cx - px, cy - py)
            if d < best:
                best, t_best = d, t
        return best, t_best
    phi0 = math.atan2(a * w, v - b * w)
    for k in range(-2, 3):
        t = (phi0 + k * math.pi) / w
        if 0.0 < t < span:
            cx, cy, _ = arc_step(x, y, th, v, w, t)
            d = math.hypot(cx - px, cy - py)
            if d < best:
                best, t_best = d, t
    return best, t_best


@numba.njit(cache=True, inline="always")
def _arena_interior(x, y, th, v, w, dt, r, half_w, half_h, best, t_best):
    """Fold the interior extremes of x(t) and y(t) (heading a multiple of pi/2 with
    0 < t < dt) into (best, t_best) of the arena clearance; ``th`` wrapped, v != 0."""
    if w == 0.0:
        return best, t_best
    span = _arc_span(w, dt)
    quarter = 0.5 * math.pi
    if w > 0.0:
        k0 = math.floor(th / quarter) + 1.0
        step = 1.0
    else:
        k0 = math.ceil(th / quarter) - 1.0
        step = -1.0
    for i in range(5):
        t = ((k0 + step * i) * quarter - th) / w
        if not 0.0 < t < span:
            continue
        cx, cy, _ = arc_step(x, y, th, v, w, t)
        c = arena_clearance(cx, cy, r, half_w, half_h)
        if c < best:
            best, t_best = c, t
    return best, t_best


@numba.njit(cache=True)
def arc_point_distance(x, y, th, v, w, dt, px, py):
    """(least distance (m), time (s) in [0, dt] where it occurs) from the point (px, py)
    to the centre path of a robot at (x, y, th) holding (v, w) for dt; closed form
    (see the module docstring)."""
    best = math.hypot(x - px, y - py)
    t_best = 0.0
    if v == 0.0:
        return best, t_best
    th = wrap_angle(th)
    ex, ey, _ = arc_step(x, y, th, v, w, dt)
    d = math.hypot(ex - px, ey - py)
    if d < best:
        best, t_best = d, dt
    return _point_interior(x, y, th, v, w, dt, px, py, best, t_best)


@numba.njit(cache=True)
def arc_arena_clearance(x, y, th, v, w, dt, r, half_w, half_h):
    """(least arena clearance (m), time (s)) of the body disc of radius r over the arc
    of (v, w) held for dt from (x, y, th); closed form (extremes of x and y at the
    ends or where the heading is a multiple of pi/2)."""
    best = arena_clearance(x, y, r, half_w, half_h)
    t_best = 0.0
    if v == 0.0:
        return best, t_best
    th = wrap_angle(th)
    ex, ey, _ = arc_step(x, y, th, v, w, dt)
    c = arena_clearance(ex, ey, r, half_w, half_h)
    if c < best:
        best, t_best = c, dt
    return _arena_interior(x, y, th, v, w, dt, r, half_w, half_h, best, t_best)


@numba.njit(cache=True)
def swept_clearance_from(x, y, th, v, w, dt, ex, ey, r, obstacles, n_obstacles, half_w, half_h):
    """:func:`swept_static_clearance` given the end position (ex, ey) of the step
    (``arc_step(x, y, th, v, w, dt)``) and a wrapped heading ``th``.

    Both ends first; then the interior candidates of the walls and of each obstacle
    whose clearance could fall below the best so far. A clearance is 1-Lipschitz
    in the centre's position and the path is |v| dt long, so over the step it is
    at least (c_start + c_end - |v| dt) / 2: when that is not below the best, the
    interior cannot beat it (a robot driving straight at or away from an
    obstacle never needs the interior)."""
    if v == 0.0:
        best, kind = static_clearance(x, y, r, obstacles, n_obstacles, half_w, half_h)
        return best, kind, 0.0
    travel = abs(v) * dt  # length (m) of the centre's path
    a0 = arena_clearance(x, y, r, half_w, half_h)
    a1 = arena_clearance(ex, ey, r, half_w, half_h)
    best, kind, t_best = a0, KIND_WALL, 0.0
    if a1 < best:
        best, t_best = a1, dt
    if 0.5 * (a0 + a1 - travel) < best:
        c, t = _arena_interior(x, y, th, v, w, dt, r, half_w, half_h, np.inf, 0.0)
        if c < best:
            best, t_best = c, t
    half_turn = abs(w) * dt < math.pi
    have_dirs = False
    cos0 = sin0 = cos1 = sin1 = 0.0
    for k in range(n_obstacles):
        ox, oy = obstacles[k, 0], obstacles[k, 1]
        ro = obstacles[k, 2]
        d0 = math.hypot(x - ox, y - oy)
        d1 = math.hypot(ex - ox, ey - oy)
        # Same expression as disc_clearance, so the ends agree with static_clearance bit for bit.
        if d0 - r - ro < best:
            best, kind, t_best = d0 - r - ro, KIND_OBSTACLE, 0.0
        if d1 - r - ro < best:
            best, kind, t_best = d1 - r - ro, KIND_OBSTACLE, dt
        # (Skipping against a best that may still fall is conservative: it skips less.)
        if 0.5 * (d0 + d1 - travel) - r - ro >= best:
            continue
        if half_turn:
            # Within less than half a turn the distance has at most one stationary point:
            # an interior minimum needs it to be falling at the start and rising at the end.
            if not have_dirs:
                cos0, sin0 = math.cos(th), math.sin(th)
                cos1, sin1 = math.cos(th + w * dt), math.sin(th + w * dt)
                have_dirs = True
            if (v * ((ox - x) * cos0 + (oy - y) * sin0) <= 0.0
                    or v * ((ox - ex) * cos1 + (oy - ey) * sin1) >= 0.0):
                continue
        d, t = _point_interior(x, y, th, v, w, dt, ox, oy, np.inf, 0.0)
        if d - r - ro < best:
            best, kind, t_best = d - r - ro, KIND_OBSTACLE, t
    return best, kind, t_best


@numba.njit(cache=True)
def swept_static_clearance(x, y, th, v, w, dt, r, obstacles, n_obstacles, half_w, half_h):
    """(clearance (m), kind, time (s)): the least clearance of the body disc against the
    arena and the first ``n_obstacles`` obstacle rows at any time of the step of
    (v, w) held for dt from (x, y, th), and when it occurs. With v = 0 the body
    does not move and this is :func:`static_clearance` at t = 0."""
    th = wrap_angle(th)
    ex, ey, _ = arc_step(x, y, th, v, w, dt)
    return swept_clearance_from(x, y, th, v, w, dt, ex, ey, r, obstacles, n_obstacles, half_w,
                                half_h)


@numba.njit(cache=True, inline="always")
def _relative(xi, yi, thi, vi, wi, xj, yj, thj, vj, wj, t):
    """Relative position p_i(t) - p_j(t) and velocity of two robots on their arcs."""
    ax, ay, ath = arc_step(xi, yi, thi, vi, wi, t)
    bx, by, bth = arc_step(xj, yj, thj, vj, wj, t)
    return (ax - bx, ay - by, vi * math.cos(ath) - vj * math.cos(bth),
            vi * math.sin(ath) - vj * math.sin(bth))


PAIR_STACK = 64
PAIR_REL_TOL = 1e-2
_PAIR_MAX_EVALS = 4096


@numba.njit(cache=True)
def pair_swept_clearance_ends(xi, yi, thi, vi, wi, xj, yj, thj, vj, wj, dt, r_sum, tol,
                              exi, eyi, exj, eyj, lo, hi):
    """:func:`pair_swept_clearance` given both robots' end positions (``arc_step`` at dt)
    and scratch arrays ``lo``, ``hi`` (``PAIR_STACK`` floats each) for the search."""
    c0 = math.hypot(xi - xj, yi - yj) - r_sum
    c1 = math.hypot(exi - exj, eyi - eyj) - r_sum
    best, t_best = (c0, 0.0) if c0 <= c1 else (c1, dt)
    if vi == 0.0 and vj == 0.0:
        return best, t_best
    # The distance changes at most |vi| + |vj| per second: nothing in between can beat
    # the ends when their mean minus half the step's relative travel does not.
    if 0.5 * (c0 + c1 - (abs(vi) + abs(vj)) * dt) >= best - tol:
        return best, t_best
    acc = abs(vi * wi) + abs(vj * wj)
    lo[0], hi[0] = 0.0, dt
    n = 1
    evals = 0
    while n > 0 and evals < _PAIR_MAX_EVALS:
        n -= 1
        t0, t1 = lo[n], hi[n]
        h = 0.5 * (t1 - t0)
        tm = t0 + h
        dx, dy, ux, uy = _relative(xi, yi, thi, vi, wi, xj, yj, thj, vj, wj, tm)
        evals += 1
        cm = math.hypot(dx, dy) - r_sum
        if cm < best:
            best, t_best = cm, tm
        # least |(dx, dy) + s (ux, uy)| for s in [-h, h]
        uu = ux * ux + uy * uy
        s = 0.0 if uu == 0.0 else min(max(-(dx * ux + dy * uy) / uu, -h), h)
        bound = math.hypot(dx + s * ux, dy + s * uy) - r_sum - 0.5 * acc * h * h
        if bound >= best - tol - PAIR_REL_TOL * max(best, 0.0) or n + 2 > PAIR_STACK or h == 0.0:
            continue
        lo[n], hi[n] = tm, t1
        lo[n + 1], hi[n + 1] = t0, tm
        n += 2
    return best, t_best


@numba.njit(cache=True)
def pair_swept_clearance(xi, yi, thi, vi, wi, xj, yj, thj, vj, wj, dt, r_sum, tol):
    """(clearance (m), time (s)): least |p_i(t) - p_j(t)| - r_sum over t in [0, dt] for
    two robots each holding its command on its arc.

    Branch and bound: on an interval of half-width h around tm the relative
    position is within A h^2 / 2 of its tangent line (A = |vi wi| + |vj wj| bounds
    the relative acceleration), so the least distance on it is at least the
    point-to-segment distance of that line minus A h^2 / 2. Intervals whose bound
    cannot beat the best value by more than ``tol`` (m) plus ``PAIR_REL_TOL`` times
    a positive clearance are dropped: the result is exact to ``tol`` near contact
    (so an overlap deeper than ``tol`` is always found) and within that relative
    tolerance of a positive least clearance."""
    exi, eyi, _ = arc_step(xi, yi, thi, vi, wi, dt)
    exj, eyj, _ = arc_step(xj, yj, thj, vj, wj, dt)
    return pair_swept_clearance_ends(xi, yi, thi, vi, wi, xj, yj, thj, vj, wj, dt, r_sum, tol,
                                     exi, eyi, exj, eyj, np.empty(PAIR_STACK), np.empty(PAIR_STACK))


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


def swept_body_clearance(
    pose: np.ndarray,
    command: np.ndarray,
    dt: float,
    radius: float,
    obstacles: np.ndarray,
    half_w: float,
    half_h: float,
) -> tuple[float, float]:
    """(least clearance (m), time (s) in [0, dt]) of one robot body over a step of
    ``command`` (v m/s, omega rad/s) held for ``dt`` s from ``pose`` (x, y, theta),
    against obstacles ``(M, 3)`` and the arena [-half_w, half_w] x [-half_h, half_h]."""
    obstacles = np.ascontiguousarray(obstacles, dtype=np.float64).reshape(-1, 3)
    c, _, t = swept_static_clearance(float(pose[0]), float(pose[1]), float(pose[2]),
                                     float(command[0]), float(command[1]), float(dt), float(radius),
                                     obstacles, obstacles.shape[0], float(half_w), float(half_h))
    return c, t
