"""The filter kernel: validate, assemble, solve, check the whole step exactly, tighten,
back up -- for one robot, in one compiled call.

Tiers (what acted): ``nominal`` (the clipped nominal command satisfied every
constraint and the check), ``qp`` (the first QP solution), ``tightened`` (a
re-solve with gains times ``factor**k``, k = 1 .. steps), ``backup`` (v = 0).

Exact continuous-time check. The command u = (v, omega), held for dt, moves the
robot on the exact arc of :func:`pe_sim.dynamics.arc_step` (the simulator's own
function). The body must keep clearance >= min(margin, c_now) from every
obstacle and wall at every time of the step, not only at its end (c_now: the
current clearance, so a robot that starts within the margin is only asked not
to get closer). The least clearance along the arc is closed form
(:func:`pe_sim.safety_geometry.swept_static_clearance`: true geometry,
independent of the barriers). A body that does not move (v = 0, any omega)
passes.

Teammates. The teammate's position during the step is unknown, but it stays in
the disc of radius s_j = v_max_j dt around its current centre (a chord is never
longer than the arc). A robot that moves must keep its body at least ``margin``
outside that reachable disc along its whole arc:
min_t |p(t) - p_j| >= r + r_j + s_j + margin (closed form,
:func:`pe_sim.safety_geometry.arc_point_distance`). Then at every time t of the
step |p_i(t) - p_j(t)| >= |p_i(t) - p_j| - |p_j(t) - p_j| >= r_i + r_j, whatever
j does within its speed; a robot that stays cannot be hit by a teammate that
runs the same rule. (A teammate that is not filtered can still drive into a
stopped robot; no filter on i can prevent that.)

Numbers. The heading is wrapped to [-pi, pi) before use (the simulator's
convention), so an unwrapped but finite heading integrates the same arc as the
simulator. Per-constraint gains are clamped to [0, ``GAIN_MAX``] 1/s; a
non-finite constraint row or QP solution gives the backup with reason
``nonfinite_intermediate``, so the returned command is always finite and within
the bounds.

Backup. v = 0 keeps the body disc where it is, so it is safe whenever the
current state is. With ``keep_omega`` the backup keeps the clipped nominal turn
rate: turning in place does not move the body either and lets the policy turn
away from what blocked it (no dead-lock facing an obstacle). Stale or
non-finite inputs give (0, 0).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pe_safety_filter.barriers import N_WALLS, assemble
from pe_safety_filter.exact_qp import INFEASIBLE, N_BOX, solve_rows
from pe_sim.dynamics import arc_step, wrap_angle
from pe_sim.safety_geometry import arc_point_distance, static_clearance, swept_static_clearance

TIERS = ("nominal", "qp", "tightened", "backup")
TIER_UNFILTERED, TIER_NOMINAL, TIER_QP, TIER_TIGHTENED, TIER_BACKUP = -1, 0, 1, 2, 3
#: Backup reasons; reason code k > 0 is BACKUP_REASONS[k - 1].
BACKUP_REASONS = ("nonfinite_state", "nonfinite_command", "stale_state", "solver_failure",
                  "exact_check_failed", "nonfinite_intermediate")
(REASON_NONE, REASON_NONFINITE_STATE, REASON_NONFINITE_COMMAND, REASON_STALE,
 REASON_SOLVER_FAILURE, REASON_CHECK_FAILED, REASON_NONFINITE_INTERMEDIATE) = range(7)
#: Codes of :func:`filter_single` for arguments it refuses (tier ``TIER_INVALID``).
TIER_INVALID = -2
INVALID_OBSTACLE_RADIUS, INVALID_TEAMMATE_RADIUS, INVALID_TEAMMATE_REACH = 1, 2, 3

# Layout of the float64 parameter vector of one robot.
(P_D, P_MARGIN, P_FACTOR, P_STEPS, P_BUFFER, P_DT, P_HW, P_HH, P_RADIUS, P_VMIN, P_VMAX, P_WMAX,
 P_W00, P_W01, P_W11, P_G_OBS, P_G_WALL, P_G_TM, P_TOL, P_KEEP_OMEGA) = range(20)
N_PARAMS = 20


def _require(ok: bool, name: str, value, what: str) -> None:
    if not ok:
        raise ValueError(f"{name}: {what}, got {value!r}")


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def check_setup(config, robot, half_width: float, half_height: float, dt: float) -> None:
    """Raise ``ValueError`` naming the argument when the arena (half sizes, m), the
    step (s), the robot or the config cannot give a meaningful filter."""
    for name, value in (("half_width", half_width), ("half_height", half_height), ("dt", dt)):
        _require(_finite(value) and value > 0.0, name, value, "must be finite and > 0")
    rn = f"robot '{robot.name}'"
    _require(_finite(robot.radius) and robot.radius > 0.0, f"{rn} radius", robot.radius,
             "must be finite and > 0")
    _require(_finite(robot.v_max) and robot.v_max > 0.0, f"{rn} v_max", robot.v_max,
             "must be finite and > 0")
    _require(_finite(robot.omega_max) and robot.omega_max > 0.0, f"{rn} omega_max", robot.omega_max,
             "must be finite and > 0")
    if robot.v_min > 0.0:
        raise ValueError(f"{rn}: v_min = {robot.v_min} > 0, so stopping is not "
                         "admissible and the filter has no safe backup")
    _require(_finite(robot.v_min), f"{rn} v_min", robot.v_min, "must be finite and <= 0")
    room = min(half_width, half_height) - robot.radius
    _require(room > 0.0, f"{rn} radius", robot.radius, "must be smaller than the arena's half sizes")
    check_config_values(config)
    _require(config.lookahead < room, "config lookahead", config.lookahead,
             f"lookahead + robot radius must be < the arena's smaller half size "
             f"{min(half_width, half_height)} m")
    _require(config.margin < room, "config margin", config.margin,
             f"margin + robot radius must be < the arena's smaller half size "
             f"{min(half_width, half_height)} m")


def check_config_values(config) -> None:
    """Raise ``ValueError`` naming the field when a ``FilterConfig`` built in code is
    outside the ranges the YAML loader enforces (see ``pe_safety_filter.config``)."""
    from pe_safety_filter.config import RANGES

    for name, (lo, hi) in RANGES.items():
        value = getattr(config, name)
        _require(_finite(value) and lo <= value <= hi, f"config {name}", value,
                 f"must be in [{lo:g}, {hi:g}]")
    _require(config.tighten_factor < 1.0, "config tighten_factor", config.tighten_factor,
             "must be < 1 (it shrinks the gains)")
    w = np.array(config.weight, dtype=np.float64)
    ok = (w.shape == (2, 2) and bool(np.all(np.isfinite(w))) and w[0, 1] == w[1, 0]
          and w[0, 0] > 0.0 and w[0, 0] * w[1, 1] - w[0, 1] ** 2 > 0.0)
    _require(ok, "config weight", config.weight, "must be finite, symmetric and positive definite")


def make_params(config, robot, half_width: float, half_height: float, dt: float) -> np.ndarray:
    """The parameter vector of one robot (``FilterConfig``, ``RobotSpec``, arena half
    sizes in m, step in s); ``ValueError`` naming the argument for invalid ones."""
    check_setup(config, robot, half_width, half_height, dt)
    W = config.weight
    p = np.zeros(N_PARAMS)
    p[P_D] = config.lookahead
    p[P_MARGIN] = config.margin
    p[P_FACTOR] = config.tighten_factor
    p[P_STEPS] = config.tighten_steps
    p[P_BUFFER] = config.robot_buffer
    p[P_DT] = dt
    p[P_HW] = half_width
    p[P_HH] = half_height
    p[P_RADIUS] = robot.radius
    p[P_VMIN] = robot.v_min
    p[P_VMAX] = robot.v_max
    p[P_WMAX] = robot.omega_max
    p[P_W00], p[P_W01], p[P_W11] = W[0][0], W[0][1], W[1][1]
    p[P_G_OBS] = config.gain_obstacle
    p[P_G_WALL] = config.gain_wall
    p[P_G_TM] = config.gain_teammate
    p[P_TOL] = config.feasibility_tol
    p[P_KEEP_OMEGA] = 1.0 if config.backup_keep_omega else 0.0
    return p


@numba.njit(cache=True, inline="always")
def clip(value, lo, hi):
    """The simulator's clip (non-finite values are handled before this is called)."""
    return min(max(value, lo), hi)


