"""The vectorised simulation core: B independent pursuit-evasion episodes stepped
in one call.

State layout (world frame, metres, radians, seconds):

* ``pose``        (B, N, 3)  x, y, theta of each robot
* ``velocity``    (B, N, 2)  the (v, omega) command applied in the last step
* ``obstacles``   (B, M, 3)  centre x, y and radius; rows past ``n_obstacles`` unused
* ``n_obstacles`` (B,)       obstacles present in each episode
* ``step_count``  (B,)       steps taken in the current episode
* ``episode_seed`` (B,)      the seed that generated each current episode

Every episode is a pure function of its seed (see :mod:`pe_sim.counter_rng`);
``reset(seed)`` starts episodes ``seed, seed + 1, ..., seed + B - 1`` and each
auto-reset takes the next unused seed in environment order. The single-episode
API is this class with B = 1.

Physics: commands are clipped to each robot's bounds (non-finite values become
0, i.e. stop) and integrated exactly along the arc. Obstacles and walls are
solid: a body that would end a step overlapping one is pushed back to touching
it and the step is recorded as a contact. Teammates' bodies are not solid.

Violations are measured over the whole step, not at its end: a robot-step is a
violation when the body overlaps an obstacle, leaves the arena or overlaps a
teammate at any time within the step, on the arc the command drives (before
any push-out; :func:`pe_sim.safety_geometry.swept_static_clearance`, closed
form, and :func:`pe_sim.safety_geometry.pair_swept_clearance` for teammates).
``StepResult.contact_pose`` is the pose at the least clearance of the step, so
a recording shows the overlap rather than the pushed-out pose. The episode terminates
when any pursuer's centre comes within ``capture_radius`` of an evader's, and is
truncated after ``max_steps`` steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from pe_sim.counter_rng import STREAM_OBSTACLES, STREAM_START, uniform
from pe_sim.dynamics import arc_step, wrap_angle
from pe_sim.safety_geometry import (
    KIND_NONE,
    KIND_TEAMMATE,
    PAIR_STACK,
    pair_swept_clearance_ends,
    static_clearance,
    swept_clearance_from,
)
from pe_sim.scenario import Scenario

ROLE_PURSUER, ROLE_EVADER = 0, 1
_CONTACT_PUSH = 1e-9  # m; a resolved contact leaves the body this far outside the surface
_PAIR_TOL = 1e-10     # m; teammate clearance within a step is exact to this near contact
_MAX_PLACEMENT_TRIES = 2000


@dataclass(frozen=True)
class RobotArrays:
    """Per-robot constants of a scenario as arrays (N,)."""

    radius: np.ndarray
    v_min: np.ndarray
    v_max: np.ndarray
    omega_max: np.ndarray
    role: np.ndarray

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> RobotArrays:
        robots = scenario.robots
        return cls(
            radius=np.array([r.radius for r in robots], dtype=np.float64),
            v_min=np.array([r.v_min for r in robots], dtype=np.float64),
            v_max=np.array([r.v_max for r in robots], dtype=np.float64),
            omega_max=np.array([r.omega_max for r in robots], dtype=np.float64),
            role=np.array([ROLE_PURSUER if r.role == "pursuer" else ROLE_EVADER for r in robots],
                          dtype=np.int64),
        )


@dataclass
class StepResult:
    """What one batch step reports (B environments, N robots).

    ``reward``, ``violation``, ``contact``, ``clearance`` and ``violation_kind``
    describe the step just taken (per robot). For environments where ``done``,
    ``final_*`` hold the last state of the finished episode (rows in the order
    of ``np.flatnonzero(done)``) and ``final_seed``/``final_steps`` identify it;
    the live arrays of the simulator already hold the next episode."""

    reward: np.ndarray            # (B, N) float64
    terminated: np.ndarray        # (B,) bool: capture
    truncated: np.ndarray         # (B,) bool: time limit without capture
    violation: np.ndarray         # (B, N) bool: body overlapped obstacle/teammate or left the arena
                                  #   at some time within the step
    contact: np.ndarray           # (B, N) bool: pushed back by an obstacle or a wall at the end
    clearance: np.ndarray         # (B, N) float64: least body clearance within this step (m)
    violation_kind: np.ndarray    # (B, N) int8: safety_geometry.KIND_*
    pursuer_distance: np.ndarray  # (B,) least pursuer-evader centre distance after the step (m)
    final_pose: np.ndarray        # (D, N, 3)
    final_velocity: np.ndarray    # (D, N, 2)
    final_obstacles: np.ndarray   # (D, M, 3)
    final_n_obstacles: np.ndarray  # (D,)
    final_seed: np.ndarray        # (D,)
    final_steps: np.ndarray       # (D,)
    contact_pose: np.ndarray | None = None   # (B, N, 3): pose at the least clearance of the
                                             #   step, on the commanded arc (before push-out)
    contact_time: np.ndarray | None = None   # (B, N): when, in s after the step's start

    @property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated


# --------------------------------------------------------------------------- reset kernels


@numba.njit(cache=True)
def _sample_obstacles(seed, fixed, count_lo, count_hi, r_lo, r_hi, min_gap, wall_margin,
                      half_w, half_h, out):
    """Fill ``out`` (M, 3) for one episode; returns how many obstacles were placed."""
    n = 0
    for k in range(fixed.shape[0]):
        out[n, 0] = fixed[k, 0]
        out[n, 1] = fixed[k, 1]
        out[n, 2] = fixed[k, 2]
        n += 1
    counter = 0
    wanted = count_lo + int(uniform(seed, STREAM_OBSTACLES, counter) * (count_hi - count_lo + 1))
    counter += 1
    for _ in range(min(wanted, count_hi)):
        for _try in range(_MAX_PLACEMENT_TRIES):
            r = r_lo + (r_hi - r_lo) * uniform(seed, STREAM_OBSTACLES, counter)
            span_x = half_w - wall_margin - r
            span_y = half_h - wall_margin - r
            x = (2.0 * uniform(seed, STREAM_OBSTACLES, counter + 1) - 1.0) * span_x
            y = (2.0 * uniform(seed, STREAM_OBSTACLES, counter + 2) - 1.0) * span_y
            counter += 3
            if span_x <= 0.0 or span_y <= 0.0:
                break
            ok = True
            for j in range(n):
                if math.hypot(x - out[j, 0], y - out[j, 1]) - r - out[j, 2] < min_gap:
                    ok = False
                    break
            if ok:
                out[n, 0] = x
                out[n, 1] = y
                out[n, 2] = r
                n += 1
                break
    for k in range(n, out.shape[0]):
        out[k, 0] = 0.0
        out[k, 1] = 0.0
        out[k, 2] = 0.0
    return n


@numba.njit(cache=True)
def _sample_start(seed, obstacles, n_obs, radius, role, wall_margin, obstacle_clearance,
                  sep_lo, sep_hi, teammate_sep, half_w, half_h, pose):
    """Fill ``pose`` (N, 3) with a start state for one episode."""
    counter = 0
    for i in range(pose.shape[0]):
        for _try in range(_MAX_PLACEMENT_TRIES):
            x = (2.0 * uniform(seed, STREAM_START, counter) - 1.0) * (half_w - wall_margin)
            y = (2.0 * uniform(seed, STREAM_START, counter + 1) - 1.0) * (half_h - wall_margin)
            counter += 2
            c, _ = static_clearance(x, y, radius[i], obstacles, n_obs, half_w, half_h)
            ok = c >= obstacle_clearance
            for j in range(i):
                if not ok:
                    break
                d = math.hypot(x - pose[j, 0], y - pose[j, 1])
                if role[i] != role[j]:
                    ok = sep_lo <= d <= sep_hi
                else:
                    ok = d >= teammate_sep + radius[i] + radius[j]
            if ok:
                break
        pose[i, 0] = x
        pose[i, 1] = y
        pose[i, 2] = (2.0 * uniform(seed, STREAM_START, counter) - 1.0) * math.pi
        counter += 1


@numba.njit(cache=True)
def _reset_envs(envs, seeds, fixed, count_lo, count_hi, r_lo, r_hi, min_gap, obs_wall_margin,
                radius, role, wall_margin, obstacle_clearance, sep_lo, sep_hi, teammate_sep,
                half_w, half_h, pose, velocity, obstacles, n_obstacles, step_count, episode_seed):
    for k in range(envs.shape[0]):
        b = envs[k]
        seed = seeds[k]
        n = _sample_obstacles(seed, fixed, count_lo, count_hi, r_lo, r_hi, min_gap,
                              obs_wall_margin, half_w, half_h, obstacles[b])
        n_obstacles[b] = n
        _sample_start(seed, obstacles[b], n, radius, role, wall_margin, obstacle_clearance,
                      sep_lo, sep_hi, teammate_sep, half_w, half_h, pose[b])
        velocity[b, :, :] = 0.0
        step_count[b] = 0
        episode_seed[b] = seed


# --------------------------------------------------------------------------- step kernel


@numba.njit(cache=True, inline="always")
def _clip_command(value, lo, hi):
    if not math.isfinite(value):
        return 0.0 if lo <= 0.0 <= hi else lo
    return min(max(value, lo), hi)


@numba.njit(cache=True, inline="always")
def _resolve_contacts(x, y, r, obstacles, n_obs, half_w, half_h):
    """Push a body disc out of obstacles and back inside the arena (to touching)."""
    for _ in range(3):
        moved = False
        for k in range(n_obs):
            dx = x - obstacles[k, 0]
            dy = y - obstacles[k, 1]
            d = math.hypot(dx, dy)
            reach = r + obstacles[k, 2]
            if d < reach:
                if d < 1e-12:
                    dx, dy, d = 1.0, 0.0, 1.0
                scale = (reach + _CONTACT_PUSH) / d
                x = obstacles[k, 0] + dx * scale
                y = obstacles[k, 1] + dy * scale
                moved = True
        lim_x = half_w - r - _CONTACT_PUSH
        lim_y = half_h - r - _CONTACT_PUSH
        if abs(x) > lim_x or abs(y) > lim_y:
            x = min(max(x, -lim_x), lim_x)
            y = min(max(y, -lim_y), lim_y)
            moved = True
        if not moved:
            break
    return x, y


@numba.njit(cache=True, inline="always")
def _least_pe_distance(pose, role):
    best = np.inf
    n = pose.shape[0]
    for i in range(n):
        if role[i] != ROLE_PURSUER:
            continue
        for j in range(n):
            if role[j] == ROLE_EVADER:
                best = min(best, math.hypot(pose[i, 0] - pose[j, 0], pose[i, 1] - pose[j, 1]))
    return best


@numba.njit(cache=True)
def _step_envs(actions, pose, velocity, obstacles, n_obstacles, step_count,
               radius, v_min, v_max, omega_max, role, half_w, half_h, dt, max_steps,
               capture_radius, w_capture, w_timeout, w_shaping, w_contact,
               reward, terminated, truncated, violation, contact, clearance, kind, pe_distance,
               start, arc_end, contact_pose, contact_time):
    n_envs, n_robots = pose.shape[0], pose.shape[1]
    stack_lo = np.empty(PAIR_STACK)
    stack_hi = np.empty(PAIR_STACK)
    for b in range(n_envs):
        before = _least_pe_distance(pose[b], role)
        n_obs = n_obstacles[b]
        for i in range(n_robots):
            v = _clip_command(actions[b, i, 0], v_min[i], v_max[i])
            w = _clip_command(actions[b, i, 1], -omega_max[i], omega_max[i])
            velocity[b, i, 0] = v
            velocity[b, i, 1] = w
            x0, y0, th0 = pose[b, i, 0], pose[b, i, 1], pose[b, i, 2]
            start[b, i, 0] = x0
            start[b, i, 1] = y0
            start[b, i, 2] = th0
            x, y, th = arc_step(x0, y0, th0, v, w, dt)
            arc_end[b, i, 0] = x
            arc_end[b, i, 1] = y
            c, k, t = swept_clearance_from(x0, y0, wrap_angle(th0), v, w, dt, x, y, radius[i],
                                           obstacles[b], n_obs, half_w, half_h)
            clearance[b, i] = c
            kind[b, i] = k if c < 0.0 else KIND_NONE
            violation[b, i] = c < 0.0
            if t == 0.0:
                cx, cy, cth = x0, y0, th0
            elif t == dt:
                cx, cy, cth = x, y, th
            else:
                cx, cy, cth = arc_step(x0, y0, th0, v, w, t)
            contact_pose[b, i, 0] = cx
            contact_pose[b, i, 1] = cy
            contact_pose[b, i, 2] = cth
            contact_time[b, i] = t
            if t == dt:
                c_end = c
            else:
                c_end, _ = static_clearance(x, y, radius[i], obstacles[b], n_obs, half_w, half_h)
            contact[b, i] = c_end < 0.0
            if c_end < 0.0:
                x, y = _resolve_contacts(x, y, radius[i], obstacles[b], n_obs, half_w, half_h)
            pose[b, i, 0] = x
            pose[b, i, 1] = y
            pose[b, i, 2] = th
        for i in range(n_robots):
            for j in range(i + 1, n_robots):
                if role[i] != role[j]:
                    continue
                r_sum = radius[i] + radius[j]
                c_end = math.hypot(pose[b, i, 0] - pose[b, j, 0],
                                   pose[b, i, 1] - pose[b, j, 1]) - r_sum
                # Skip the arcs when they cannot come closer than what each robot already
                # has (the pair distance changes at most |v_i| + |v_j| per second).
                c0 = math.hypot(start[b, i, 0] - start[b, j, 0],
                                start[b, i, 1] - start[b, j, 1]) - r_sum
                c1 = math.hypot(arc_end[b, i, 0] - arc_end[b, j, 0],
                                arc_end[b, i, 1] - arc_end[b, j, 1]) - r_sum
                lower = 0.5 * (c0 + c1 - (abs(velocity[b, i, 0]) + abs(velocity[b, j, 0])) * dt)
                if min(lower, c_end) >= max(clearance[b, i], clearance[b, j], 0.0):
                    continue
                # Along both commanded arcs, and at the end after any push-out.
                c, t = pair_swept_clearance_ends(
                    start[b, i, 0], start[b, i, 1], start[b, i, 2], velocity[b, i, 0],
                    velocity[b, i, 1], start[b, j, 0], start[b, j, 1], start[b, j, 2],
                    velocity[b, j, 0], velocity[b, j, 1], dt, r_sum, _PAIR_TOL,
                    arc_end[b, i, 0], arc_end[b, i, 1], arc_end[b, j, 0], arc_end[b, j, 1],
                    stack_lo, stack_hi)
                if c_end < c:
                    c, t = c_end, dt
                for m in (i, j):
                    if c < clearance[b, m]:
                        clearance[b, m] = c
                        if c_end <= c:
                            contact_pose[b, m, 0] = pose[b, m, 0]
                            contact_pose[b, m, 1] = pose[b, m, 1]
                            contact_pose[b, m, 2] = pose[b, m, 2]
                        else:
                            px, py, pth = arc_step(start[b, m, 0], start[b, m, 1], start[b, m, 2],
                                                   velocity[b, m, 0], velocity[b, m, 1], t)
                            contact_pose[b, m, 0] = px
                            contact_pose[b, m, 1] = py
                            contact_pose[b, m, 2] = pth
                        contact_time[b, m] = t
                    if c < 0.0:
                        if not violation[b, m]:
                            kind[b, m] = KIND_TEAMMATE
                        violation[b, m] = True
        after = _least_pe_distance(pose[b], role)
        pe_distance[b] = after
        step_count[b] += 1
        captured = after <= capture_radius
        timed_out = (not captured) and step_count[b] >= max_steps
        terminated[b] = captured
        truncated[b] = timed_out
        game = w_shaping * (before - after)
        if captured:
            game += w_capture
        if timed_out:
            game += w_timeout
        for i in range(n_robots):
            r = game if role[i] == ROLE_PURSUER else -game
            if violation[b, i]:
                r -= w_contact
            reward[b, i] = r


# --------------------------------------------------------------------------- the simulator


class BatchSim:
    """B independent episodes of one scenario, stepped together."""

    def __init__(self, scenario: Scenario, num_envs: int = 1, seed: int = 0) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.scenario = scenario
        self.num_envs = num_envs
        self.robots = RobotArrays.from_scenario(scenario)
        n, m = scenario.num_robots, max(scenario.obstacles.max_count, 1)
        self.pose = np.zeros((num_envs, n, 3))
        self.velocity = np.zeros((num_envs, n, 2))
        self.obstacles = np.zeros((num_envs, m, 3))
        self.n_obstacles = np.zeros(num_envs, dtype=np.int64)
        self.step_count = np.zeros(num_envs, dtype=np.int64)
        self.episode_seed = np.zeros(num_envs, dtype=np.int64)
        self._fixed = np.array(scenario.obstacles.fixed, dtype=np.float64).reshape(-1, 3)
        # Per-step outputs, reused between steps (StepResult hands out copies).
        self._reward = np.zeros((num_envs, n))
        self._terminated = np.zeros(num_envs, dtype=bool)
        self._truncated = np.zeros(num_envs, dtype=bool)
        self._violation = np.zeros((num_envs, n), dtype=bool)
        self._contact = np.zeros((num_envs, n), dtype=bool)
        self._clearance = np.zeros((num_envs, n))
        self._kind = np.zeros((num_envs, n), dtype=np.int8)
        self._pe_distance = np.zeros(num_envs)
        self._start = np.zeros((num_envs, n, 3))
        self._arc_end = np.zeros((num_envs, n, 2))
        self._contact_pose = np.zeros((num_envs, n, 3))
        self._contact_time = np.zeros((num_envs, n))
        self.next_seed = seed
        self.reset(seed)

    @property
    def half_width(self) -> float:
        return self.scenario.half_width

    @property
    def half_height(self) -> float:
        return self.scenario.half_height

    def reset(self, seed: int | None = None) -> None:
        """Start new episodes in every environment, with seeds ``seed, seed + 1, ...``
        (or the next unused seeds when ``seed`` is None)."""
        if seed is not None:
            if seed < 0:
                raise ValueError(f"seed must be >= 0, got {seed}")
            self.next_seed = int(seed)
        self.reset_envs(np.arange(self.num_envs))

    def reset_envs(self, envs: np.ndarray, seeds: np.ndarray | None = None) -> None:
        """Start new episodes in ``envs``: with ``seeds`` if given, else the next unused ones."""
        envs = np.asarray(envs, dtype=np.int64)
        if seeds is None:
            seeds = np.arange(self.next_seed, self.next_seed + len(envs), dtype=np.int64)
            self.next_seed += len(envs)
        s, o = self.scenario.start, self.scenario.obstacles
        _reset_envs(
            envs, np.asarray(seeds, dtype=np.int64), self._fixed, o.count[0], o.count[1],
            o.radius[0], o.radius[1], o.min_gap, o.wall_margin, self.robots.radius,
            self.robots.role, s.wall_margin, s.obstacle_clearance, s.separation[0],
            s.separation[1], s.teammate_separation, self.half_width, self.half_height,
            self.pose, self.velocity, self.obstacles, self.n_obstacles, self.step_count,
            self.episode_seed,
        )

    def step(self, actions: np.ndarray, auto_reset: bool = True) -> StepResult:
        """Advance every environment by one step of ``dt`` with commands ``actions``
        (B, N, 2) = (v m/s, omega rad/s); finished episodes restart when ``auto_reset``."""
        actions = np.ascontiguousarray(actions, dtype=np.float64)
        if actions.shape != self.velocity.shape:
            raise ValueError(f"actions must have shape {self.velocity.shape}, got {actions.shape}")
        sc, w, rb = self.scenario, self.scenario.reward, self.robots
        _step_envs(
            actions, self.pose, self.velocity, self.obstacles, self.n_obstacles, self.step_count,
            rb.radius, rb.v_min, rb.v_max, rb.omega_max, rb.role, self.half_width,
            self.half_height, sc.dt, sc.max_steps, sc.capture_radius, w.capture, w.timeout,
            w.distance_shaping, w.contact, self._reward, self._terminated, self._truncated,
            self._violation, self._contact, self._clearance, self._kind, self._pe_distance,
            self._start, self._arc_end, self._contact_pose, self._contact_time,
        )
        done = np.flatnonzero(self._terminated | self._truncated)
        result = StepResult(
            reward=self._reward.copy(), terminated=self._terminated.copy(),
            truncated=self._truncated.copy(), violation=self._violation.copy(),
            contact=self._contact.copy(), clearance=self._clearance.copy(),
            violation_kind=self._kind.copy(), pursuer_distance=self._pe_distance.copy(),
            final_pose=self.pose[done], final_velocity=self.velocity[done],
            final_obstacles=self.obstacles[done], final_n_obstacles=self.n_obstacles[done],
            final_seed=self.episode_seed[done], final_steps=self.step_count[done],
            contact_pose=self._contact_pose.copy(), contact_time=self._contact_time.copy(),
        )
        if auto_reset and done.size:
            self.reset_envs(done)
        return result

    def initial_clearance(self) -> np.ndarray:
        """Least body clearance (m) of each robot in the current state, (B, N)."""
        return _state_clearance(self.pose, self.obstacles, self.n_obstacles, self.robots.radius,
                                self.robots.role, self.half_width, self.half_height)


@numba.njit(cache=True)
def _state_clearance(pose, obstacles, n_obstacles, radius, role, half_w, half_h):
    out = np.empty(pose.shape[:2])
    for b in range(pose.shape[0]):
        for i in range(pose.shape[1]):
            c, _ = static_clearance(pose[b, i, 0], pose[b, i, 1], radius[i], obstacles[b],
                                    n_obstacles[b], half_w, half_h)
            for j in range(pose.shape[1]):
                if j != i and role[j] == role[i]:
                    c = min(c, math.hypot(pose[b, i, 0] - pose[b, j, 0],
                                          pose[b, i, 1] - pose[b, j, 1]) - radius[i] - radius[j])
            out[b, i] = c
    return out


__all__ = ["ROLE_EVADER", "ROLE_PURSUER", "BatchSim", "RobotArrays", "StepResult"]
