"""Scripted robots: baselines and opponents, vectorised over a batch.

Each policy maps the batch state to commands (B, 2) = (v m/s, omega rad/s) for
one robot, inside that robot's bounds. They only read state a real robot could
know (poses, last commands, obstacle circles, the arena), so the same function
runs in the batch simulation and in the ROS policy node.

* ``random``: uniform commands in the bounds, redrawn each step from the
  episode's counter-based random stream (the research prototype's opponent).
* ``pure_pursuit``: head for the nearest opponent at full speed; ignores obstacles.
* ``proportional_navigation``: turn rate N times the line-of-sight rate plus a
  heading-error term, full speed; ignores obstacles.
* ``flee``: run from the pursuers, steering off walls and obstacles. Each step
  it rolls out ``FleeParams.candidates`` headings for a few seconds against
  modelled pursuers and takes the one that keeps the most distance, so it leaves
  walls and corners tangentially, away from the pursuer's approach, instead of
  running into them (see :meth:`ScriptedPolicy._flee`).

All of them are deterministic functions of the batch state (``random`` of the
episode seed and step count), vectorised over the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from pe_sim.counter_rng import STREAM_RANDOM_POLICY, uniform
from pe_sim.scenario import Scenario

KINDS = ("random", "pure_pursuit", "proportional_navigation", "flee")
#: Scripted kind a robot runs when nothing else is asked for, by role: the opponents and
#: teammates of the environments and of training (evaluation tools default to
#: ``pe_policy.policy.DEFAULT_SOURCES``: the shipped pursuer and this evader).
DEFAULT_KIND = {"pursuer": "proportional_navigation", "evader": "flee"}


@dataclass
class WorldView:
    """The batch state a policy may read (arrays as in :mod:`pe_sim.batch`)."""

    pose: np.ndarray          # (B, N, 3)
    velocity: np.ndarray      # (B, N, 2)
    obstacles: np.ndarray     # (B, M, 3)
    n_obstacles: np.ndarray   # (B,)
    step_count: np.ndarray    # (B,)
    episode_seed: np.ndarray  # (B,)

    @classmethod
    def of(cls, sim) -> WorldView:
        """A view of a :class:`~pe_sim.batch.BatchSim`'s live arrays (no copies)."""
        return cls(sim.pose, sim.velocity, sim.obstacles, sim.n_obstacles, sim.step_count,
                   sim.episode_seed)


@dataclass(frozen=True)
class FleeParams:
    """Tuning of the ``flee`` evader (see :meth:`ScriptedPolicy._flee`)."""

    candidates: int = 16          # headings tried, evenly spaced around the current one
    horizon: float = 6.0          # s, length of each rollout
    rollout_dt: float = 0.75      # s, rollout step
    final_weight: float = 0.5     # weight of the separation at the end of the rollout
    contact_weight: float = 1.0   # cost (m per s) of rollout time pressed against a wall/obstacle
    turn_weight: float = 0.3      # cost (m per rad) of the heading change
    capture_margin: float = 0.1   # m, added to the capture radius in the rollouts
    brake_distance: float = 0.5   # m, slow down when the way ahead is shorter than this
    margin: float = 0.05          # m, stop this far short of a wall or an obstacle


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


