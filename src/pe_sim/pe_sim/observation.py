"""Observations for one robot, with a versioned, serialisable spec.

A policy carries the :class:`ObservationSpec` it was trained with; whoever runs
it builds the spec for the situation at hand and refuses a mismatch
(:meth:`ObservationSpec.check_compatible`). Everything is in the observing
robot's body frame (x forward, y left) and lengths are divided by
``length_scale`` (metres: the scenario's ``length_scale``, by default the arena's larger
half-size), so values are O(1).

Layout, in order:

* ``self``       (6): x/L, y/L, cos(theta), sin(theta) in the world frame,
  v / v_max and omega / omega_max of the last applied command.
* ``walls``      (4): body clearance to the +x, -x, +y, -y walls, / L.
* ``opponents``  (7 each, by robot index): body-frame dx/L, dy/L, distance/L,
  cos and sin of the relative heading, their v / v_max and omega / omega_max.
* ``teammates``  (7 each, by robot index): as for opponents.
* ``obstacles``  (5 each, the K nearest by surface distance): body-frame dx/L,
  dy/L, radius/L, body clearance/L, present (1) or padding (0, with clearance 1).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numba
import numpy as np

from pe_sim.cli import UserError
from pe_sim.scenario import Scenario

OBS_NAME = "pe_sim.ego"
OBS_VERSION = 1
SELF_DIM, WALLS_DIM, ROBOT_DIM, OBSTACLE_DIM = 6, 4, 7, 5


class ObservationSpecMismatch(UserError, ValueError):
    """A policy's observation spec differs from the one its caller builds."""


@dataclass(frozen=True)
class ObservationSpec:
    """What an observation vector holds; small and JSON-serialisable."""

    name: str
    version: int
    n_opponents: int
    n_teammates: int
    k_obstacles: int
    length_scale: float

    @functools.cached_property
    def fields(self) -> tuple[tuple[str, int], ...]:
        """(field name, width) in vector order."""
        out = [("self", SELF_DIM), ("walls", WALLS_DIM)]
        out += [(f"opponent_{i}", ROBOT_DIM) for i in range(self.n_opponents)]
        out += [(f"teammate_{i}", ROBOT_DIM) for i in range(self.n_teammates)]
        out += [(f"obstacle_{i}", OBSTACLE_DIM) for i in range(self.k_obstacles)]
        return tuple(out)

    @functools.cached_property
    def dim(self) -> int:
        return sum(width for _, width in self.fields)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["dim"] = self.dim
        data["fields"] = [list(f) for f in self.fields]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObservationSpec:
        spec = cls(
            name=str(data["name"]), version=int(data["version"]),
            n_opponents=int(data["n_opponents"]), n_teammates=int(data["n_teammates"]),
            k_obstacles=int(data["k_obstacles"]), length_scale=float(data["length_scale"]),
        )
        if "dim" in data and int(data["dim"]) != spec.dim:
            raise ObservationSpecMismatch(f"spec dim {data['dim']} does not match its fields ({spec.dim})")
        return spec

    def check_compatible(self, expected: ObservationSpec) -> None:
        """Raise :class:`ObservationSpecMismatch` listing both specs unless equal."""
        if self != expected:
            raise ObservationSpecMismatch(
                "observation spec mismatch:\n"
                f"  policy expects: {self.to_dict()}\n"
                f"  caller builds:  {expected.to_dict()}")

    @classmethod
    def for_robot(cls, scenario: Scenario, robot_index: int, k_obstacles: int = 4) -> ObservationSpec:
        role = scenario.robots[robot_index].role
        same = sum(1 for r in scenario.robots if r.role == role)
        return cls(
            name=OBS_NAME, version=OBS_VERSION,
            n_opponents=scenario.num_robots - same, n_teammates=same - 1,
            k_obstacles=k_obstacles,
            length_scale=scenario.observation_length_scale,
        )


def robot_order(scenario: Scenario, robot_index: int) -> np.ndarray:
    """Indices of the other robots as they appear in the observation: opponents, then teammates."""
    role = scenario.robots[robot_index].role
    opponents = [j for j, r in enumerate(scenario.robots) if r.role != role]
    teammates = [j for j, r in enumerate(scenario.robots) if r.role == role and j != robot_index]
    return np.array(opponents + teammates, dtype=np.int64)


