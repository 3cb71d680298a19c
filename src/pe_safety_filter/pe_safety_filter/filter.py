"""The safety filter: :class:`SafetyFilter` for one robot (the ROS node's path) and
:class:`BatchSafetyFilter` for every robot of a :class:`pe_sim.batch.BatchSim` batch.

Commands are u = (v m/s, omega rad/s); poses (x m, y m, theta rad) in the world
frame; obstacles rows (cx, cy, r) in metres. The promise: a robot that starts
safe (body clearance >= 0 against obstacles, walls and teammates) stays safe at
every time of the next step of dt with the returned command, whatever the
nominal command, and the command is finite and within the robot's bounds --
the exact whole-step check of :mod:`pe_safety_filter.kernel` guarantees it, the
VCP-CBF QP (:mod:`pe_safety_filter.barriers`) makes the change the least one
(in the W-norm) that keeps the barriers, and the stop backup is always there.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from pe_safety_filter.barriers import N_WALLS, assemble
from pe_safety_filter.config import FilterConfig
from pe_safety_filter.kernel import (
    BACKUP_REASONS,
    INVALID_OBSTACLE_RADIUS,
    INVALID_TEAMMATE_RADIUS,
    N_PARAMS,
    P_FACTOR,
    REASON_CHECK_FAILED,
    REASON_NONE,
    REASON_NONFINITE_INTERMEDIATE,
    REASON_SOLVER_FAILURE,
    REASON_STALE,
    TIER_BACKUP,
    TIER_INVALID,
    TIER_NOMINAL,
    TIER_QP,
    TIER_TIGHTENED,
    TIER_UNFILTERED,
    TIERS,
    filter_batch,
    filter_single,
    input_reason,
    invalid_argument,
    make_params,
    next_step_ok,
)
from pe_safety_filter.osqp_qp import OsqpQP
from pe_sim.dynamics import wrap_angle
from pe_sim.safety_geometry import static_clearance
from pe_sim.scenario import RobotSpec, Scenario

#: Intervention threshold on the scaled correction (docs/metrics.md).
INTERVENTION_THRESHOLD = 1e-3

__all__ = [
    "BACKUP_REASONS", "INTERVENTION_THRESHOLD", "TIERS", "TIER_BACKUP", "TIER_NOMINAL", "TIER_QP",
    "TIER_TIGHTENED", "TIER_UNFILTERED", "BatchFilterStats", "BatchSafetyFilter", "FilterResult",
    "SafetyFilter",
]

_OSQP_SAME = 1e-6
_NO_ACTIVE = np.zeros(0, dtype=np.int64)
_NO_ACTIVE.flags.writeable = False


@dataclass(slots=True)
class FilterResult:
    """Outcome of one filter call.

    * ``u_safe`` (2,): the command to send (v m/s, omega rad/s), inside the bounds.
    * ``intervened``: ``correction_size > 1e-3``.
    * ``correction`` (2,): ``u_safe - clip(u_nom)``; zeros when ``u_nom`` is not finite.
    * ``correction_size``: max(|dv| / v_max, |domega| / omega_max).
    * ``backup_reason``: None, or one of :data:`BACKUP_REASONS`.
    * ``tier``: "nominal", "qp", "tightened" or "backup" (what acted).
    * ``active``: indices (constraint order: obstacles, walls +x -x +y -y, teammates)
      of the barrier constraints that define the QP solution.
    * ``min_barrier``: least barrier value at the current state, as a signed
      distance (m) of the virtual point from the inflated set (nan when the state
      was not evaluated: non-finite or stale input).
    * ``solve_time_s``: compute time of the call (s).
    """

    u_safe: np.ndarray
    intervened: bool
    correction: np.ndarray
    correction_size: float
    backup_reason: str | None
    tier: str
    active: np.ndarray
    min_barrier: float
    solve_time_s: float

    @property
    def backup(self) -> bool:
        return self.tier == "backup"


def _raise_invalid(code: int, row: int, obstacles, radii, reach) -> None:
    if code == INVALID_OBSTACLE_RADIUS:
        raise ValueError(f"obstacles: radius must be > 0, got {float(obstacles[row, 2])!r} in row {row}")
    if code == INVALID_TEAMMATE_RADIUS:
        raise ValueError(f"teammate_radii: must be > 0, got {float(radii[row])!r} at index {row}")
    raise ValueError(f"teammate_reach: must be >= 0, got {float(reach[row])!r} at index {row}")


def _result(res, t0: float) -> FilterResult:
    u0, u1, c0, c1, cs, tier, reason, mb, n_act, a0, a1 = res
    if n_act == 0:
        active = _NO_ACTIVE
    elif n_act == 1:
        active = np.array((a0,), dtype=np.int64)
    else:
        active = np.array((a0, a1), dtype=np.int64)
    return FilterResult(
        np.array((u0, u1)), cs > INTERVENTION_THRESHOLD, np.array((c0, c1)), cs,
        BACKUP_REASONS[reason - 1] if reason else None, TIERS[tier], active, mb,
        time.perf_counter() - t0)


def _f64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


class SafetyFilter:
    """The VCP-CBF filter for one robot (``robot``) in an arena of half sizes
    ``half_width`` x ``half_height`` (m), stepped every ``dt`` seconds."""

    def __init__(
        self,
        config: FilterConfig,
        robot: RobotSpec,
        half_width: float,
        half_height: float,
        dt: float,
    ) -> None:
        self.config = config
        self.robot = robot
        self.half_width = float(half_width)
        self.half_height = float(half_height)
        self.dt = float(dt)
        self.params = make_params(config, robot, self.half_width, self.half_height, self.dt)
        self._max_age = config.max_state_age
        self._default_reach = robot.v_max * self.dt
        self._no_tm = np.zeros((0, 3))
        self._no_vec = np.zeros(0)
        self._osqp: OsqpQP | None = None
        if config.solver == "osqp":
            self._osqp = OsqpQP(config.weight_matrix, [robot.v_min, -robot.omega_max],
                                [robot.v_max, robot.omega_max], settings=config.osqp)

    def filter(
        self,
        pose: np.ndarray,
        u_nom: np.ndarray,
        obstacles: np.ndarray,
        teammates: np.ndarray | None = None,
        teammate_radii: np.ndarray | None = None,
        gains: np.ndarray | None = None,
        state_age: float = 0.0,
        teammate_reach: np.ndarray | None = None,
    ) -> FilterResult:
        """Filter the nominal command ``u_nom`` (2,) of the robot at ``pose`` (3,).

        ``obstacles`` (M, 3); ``teammates`` (K, 3) poses with ``teammate_radii``
        (K,) (default: this robot's radius) and ``teammate_reach`` (K,), the
        distance (m) a teammate may cover in one step (default: this robot's
        v_max * dt); ``gains`` (M + 4 + K,) class-K gains (1/s) in constraint
        order (default: the config's per-kind gains; clamped to [0, GAIN_MAX]);
        ``state_age`` (s, >= 0) of the state the command was computed from.
        The heading is wrapped to [-pi, pi) first.

        Raises ``ValueError`` naming the argument for wrong shapes, an obstacle
        radius <= 0, teammate radii <= 0, teammate reach < 0 or a negative
        ``state_age``; non-finite values give the backup instead.
        """
        t0 = time.perf_counter()
        pose = _f64(pose)
        u_nom = _f64(u_nom)
        obstacles = _f64(obstacles)
        if pose.shape != (3,):
            raise ValueError(f"pose: expected shape (3,) (x, y, theta), got {pose.shape}")
        if u_nom.shape != (2,):
            raise ValueError(f"u_nom: expected shape (2,) (v, omega), got {u_nom.shape}")
        if obstacles.ndim != 2 or obstacles.shape[1] != 3:
            if obstacles.size == 0:
                obstacles = self._no_tm
            else:
                raise ValueError(f"obstacles: expected shape (M, 3) (cx, cy, r), got {obstacles.shape}")
        if teammates is None:
            teammates, radii, reach = self._no_tm, self._no_vec, self._no_vec
        else:
            teammates, radii, reach = self._teammates(teammates, teammate_radii, teammate_reach)
        if gains is None:
            gains = self._no_vec
        else:
            gains = _f64(gains)
            n_con = obstacles.shape[0] + N_WALLS + teammates.shape[0]
            if gains.shape != (n_con,):
                raise ValueError(f"gains: expected shape ({n_con},) (obstacles, 4 walls, teammates), "
                                 f"got {gains.shape}")
        if state_age < 0.0:
            raise ValueError(f"state_age: must be >= 0 s, got {state_age!r}")
        if not state_age <= self._max_age:  # also catches nan
            return self._stale(u_nom, t0)
        if self._osqp is not None:
            return self._filter_osqp(pose, u_nom, obstacles, teammates, radii, reach, gains, t0)
        res = filter_single(pose, u_nom, obstacles, teammates, radii, reach, gains, self.params)
        if res[5] == TIER_INVALID:
            _raise_invalid(res[6], res[8], obstacles, radii, reach)
        return _result(res, t0)

    # -- helpers -------------------------------------------------------------------------
    def _teammates(self, teammates, radii, reach):
        teammates = _f64(teammates)
        if teammates.size == 0:
            teammates = self._no_tm
        elif teammates.ndim != 2 or teammates.shape[1] != 3:
            raise ValueError(f"teammates: expected shape (K, 3) (x, y, theta per row), "
                             f"got {teammates.shape}")
        k = teammates.shape[0]
        radii = np.full(k, self.robot.radius) if radii is None else _f64(radii)
        reach = np.full(k, self._default_reach) if reach is None else _f64(reach)
        if radii.shape != (k,):
            raise ValueError(f"teammate_radii: expected shape ({k},), got {radii.shape}")
        if reach.shape != (k,):
            raise ValueError(f"teammate_reach: expected shape ({k},), got {reach.shape}")
        return teammates, radii, reach

    def _stale(self, u_nom: np.ndarray, t0: float) -> FilterResult:
        r = self.robot
        if np.all(np.isfinite(u_nom)):
            c = -np.array((min(max(u_nom[0], r.v_min), r.v_max),
                           min(max(u_nom[1], -r.omega_max), r.omega_max)))
            cs = max(abs(c[0]) / r.v_max, abs(c[1]) / r.omega_max)
        else:
            c, cs = np.zeros(2), 0.0
        return FilterResult(np.zeros(2), cs > INTERVENTION_THRESHOLD, c, cs,
                            BACKUP_REASONS[REASON_STALE - 1], "backup", _NO_ACTIVE, math.nan,
                            time.perf_counter() - t0)

    def _filter_osqp(self, pose, u_nom, obstacles, teammates, radii, reach, gains, t0) -> FilterResult:
        """The same tiers as the kernel, with OSQP as the QP solver (reference path)."""
        p = self.params
        r = self.robot
        n_obs, n_tm = obstacles.shape[0], teammates.shape[0]
        code, row = invalid_argument(obstacles, n_obs, radii, reach, n_tm)
        if code:
            _raise_invalid(code, row, obstacles, radii, reach)
        reason = input_reason(pose, u_nom, obstacles, n_obs, teammates, radii, reach, n_tm, gains,
                              gains.shape[0])
        if reason != REASON_NONE:
            # The kernel's answer for invalid input is the same for both solvers.
            return _result(filter_single(pose, u_nom, obstacles, teammates, radii, reach, gains, p), t0)
        pose = np.array((pose[0], pose[1], wrap_angle(pose[2])))
        ref = np.array((min(max(u_nom[0], r.v_min), r.v_max),
                        min(max(u_nom[1], -r.omega_max), r.omega_max)))
        n_con = n_obs + N_WALLS + n_tm
        A, b, dist = np.empty((n_con, 2)), np.empty(n_con), np.empty(n_con)
        cfg = self.config
        assemble(pose[0], pose[1], pose[2], cfg.lookahead, r.radius, obstacles, n_obs,
                 self.half_width, self.half_height, teammates, radii, n_tm, cfg.gain_obstacle,
                 cfg.gain_wall, cfg.gain_teammate, gains, gains.shape[0], cfg.robot_buffer, True,
                 A, b, dist)
        if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
            cs = max(abs(ref[0]) / r.v_max, abs(ref[1]) / r.omega_max)
            return _result((0.0, 0.0, -ref[0], -ref[1], cs, TIER_BACKUP, REASON_NONFINITE_INTERMEDIATE,
                            float(np.min(dist)), 0, -1, -1), t0)
        static_now, _ = static_clearance(pose[0], pose[1], r.radius, obstacles, n_obs,
                                         self.half_width, self.half_height)
        solved_any = False
        scale = 1.0
        for attempt in range(cfg.tighten_steps + 1):
            u, status = self._osqp.solve(A, b * scale, ref)
            scale *= p[P_FACTOR]
            if status != "solved" or not np.all(np.isfinite(u)):
                continue
            solved_any = True
            v = min(max(u[0], r.v_min), r.v_max) + 0.0
            w = min(max(u[1], -r.omega_max), r.omega_max) + 0.0
            if max(abs(v - ref[0]) / r.v_max, abs(w - ref[1]) / r.omega_max) <= _OSQP_SAME:
                v, w = ref[0], ref[1]  # OSQP's answer for an inactive problem is u_ref to its tolerance
            if not next_step_ok(pose[0], pose[1], pose[2], v, w, self.dt, r.radius, obstacles, n_obs,
                                self.half_width, self.half_height, cfg.margin, static_now,
                                teammates, radii, reach, n_tm):
                continue
            dv, dw = v - ref[0], w - ref[1]
            cs = max(abs(dv) / r.v_max, abs(dw) / r.omega_max)
            slack = A @ np.array((v, w)) - b * scale / p[P_FACTOR]
            active = np.flatnonzero(np.abs(slack) <= 1e-6).astype(np.int64)
            tier = TIER_TIGHTENED if attempt else (TIER_NOMINAL if cs == 0.0 else TIER_QP)
            result = _result((v, w, dv, dw, cs, tier, REASON_NONE, float(dist.min()), 0, -1, -1), t0)
            result.active = active
            return result
        w = ref[1] if cfg.backup_keep_omega else 0.0
        reason = REASON_CHECK_FAILED if solved_any else REASON_SOLVER_FAILURE
        cs = max(abs(ref[0]) / r.v_max, abs(w - ref[1]) / r.omega_max)
        return _result((0.0, w, -ref[0], w - ref[1], cs, TIER_BACKUP, reason, float(dist.min()), 0,
                        -1, -1), t0)


@dataclass
class BatchFilterStats:
    """Per-call statistics of :meth:`BatchSafetyFilter.filter`, arrays (B, N).

    ``tier`` holds ``TIER_*`` codes (-1 for robots not filtered), ``reason`` the
    backup reason code (0 none, k > 0: ``BACKUP_REASONS[k - 1]``)."""

    intervened: np.ndarray
    correction_size: np.ndarray
    backup: np.ndarray
    tier: np.ndarray
    reason: np.ndarray
    min_barrier: np.ndarray


class BatchSafetyFilter:
    """The filter for every robot of a batch shaped like :class:`pe_sim.batch.BatchSim`
    (one compiled loop over environments and robots, one core). Teammates are the
    other robots of the same role; opponents are not constraints."""

    def __init__(self, config: FilterConfig, scenario: Scenario) -> None:
        self.config = config
        self.scenario = scenario
        robots = scenario.robots
        n = len(robots)
        self.params = np.zeros((n, N_PARAMS))
        for i, robot in enumerate(robots):
            self.params[i] = make_params(config, robot, scenario.half_width, scenario.half_height,
                                         scenario.dt)
        self.radius = np.array([r.radius for r in robots])
        self.reach = np.array([r.v_max * scenario.dt for r in robots])
        self.v_max = np.array([r.v_max for r in robots])
        self.omega_max = np.array([r.omega_max for r in robots])
        mates = [[j for j in range(n) if j != i and robots[j].role == robots[i].role] for i in range(n)]
        self.max_teammates = max((len(m) for m in mates), default=0)
        self.teammate_index = np.full((n, self.max_teammates), -1, dtype=np.int64)
        for i, m in enumerate(mates):
            self.teammate_index[i, :len(m)] = m
        self._all = np.arange(n, dtype=np.int64)
        self._no_gains = np.zeros((0, 0, 0))

    def num_constraints(self, max_obstacles: int) -> int:
        """Length G of the gains axis: M obstacle slots, 4 walls, K teammate slots."""
        return max_obstacles + N_WALLS + self.max_teammates

    def filter(
        self,
        pose: np.ndarray,
        u_nom: np.ndarray,
        obstacles: np.ndarray,
        n_obstacles: np.ndarray,
        gains: np.ndarray | None = None,
        robots: np.ndarray | None = None,
    ) -> tuple[np.ndarray, BatchFilterStats]:
        """Filter ``u_nom`` (B, N, 2) for robots at ``pose`` (B, N, 3) among
        ``obstacles`` (B, M, 3) of which the first ``n_obstacles`` (B,) are present.

        ``gains`` (B, N, M + 4 + K): per-constraint gains, slots of absent
        obstacles and teammates ignored. ``robots``: indices of the robots to
        filter (default all); the others' commands pass through unchanged.
        Returns ``(u_safe (B, N, 2), stats)``.
        """
        pose = _f64(pose)
        u_nom = _f64(u_nom)
        obstacles = _f64(obstacles)
        n_obstacles = np.ascontiguousarray(n_obstacles, dtype=np.int64)
        B, N = pose.shape[:2]
        if pose.shape != (B, N, 3) or u_nom.shape != (B, N, 2) or N != len(self.radius):
            raise ValueError(f"expected pose (B, {len(self.radius)}, 3) and u_nom (B, N, 2), got "
                             f"{pose.shape} and {u_nom.shape}")
        if obstacles.ndim != 3 or obstacles.shape[0] != B or obstacles.shape[2] != 3:
            raise ValueError(f"expected obstacles (B, M, 3), got {obstacles.shape}")
        if n_obstacles.shape != (B,) or np.any(n_obstacles > obstacles.shape[1]) or np.any(n_obstacles < 0):
            raise ValueError("n_obstacles: must be (B,) with 0 <= n <= M")
        present = np.arange(obstacles.shape[1]) < n_obstacles[:, None]
        bad = present & (obstacles[:, :, 2] <= 0.0)
        if bad.any():
            e, k = np.argwhere(bad)[0]
            raise ValueError(f"obstacles: radius must be > 0, got {float(obstacles[e, k, 2])!r} in "
                             f"environment {e}, row {k}")
        if gains is None:
            gains = self._no_gains
        else:
            gains = _f64(gains)
            G = self.num_constraints(obstacles.shape[1])
            if gains.shape != (B, N, G):
                raise ValueError(f"gains must have shape ({B}, {N}, {G}), got {gains.shape}")
        robots = self._all if robots is None else np.ascontiguousarray(robots, dtype=np.int64).reshape(-1)
        if robots.size and (robots.min() < 0 or robots.max() >= N):
            raise ValueError(f"robot indices must be in [0, {N}), got {robots}")
        u_out = u_nom.copy()
        size = np.zeros((B, N))
        tier = np.full((B, N), TIER_UNFILTERED, dtype=np.int8)
        reason = np.zeros((B, N), dtype=np.int8)
        min_barrier = np.full((B, N), np.nan)
        filter_batch(pose, u_nom, obstacles, n_obstacles, gains, robots, self.params, self.radius,
                     self.reach, self.teammate_index, u_out, size, tier, reason, min_barrier)
        stats = BatchFilterStats(
            intervened=size > INTERVENTION_THRESHOLD, correction_size=size,
            backup=tier == TIER_BACKUP, tier=tier, reason=reason, min_barrier=min_barrier)
        return u_out, stats