class ScriptedPolicy:
    """A scripted controller for robot ``robot_index`` of ``scenario``."""

    def __init__(
        self,
        kind: str,
        scenario: Scenario,
        robot_index: int,
        *,
        heading_gain: float = 4.0,
        nav_gain: float = 3.0,
        flee: FleeParams | None = None,
    ) -> None:
        if kind not in KINDS:
            from pe_sim.cli import UserError
            from pe_sim.config_schema import closest

            raise UserError(f"unknown scripted policy {kind!r}{closest(kind, KINDS)}; "
                            f"choose from {list(KINDS)}")
        self.kind = kind
        self.scenario = scenario
        self.robot_index = robot_index
        robot = scenario.robots[robot_index]
        self.v_min, self.v_max, self.omega_max = robot.v_min, robot.v_max, robot.omega_max
        self.opponents = np.array(
            [j for j, r in enumerate(scenario.robots) if r.role != robot.role], dtype=np.int64)
        self.heading_gain = heading_gain
        self.nav_gain = nav_gain
        self.radius = robot.radius
        self.flee = flee or FleeParams()
        k = int(self.flee.candidates)
        self._flee_offsets = _wrap(2.0 * np.pi * np.arange(k) / k)
        self._opp_v_max = np.array([scenario.robots[j].v_max for j in self.opponents])
        self._opp_omega_max = np.array([scenario.robots[j].omega_max for j in self.opponents])
        self._act = {
            "random": self._random,
            "pure_pursuit": self._pure_pursuit,
            "proportional_navigation": self._proportional_navigation,
            "flee": self._flee,
        }[kind]

    def __call__(self, view: WorldView) -> np.ndarray:
        """Commands (B, 2) for this robot, inside its bounds; a non-finite command
        (from a non-finite state) becomes a stop: (clip(0, v_min, v_max), 0)."""
        u = np.asarray(self._act(view), dtype=np.float64)
        _bound_commands(u, self.v_min, self.v_max, self.omega_max)
        return u

    # -- helpers -------------------------------------------------------------------------
    def _me(self, view: WorldView) -> np.ndarray:
        return view.pose[:, self.robot_index, :]

    def _nearest_opponent(self, view: WorldView) -> tuple[np.ndarray, np.ndarray]:
        """(index into robots, offset (B, 2) to it) of the nearest opponent."""
        me = self._me(view)
        offsets = view.pose[:, self.opponents, :2] - me[:, None, :2]   # (B, K, 2)
        nearest = np.argmin(np.einsum("bkd,bkd->bk", offsets, offsets), axis=1)
        rows = np.arange(len(me))
        return self.opponents[nearest], offsets[rows, nearest]

    def _steer(self, me: np.ndarray, direction: np.ndarray, speed_scale: float = 1.0) -> np.ndarray:
        """Full speed towards ``direction`` (B, 2), slowing for sharp turns."""
        error = _wrap(np.arctan2(direction[:, 1], direction[:, 0]) - me[:, 2])
        omega = np.clip(self.heading_gain * error, -self.omega_max, self.omega_max)
        v = self.v_max * speed_scale * np.clip(np.cos(error), 0.0, 1.0) ** 0.5
        return np.stack([np.clip(v, self.v_min, self.v_max), omega], axis=1)

    # -- policies ------------------------------------------------------------------------
    def _random(self, view: WorldView) -> np.ndarray:
        out = np.empty((view.pose.shape[0], 2))
        _random_commands(view.episode_seed, view.step_count, self.robot_index, self.v_min, self.v_max,
                         self.omega_max, out)
        return out

    def _pure_pursuit(self, view: WorldView) -> np.ndarray:
        _, offset = self._nearest_opponent(view)
        return self._steer(self._me(view), offset)

    def _proportional_navigation(self, view: WorldView) -> np.ndarray:
        me = self._me(view)
        target, offset = self._nearest_opponent(view)
        rows = np.arange(len(me))
        tgt = view.pose[rows, target]
        tv = view.velocity[rows, target, 0]
        rel_vel = (tv[:, None] * np.stack([np.cos(tgt[:, 2]), np.sin(tgt[:, 2])], axis=1)
                   - view.velocity[:, self.robot_index, 0][:, None]
                   * np.stack([np.cos(me[:, 2]), np.sin(me[:, 2])], axis=1))
        dist2 = np.maximum(np.einsum("bd,bd->b", offset, offset), 1e-9)
        los_rate = (offset[:, 0] * rel_vel[:, 1] - offset[:, 1] * rel_vel[:, 0]) / dist2
        error = _wrap(np.arctan2(offset[:, 1], offset[:, 0]) - me[:, 2])
        omega = np.clip(self.nav_gain * los_rate + self.heading_gain * error,
                        -self.omega_max, self.omega_max)
        v = np.full(len(me), self.v_max)
        return np.stack([v, omega], axis=1)

    def _flee(self, view: WorldView) -> np.ndarray:
        """Roll out candidate manoeuvres against a modelled pursuit and take the best
        (see :func:`_flee_kernel`)."""
        fp, sc = self.flee, self.scenario
        out = np.empty((view.pose.shape[0], 2))
        _flee_kernel(
            view.pose, view.obstacles, view.n_obstacles, self.robot_index, self.opponents,
            self._flee_offsets, self.v_min, self.v_max, self.omega_max, self.radius,
            self._opp_v_max, self._opp_omega_max, sc.half_width, sc.half_height,
            sc.capture_radius, sc.dt, self.heading_gain, fp.horizon, fp.rollout_dt,
            fp.final_weight, fp.contact_weight, fp.turn_weight, fp.capture_margin,
            fp.brake_distance, fp.margin, out)
        return out



@numba.njit(cache=True)
def _bound_commands(u, v_min, v_max, omega_max):
    """In place: each command (v, omega) of ``u`` (B, 2) clipped to the robot's bounds; a
    non-finite component becomes 0 first (a stop)."""
    for b in range(u.shape[0]):
        v = u[b, 0] if math.isfinite(u[b, 0]) else 0.0
        omega = u[b, 1] if math.isfinite(u[b, 1]) else 0.0
        u[b, 0] = min(max(v, v_min), v_max)
        u[b, 1] = min(max(omega, -omega_max), omega_max)