@numba.njit(cache=True)
def next_step_ok(x, y, th, v, w, dt, radius, obstacles, n_obs, half_w, half_h, margin, static_now,
                 teammates, tm_radii, tm_reach, n_tm):
    """Whether holding (v, w) for dt keeps the body safe at every time of the step (see
    the module docstring); ``th`` wrapped to [-pi, pi)."""
    if v == 0.0:
        return True
    travel = abs(v) * dt  # the centre moves at most this far: a sound shortcut when far away
    need = min(margin, static_now)
    if not static_now - travel >= need:
        c, _, _ = swept_static_clearance(x, y, th, v, w, dt, radius, obstacles, n_obs, half_w,
                                         half_h)
        if not c >= need:
            return False
    for j in range(n_tm):
        reach = radius + tm_radii[j] + tm_reach[j] + margin
        if math.hypot(x - teammates[j, 0], y - teammates[j, 1]) - travel >= reach:
            continue
        dj, _ = arc_point_distance(x, y, th, v, w, dt, teammates[j, 0], teammates[j, 1])
        if not dj - radius - tm_radii[j] - tm_reach[j] >= margin:
            return False
    return True


@numba.njit(cache=True)
def end_of_step_ok(x, y, th, v, w, dt, radius, obstacles, n_obs, half_w, half_h, margin, static_now,
                   teammates, tm_radii, tm_reach, n_tm):
    """The weaker check that looks at the end of the step only (kept for comparison
    in tests and the benchmark; the filter does not use it)."""
    if v == 0.0:
        return True
    nx, ny, _ = arc_step(x, y, th, v, w, dt)
    c, _ = static_clearance(nx, ny, radius, obstacles, n_obs, half_w, half_h)
    if not c >= min(margin, static_now):
        return False
    for j in range(n_tm):
        cj = math.hypot(nx - teammates[j, 0], ny - teammates[j, 1]) - radius - tm_radii[j] - tm_reach[j]
        if not cj >= margin:
            return False
    return True


