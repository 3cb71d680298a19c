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
* ``flee``: run from the pursuers, steering off walls and obstacles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pe_sim.counter_rng import STREAM_RANDOM_POLICY, uniform_array
from pe_sim.scenario import Scenario

KINDS = ("random", "pure_pursuit", "proportional_navigation", "flee")


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
        flee_wall_range: float = 2.5,
        flee_obstacle_range: float = 1.5,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown scripted policy {kind!r}; choose from {list(KINDS)}")
        self.kind = kind
        self.scenario = scenario
        self.robot_index = robot_index
        robot = scenario.robots[robot_index]
        self.v_min, self.v_max, self.omega_max = robot.v_min, robot.v_max, robot.omega_max
        self.opponents = np.array(
            [j for j, r in enumerate(scenario.robots) if r.role != robot.role], dtype=np.int64)
        self.heading_gain = heading_gain
        self.nav_gain = nav_gain
        self.flee_wall_range = flee_wall_range
        self.flee_obstacle_range = flee_obstacle_range
        self._act = {
            "random": self._random,
            "pure_pursuit": self._pure_pursuit,
            "proportional_navigation": self._proportional_navigation,
            "flee": self._flee,
        }[kind]

    def __call__(self, view: WorldView) -> np.ndarray:
        """Commands (B, 2) for this robot."""
        return self._act(view)

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
        counters = (view.step_count * 64 + self.robot_index * 2)[:, None] + np.arange(2)
        u = uniform_array(view.episode_seed, STREAM_RANDOM_POLICY, counters)
        v = self.v_min + (self.v_max - self.v_min) * u[:, 0]
        omega = (2.0 * u[:, 1] - 1.0) * self.omega_max
        return np.stack([v, omega], axis=1)

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
        me = self._me(view)
        pos = me[:, :2]
        # Away from every pursuer, weighted by 1 / distance.
        away = pos[:, None, :] - view.pose[:, self.opponents, :2]
        dist = np.linalg.norm(away, axis=2, keepdims=True) + 1e-9
        direction = (away / dist**2).sum(axis=1)
        direction /= np.linalg.norm(direction, axis=1, keepdims=True) + 1e-9
        # Off the walls: push back in when within range, stronger the closer.
        sc = self.scenario
        push = np.zeros_like(pos)
        for axis, half in ((0, sc.half_width), (1, sc.half_height)):
            gap_hi = half - pos[:, axis]
            gap_lo = half + pos[:, axis]
            push[:, axis] -= np.clip(1.0 - gap_hi / self.flee_wall_range, 0.0, None) ** 2
            push[:, axis] += np.clip(1.0 - gap_lo / self.flee_wall_range, 0.0, None) ** 2
        # Off the obstacles, likewise (padding rows have radius 0 and are masked).
        present = np.arange(view.obstacles.shape[1])[None, :] < view.n_obstacles[:, None]
        off = pos[:, None, :] - view.obstacles[:, :, :2]
        centre_dist = np.linalg.norm(off, axis=2) + 1e-9
        gap = centre_dist - view.obstacles[:, :, 2]
        weight = np.where(present, np.clip(1.0 - gap / self.flee_obstacle_range, 0.0, None), 0.0) ** 2
        push += (off / centre_dist[..., None] * weight[..., None]).sum(axis=1)
        return self._steer(me, direction + 2.0 * push)


def make_scripted(kind: str, scenario: Scenario, robot_index: int, **params: float) -> ScriptedPolicy:
    """A scripted policy by name (see :data:`KINDS`)."""
    return ScriptedPolicy(kind, scenario, robot_index, **params)