@numba.njit(cache=True)
def _random_commands(episode_seed, step_count, robot_index, v_min, v_max, omega_max, out):
    """The random robot's commands (B, 2): uniform in [v_min, v_max] x [-omega_max,
    omega_max], a pure function of (episode seed, step, robot)."""
    for b in range(out.shape[0]):
        counter = step_count[b] * 64 + robot_index * 2
        out[b, 0] = v_min + (v_max - v_min) * uniform(episode_seed[b], STREAM_RANDOM_POLICY, counter)
        out[b, 1] = (2.0 * uniform(episode_seed[b], STREAM_RANDOM_POLICY, counter + 1) - 1.0) * omega_max


@numba.njit(cache=True, inline="always")
def _turn_towards(hx, hy, tx, ty, cos_max, sin_max):
    """Unit heading (hx, hy) turned towards direction (tx, ty) (any length; zero
    leaves the heading as it is) by at most the angle whose cosine and sine are
    ``cos_max`` and ``sin_max``."""
    norm = math.sqrt(tx * tx + ty * ty)
    if norm <= 1e-12:
        return hx, hy
    ux, uy = tx / norm, ty / norm
    if hx * ux + hy * uy >= cos_max:
        return ux, uy
    side = sin_max if hx * uy - hy * ux >= 0.0 else -sin_max
    return hx * cos_max - side * hy, side * hx + hy * cos_max


@numba.njit(cache=True)
def _free_length(x, y, heading, radius, margin, obstacles, n_obstacles, half_w, half_h):
    """Distance (m) a body of ``radius`` at (x, y) can move straight along ``heading``
    before coming within ``margin`` of a wall or an obstacle (0 when it already is
    and moving on would get closer)."""
    ux, uy = math.cos(heading), math.sin(heading)
    reach = np.inf
    for u, p, lim in ((ux, x, half_w - radius - margin), (uy, y, half_h - radius - margin)):
        if abs(u) > 1e-12:
            t = ((lim if u >= 0.0 else -lim) - p) / u
            reach = min(reach, max(t, 0.0))
    for o in range(n_obstacles):
        fx, fy = x - obstacles[o, 0], y - obstacles[o, 1]
        c = fx * fx + fy * fy - (obstacles[o, 2] + radius + margin) ** 2
        b = ux * fx + uy * fy
        if c <= 0.0:
            t = 0.0 if b < 0.0 else np.inf
        elif b < 0.0 and b * b - c >= 0.0:
            t = max(-b - math.sqrt(b * b - c), 0.0)
        else:
            t = np.inf
        reach = min(reach, t)
    return reach