@numba.njit(cache=True)
def input_reason(pose, u_nom, obstacles, n_obs, teammates, tm_radii, tm_reach, n_tm, gains, n_gains):
    """``REASON_NONFINITE_STATE`` / ``REASON_NONFINITE_COMMAND`` / ``REASON_NONE``."""
    for k in range(3):
        if not math.isfinite(pose[k]):
            return REASON_NONFINITE_STATE
    for i in range(n_obs):
        for k in range(3):
            if not math.isfinite(obstacles[i, k]):
                return REASON_NONFINITE_STATE
    for j in range(n_tm):
        if not (math.isfinite(tm_radii[j]) and math.isfinite(tm_reach[j])):
            return REASON_NONFINITE_STATE
        for k in range(3):
            if not math.isfinite(teammates[j, k]):
                return REASON_NONFINITE_STATE
    if not (math.isfinite(u_nom[0]) and math.isfinite(u_nom[1])):
        return REASON_NONFINITE_COMMAND
    for k in range(n_gains):
        if not math.isfinite(gains[k]):
            return REASON_NONFINITE_COMMAND
    return REASON_NONE


@numba.njit(cache=True)
def filter_one(pose, u_nom, obstacles, n_obs, teammates, tm_radii, tm_reach, n_tm, gains, n_gains,
               params, A, b, dist, An, bn, sol, act):
    """Filter one robot's command. Scratch: ``A`` (>= C, 2), ``b``, ``dist`` (>= C),
    ``An`` (>= C + 4, 2), ``bn`` (>= C + 4), ``sol`` (2,), ``act`` (2,) int64,
    with C = n_obs + 4 + n_tm.

    Returns (v, omega, dv, domega, correction_size, tier, reason, min_barrier,
    n_active, active0, active1); active indices in constraint order (-1 unused).
    """
    v_lo = params[P_VMIN]
    v_hi = params[P_VMAX]
    w_hi = params[P_WMAX]
    reason = input_reason(pose, u_nom, obstacles, n_obs, teammates, tm_radii, tm_reach, n_tm,
                          gains, n_gains)
    if reason == REASON_NONFINITE_COMMAND or not (math.isfinite(u_nom[0]) and math.isfinite(u_nom[1])):
        # Non-finite command (whatever the state): stop, correction reported as zero.
        return 0.0, 0.0, 0.0, 0.0, 0.0, TIER_BACKUP, reason, np.nan, 0, -1, -1
    r0 = clip(u_nom[0], v_lo, v_hi)
    r1 = clip(u_nom[1], -w_hi, w_hi)
    if reason == REASON_NONFINITE_STATE:
        cs = max(abs(r0) / v_hi, abs(r1) / w_hi)
        return 0.0, 0.0, -r0, -r1, cs, TIER_BACKUP, reason, np.nan, 0, -1, -1

    x, y, th = pose[0], pose[1], wrap_angle(pose[2])
    d = params[P_D]
    radius = params[P_RADIUS]
    half_w = params[P_HW]
    half_h = params[P_HH]
    dt = params[P_DT]
    margin = params[P_MARGIN]
    n_con = assemble(x, y, th, d, radius, obstacles, n_obs, half_w, half_h, teammates, tm_radii,
                     n_tm, params[P_G_OBS], params[P_G_WALL], params[P_G_TM], gains, n_gains,
                     params[P_BUFFER], True, A, b, dist)
    min_barrier = np.inf
    finite = True
    for k in range(n_con):
        min_barrier = min(min_barrier, dist[k])
        finite = finite and math.isfinite(A[k, 0]) and math.isfinite(A[k, 1]) and math.isfinite(b[k])
    if not finite:
        return 0.0, 0.0, -r0, -r1, max(abs(r0) / v_hi, abs(r1) / w_hi), TIER_BACKUP, \
            REASON_NONFINITE_INTERMEDIATE, min_barrier, 0, -1, -1
    static_now, _ = static_clearance(x, y, radius, obstacles, n_obs, half_w, half_h)

    n = n_con + N_BOX
    for k in range(n_con):
        An[k, 0] = A[k, 0]
        An[k, 1] = A[k, 1]
    An[n_con, 0], An[n_con, 1], bn[n_con] = 1.0, 0.0, v_lo
    An[n_con + 1, 0], An[n_con + 1, 1], bn[n_con + 1] = -1.0, 0.0, -v_hi
    An[n_con + 2, 0], An[n_con + 2, 1], bn[n_con + 2] = 0.0, 1.0, -w_hi
    An[n_con + 3, 0], An[n_con + 3, 1], bn[n_con + 3] = 0.0, -1.0, -w_hi

    solved_any = False
    scale = 1.0
    steps = int(params[P_STEPS])
    for attempt in range(steps + 1):
        for k in range(n_con):
            bn[k] = b[k] * scale
        n_act = solve_rows(An, bn, n, params[P_W00], params[P_W01], params[P_W11], r0, r1,
                           params[P_TOL], sol, act)
        scale *= params[P_FACTOR]
        if n_act == INFEASIBLE:
            continue
        if not (math.isfinite(sol[0]) and math.isfinite(sol[1])):
            return 0.0, 0.0, -r0, -r1, max(abs(r0) / v_hi, abs(r1) / w_hi), TIER_BACKUP, \
                REASON_NONFINITE_INTERMEDIATE, min_barrier, 0, -1, -1
        solved_any = True
        v = clip(sol[0], v_lo, v_hi) + 0.0  # + 0.0 turns -0.0 into 0.0
        w = clip(sol[1], -w_hi, w_hi) + 0.0
        if not next_step_ok(x, y, th, v, w, dt, radius, obstacles, n_obs, half_w, half_h, margin,
                            static_now, teammates, tm_radii, tm_reach, n_tm):
            continue
        if attempt > 0:
            tier = TIER_TIGHTENED
        elif n_act == 0:
            tier = TIER_NOMINAL
        else:
            tier = TIER_QP
        a0 = -1
        a1 = -1
        n_bar = 0
        for q in range(n_act):
            if act[q] < n_con:
                if n_bar == 0:
                    a0 = act[q]
                else:
                    a1 = act[q]
                n_bar += 1
        if a1 >= 0 and a1 < a0:
            a0, a1 = a1, a0
        dv = v - r0
        dw = w - r1
        cs = max(abs(dv) / v_hi, abs(dw) / w_hi)
        return v, w, dv, dw, cs, tier, REASON_NONE, min_barrier, n_bar, a0, a1

    w = r1 if params[P_KEEP_OMEGA] != 0.0 else 0.0
    reason = REASON_CHECK_FAILED if solved_any else REASON_SOLVER_FAILURE
    cs = max(abs(r0) / v_hi, abs(w - r1) / w_hi)
    return 0.0, w, -r0, w - r1, cs, TIER_BACKUP, reason, min_barrier, 0, -1, -1