@numba.njit(cache=True, inline="always")
def nearest_slots(x, y, r, obstacles, n, k_slots, out, out_clearance):
    """The obstacles of the observation: slot s of ``out`` gets the index of the one with
    the s-th least body clearance from a disc of radius ``r`` at (x, y) (ties to the
    lowest index; the clearance, m, goes to ``out_clearance``), -1 when fewer than
    ``k_slots`` of the ``n`` obstacles exist. Repeated selection: K and M are small."""
    clear = np.empty(n)
    for m in range(n):
        clear[m] = math.hypot(obstacles[m, 0] - x, obstacles[m, 1] - y) - r - obstacles[m, 2]
    for slot in range(k_slots):
        best = -1
        for m in range(n):
            if best < 0 or clear[m] < clear[best]:
                best = m
        if best < 0 or clear[best] == np.inf:
            out[slot] = -1
        else:
            out[slot] = best
            out_clearance[slot] = clear[best]
            clear[best] = np.inf


@numba.njit(cache=True)
def _build(pose, velocity, obstacles, n_obstacles, me, others, radius, v_max, omega_max,
           k_obs, inv_l, half_w, half_h, out):
    slots = np.empty(k_obs, dtype=np.int64)
    slot_clearance = np.empty(k_obs)
    for b in range(pose.shape[0]):
        x, y, th = pose[b, me, 0], pose[b, me, 1], pose[b, me, 2]
        c, s = math.cos(th), math.sin(th)
        r = radius[me]
        o = out[b]
        o[0] = x * inv_l
        o[1] = y * inv_l
        o[2] = c
        o[3] = s
        o[4] = velocity[b, me, 0] / v_max[me]
        o[5] = velocity[b, me, 1] / omega_max[me]
        o[6] = (half_w - x - r) * inv_l
        o[7] = (half_w + x - r) * inv_l
        o[8] = (half_h - y - r) * inv_l
        o[9] = (half_h + y - r) * inv_l
        k = 10
        for j in others:
            dx = pose[b, j, 0] - x
            dy = pose[b, j, 1] - y
            dth = pose[b, j, 2] - th
            o[k] = (c * dx + s * dy) * inv_l
            o[k + 1] = (-s * dx + c * dy) * inv_l
            o[k + 2] = math.hypot(dx, dy) * inv_l
            o[k + 3] = math.cos(dth)
            o[k + 4] = math.sin(dth)
            o[k + 5] = velocity[b, j, 0] / v_max[j]
            o[k + 6] = velocity[b, j, 1] / omega_max[j]
            k += 7
        # K nearest obstacles by body clearance.
        nearest_slots(x, y, r, obstacles[b], n_obstacles[b], k_obs, slots, slot_clearance)
        for slot in range(k_obs):
            best = slots[slot]
            if best < 0:
                o[k] = 0.0
                o[k + 1] = 0.0
                o[k + 2] = 0.0
                o[k + 3] = 1.0
                o[k + 4] = 0.0
            else:
                dx = obstacles[b, best, 0] - x
                dy = obstacles[b, best, 1] - y
                o[k] = (c * dx + s * dy) * inv_l
                o[k + 1] = (-s * dx + c * dy) * inv_l
                o[k + 2] = obstacles[b, best, 2] * inv_l
                o[k + 3] = slot_clearance[slot] * inv_l
                o[k + 4] = 1.0
            k += 5


class ObservationBuilder:
    """Builds the observations of one robot of a scenario, for a batch of states."""

    def __init__(self, scenario: Scenario, robot_index: int, k_obstacles: int = 4) -> None:
        self.scenario = scenario
        self.robot_index = robot_index
        self.spec = ObservationSpec.for_robot(scenario, robot_index, k_obstacles)
        self._others = robot_order(scenario, robot_index)
        robots = scenario.robots
        self._radius = np.array([r.radius for r in robots])
        self._v_max = np.array([r.v_max for r in robots])
        self._omega_max = np.array([r.omega_max for r in robots])
        self._dim = self.spec.dim
        self._k_obstacles = self.spec.k_obstacles
        self._inv_length = 1.0 / self.spec.length_scale
        self._half_width, self._half_height = scenario.half_width, scenario.half_height

    def build(
        self,
        pose: np.ndarray,
        velocity: np.ndarray,
        obstacles: np.ndarray,
        n_obstacles: np.ndarray,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Observations (B, dim) float32 from batch arrays (see :mod:`pe_sim.batch`)."""
        if out is None:
            out = np.empty((pose.shape[0], self._dim), dtype=np.float32)
        _build(pose, velocity, obstacles, n_obstacles, self.robot_index, self._others,
               self._radius, self._v_max, self._omega_max, self._k_obstacles,
               self._inv_length, self._half_width, self._half_height, out)
        return out