@numba.njit(cache=True)
def _flee_kernel(pose, obstacles, n_obstacles, me, opponents, offsets, v_min, v_max, omega_max,
                 radius, opp_v_max, opp_omega_max, half_w, half_h, capture_radius, sim_dt,
                 heading_gain, horizon, rollout_dt, final_weight, contact_weight, turn_weight,
                 capture_margin, brake_distance, margin, out):
    """The ``flee`` evader, for every environment of a batch.

    Candidate k: turn at the full turn rate to heading ``theta + offsets[k]`` and
    hold it at full speed for ``horizon`` seconds (steps of ``rollout_dt``),
    sliding along walls and obstacles. Each pursuer is modelled as pure pursuit at
    its full speed and turn rate (passing through obstacles, which is pessimistic
    for the evader). A rollout scores the seconds it survives (capture: a pursuer
    within the capture radius plus ``capture_margin``, checked at the closest
    approach within each rollout step so a dash past a pursuer is not missed); one
    that survives the horizon adds its least separation and ``final_weight`` times
    its final separation (so the evader leaves a wall or a corner while there is
    room). Every rollout pays ``contact_weight`` per second pressed against a wall
    or an obstacle and ``turn_weight`` per radian of turn. The chosen heading is
    tracked with gain ``heading_gain`` at full speed, braking when the way ahead
    comes within ``margin`` of a wall or an obstacle."""
    n_opp = opponents.shape[0]
    lim_x, lim_y = half_w - radius, half_h - radius
    steps = max(1, round(horizon / rollout_dt))
    step = v_max * rollout_dt
    capture2 = (capture_radius + capture_margin) ** 2
    cos_o = np.cos(opp_omega_max * rollout_dt)
    sin_o = np.sin(opp_omega_max * rollout_dt)
    ostep = opp_v_max * rollout_dt
    ox, oy = np.empty(n_opp), np.empty(n_opp)
    ohx, ohy = np.empty(n_opp), np.empty(n_opp)
    px, py = np.empty(n_opp), np.empty(n_opp)
    # Heading change of candidate k after rollout step j, the same for every environment.
    cos_t = np.empty((steps, offsets.shape[0]))
    sin_t = np.empty((steps, offsets.shape[0]))
    for j in range(steps):
        for k in range(offsets.shape[0]):
            turned = min((j + 1) * omega_max * rollout_dt, abs(offsets[k])) * np.sign(offsets[k])
            cos_t[j, k] = math.cos(turned)
            sin_t[j, k] = math.sin(turned)
    for b in range(pose.shape[0]):
        x0, y0, th0 = pose[b, me, 0], pose[b, me, 1], pose[b, me, 2]
        c0, s0 = math.cos(th0), math.sin(th0)
        m = n_obstacles[b]
        best_k, best_score = 0, -np.inf
        for k in range(offsets.shape[0]):
            off = offsets[k]
            x, y = x0, y0
            for p in range(n_opp):
                j = opponents[p]
                ox[p], oy[p] = pose[b, j, 0], pose[b, j, 1]
                ohx[p], ohy[p] = math.cos(pose[b, j, 2]), math.sin(pose[b, j, 2])
                px[p], py[p] = x - ox[p], y - oy[p]
            least, caught, contact = np.inf, np.inf, 0.0
            for j in range(steps):
                ct, st = cos_t[j, k], sin_t[j, k]
                x += step * (c0 * ct - s0 * st)
                y += step * (s0 * ct + c0 * st)
                # Slide: back inside the arena and out of every obstacle.
                blocked = abs(x) > lim_x or abs(y) > lim_y
                x = min(max(x, -lim_x), lim_x)
                y = min(max(y, -lim_y), lim_y)
                sx, sy = 0.0, 0.0
                for o in range(m):
                    dx, dy = x - obstacles[b, o, 0], y - obstacles[b, o, 1]
                    dist = math.sqrt(dx * dx + dy * dy) + 1e-12
                    push = max((obstacles[b, o, 2] + radius) / dist - 1.0, 0.0)
                    if push > 0.0:
                        blocked = True
                    sx += push * dx
                    sy += push * dy
                x += sx
                y += sy
                contact += blocked
                for p in range(n_opp):
                    # Modelled pursuer: turn-rate limited pure pursuit at full speed.
                    ohx[p], ohy[p] = _turn_towards(ohx[p], ohy[p], x - ox[p], y - oy[p],
                                                   cos_o[p], sin_o[p])
                    ox[p] += ostep[p] * ohx[p]
                    oy[p] += ostep[p] * ohy[p]
                    # Closest approach during the step, both moving straight between samples.
                    qx, qy = x - ox[p], y - oy[p]
                    mx, my = qx - px[p], qy - py[p]
                    mm = max(mx * mx + my * my, 1e-12)
                    pm = px[p] * mx + py[p] * my
                    s = min(max(-pm / mm, 0.0), 1.0)
                    nx, ny = px[p] + s * mx, py[p] + s * my
                    least = min(least, math.sqrt(nx * nx + ny * ny))
                    # When (within this step) the pursuer first gets within capture range.
                    pp = px[p] * px[p] + py[p] * py[p] - capture2
                    if pm * pm >= mm * pp:
                        root = math.sqrt(max(pm * pm - mm * pp, 0.0))
                        enter = 0.0 if pp <= 0.0 else (-pm - root) / mm
                        if enter <= 1.0:
                            caught = min(caught, j + enter)
                    px[p], py[p] = qx, qy
            sep2 = np.inf
            for p in range(n_opp):
                sep2 = min(sep2, px[p] * px[p] + py[p] * py[p])
            if math.isfinite(caught):
                score = caught * rollout_dt
            else:
                score = horizon + least + final_weight * math.sqrt(sep2)
            score -= contact_weight * rollout_dt * contact + turn_weight * abs(off)
            if score > best_score:
                best_k, best_score = k, score
        omega = min(max(heading_gain * offsets[best_k], -omega_max), omega_max)
        ahead = _free_length(x0, y0, th0 + 0.5 * omega * sim_dt, radius, margin, obstacles[b], m,
                             half_w, half_h)
        v = v_max * min(max(ahead / brake_distance, 0.0), 1.0)
        out[b, 0] = min(max(v, v_min), v_max)
        out[b, 1] = omega


def make_scripted(kind: str, scenario: Scenario, robot_index: int, **params: Any) -> ScriptedPolicy:
    """A scripted policy by name (see :data:`KINDS`); ``params`` go to :class:`ScriptedPolicy`
    (``heading_gain``, ``nav_gain``, ``flee=FleeParams(...)``)."""
    return ScriptedPolicy(kind, scenario, robot_index, **params)