@numba.njit(cache=True)
def invalid_argument(obstacles, n_obs, tm_radii, tm_reach, n_tm):
    """(``INVALID_*`` code or 0, row): obstacle radii must be > 0, teammate radii > 0,
    teammate reach >= 0 (non-finite values are left to the backup)."""
    for i in range(n_obs):
        if obstacles[i, 2] <= 0.0:
            return INVALID_OBSTACLE_RADIUS, i
    for j in range(n_tm):
        if tm_radii[j] <= 0.0:
            return INVALID_TEAMMATE_RADIUS, j
        if tm_reach[j] < 0.0:
            return INVALID_TEAMMATE_REACH, j
    return 0, -1


@numba.njit(cache=True, inline="always")
def _scratch(cap):
    """Work arrays of :func:`filter_one` for up to ``cap`` barrier rows: A, b, dist, the
    rows with the box (An, bn), the solution and its active set."""
    return (np.empty((cap, 2)), np.empty(cap), np.empty(cap), np.empty((cap + N_BOX, 2)),
            np.empty(cap + N_BOX), np.empty(2), np.empty(2, dtype=np.int64))


@numba.njit(cache=True)
def filter_single(pose, u_nom, obstacles, teammates, tm_radii, tm_reach, gains, params):
    """:func:`filter_one` with its own scratch (all obstacle and teammate rows used).

    Arguments it refuses give tier ``TIER_INVALID``, the ``INVALID_*`` code as the
    reason and the offending row as the 9th entry (the caller raises)."""
    n_obs = obstacles.shape[0]
    n_tm = teammates.shape[0]
    code, row = invalid_argument(obstacles, n_obs, tm_radii, tm_reach, n_tm)
    if code:
        return 0.0, 0.0, 0.0, 0.0, 0.0, TIER_INVALID, code, np.nan, row, -1, -1
    A, b, dist, An, bn, sol, act = _scratch(n_obs + N_WALLS + n_tm)
    return filter_one(pose, u_nom, obstacles, n_obs, teammates, tm_radii, tm_reach, n_tm, gains,
                      gains.shape[0], params, A, b, dist, An, bn, sol, act)


@numba.njit(cache=True)
def filter_batch(pose, u_nom, obstacles, n_obstacles, gains, robots, params, radius, reach,
                 teammate_index, u_out, correction_size, tier, reason, min_barrier):
    """Filter robots ``robots`` of every environment of a batch.

    ``pose`` (B, N, 3), ``u_nom`` (B, N, 2), ``obstacles`` (B, M, 3), ``n_obstacles``
    (B,), ``gains`` (B, N, G) or (0, 0, 0), ``params`` (N, N_PARAMS), ``radius`` and
    ``reach`` (N,), ``teammate_index`` (N, K) with -1 padding. Outputs (B, N) are
    written only for the filtered robots (``u_out`` must hold the pass-through).
    """
    n_batch = pose.shape[0]
    m = obstacles.shape[1]
    k_max = teammate_index.shape[1]
    cap = m + N_WALLS + k_max
    A, b, dist, An, bn, sol, act = _scratch(cap)
    tm = np.empty((k_max, 3))
    tm_r = np.empty(k_max)
    tm_s = np.empty(k_max)
    g = np.empty(cap)
    has_gains = gains.shape[0] > 0
    for e in range(n_batch):
        n_obs = n_obstacles[e]
        for ii in range(robots.shape[0]):
            i = robots[ii]
            n_tm = 0
            for kk in range(k_max):
                j = teammate_index[i, kk]
                if j < 0:
                    break
                tm[n_tm, 0] = pose[e, j, 0]
                tm[n_tm, 1] = pose[e, j, 1]
                tm[n_tm, 2] = pose[e, j, 2]
                tm_r[n_tm] = radius[j]
                tm_s[n_tm] = reach[j]
                n_tm += 1
            n_gains = 0
            if has_gains:
                # Gains are laid out (M obstacles, 4 walls, K teammates); drop padded obstacles.
                for k in range(n_obs):
                    g[k] = gains[e, i, k]
                for k in range(N_WALLS + n_tm):
                    g[n_obs + k] = gains[e, i, m + k]
                n_gains = n_obs + N_WALLS + n_tm
            res = filter_one(pose[e, i], u_nom[e, i], obstacles[e], n_obs, tm, tm_r, tm_s, n_tm, g,
                             n_gains, params[i], A, b, dist, An, bn, sol, act)
            u_out[e, i, 0] = res[0]
            u_out[e, i, 1] = res[1]
            correction_size[e, i] = res[4]
            tier[e, i] = res[5]
            reason[e, i] = res[6]
            min_barrier[e, i] = res[7]
