"""The constraint rows of the BarrierNet QP layer, built by the safety filter's own
constraint assembly (:func:`pe_safety_filter.barriers.assemble`).

Gain slots. The network outputs one class-K gain (1/s) per barrier, in the order
of the *observation*:

    [obstacle slot 0 .. K-1 (the K nearest obstacles by body clearance, as the
     observation lists them), wall +x, -x, +y, -y, teammate 0 .. T-1 (robot index order)]

so G = K + 4 + T. The deployed filter (:class:`~pe_safety_filter.filter.BatchSafetyFilter`)
orders its constraints [obstacles as stored in the simulator (M slots), 4 walls,
teammates]; :func:`pe_policy.barriernet_policy.filter_gains` maps slot gains to that layout with the
same nearest-obstacle order the observation uses (:func:`~pe_policy.barriernet_policy.nearest_order`).

Rows at unit gain. Every barrier row of :mod:`pe_safety_filter.barriers` is
``a_k . u >= -gain_k * h_k / |a_k|`` (teammates: half the class-K term), i.e. its
right-hand side is *linear* in its gain. :meth:`ConstraintBuilder.rows` calls the filter's
``assemble`` with every gain 1 to get ``A`` (rows, unit normals) and ``b1`` (the
right-hand side per unit gain, m/s-like units of u); the layer then uses
``b = gains * b1`` -- the same half-planes the filter builds with those gains,
differentiable in the gains. Empty obstacle slots are the row ``0 . u >= -1``
(always satisfied, never active).
"""

from __future__ import annotations

import numba
import numpy as np

from pe_policy.barriernet_policy import GainLayout
from pe_safety_filter.barriers import assemble
from pe_safety_filter.config import FilterConfig
from pe_sim.observation import nearest_slots, robot_order
from pe_sim.scenario import Scenario


@numba.njit(cache=True)
def _slot_rows(pose, obstacles, n_obstacles, me, mates, radius, k_slots, d, half_w, half_h, buffer,
               A_out, b_out, order_out):
    n_batch = pose.shape[0]
    n_tm = mates.shape[0]
    g = k_slots + 4 + n_tm
    sel = np.empty((k_slots, 3))
    tm = np.empty((n_tm, 3))
    tm_r = np.empty(n_tm)
    ones = np.ones(g)
    A = np.empty((g, 2))
    b = np.empty(g)
    dist = np.empty(g)
    r = radius[me]
    clearance = np.empty(k_slots)
    for e in range(n_batch):
        x, y, th = pose[e, me, 0], pose[e, me, 1], pose[e, me, 2]
        nearest_slots(x, y, r, obstacles[e], n_obstacles[e], k_slots, order_out[e], clearance)
        n_sel = 0
        for s in range(k_slots):
            m = order_out[e, s]
            if m < 0:
                break
            sel[n_sel, 0] = obstacles[e, m, 0]
            sel[n_sel, 1] = obstacles[e, m, 1]
            sel[n_sel, 2] = obstacles[e, m, 2]
            n_sel += 1
        for j in range(n_tm):
            tm[j, 0] = pose[e, mates[j], 0]
            tm[j, 1] = pose[e, mates[j], 1]
            tm[j, 2] = pose[e, mates[j], 2]
            tm_r[j] = radius[mates[j]]
        n_rows = assemble(x, y, th, d, r, sel, n_sel, half_w, half_h, tm, tm_r, n_tm, 1.0, 1.0, 1.0,
                          ones, n_sel + 4 + n_tm, buffer, True, A, b, dist)
        # Obstacle rows into slots 0 .. n_sel-1, empty slots get 0 . u >= -1.
        for s in range(k_slots):
            if s < n_sel:
                A_out[e, s, 0] = A[s, 0]
                A_out[e, s, 1] = A[s, 1]
                b_out[e, s] = b[s]
            else:
                A_out[e, s, 0] = 0.0
                A_out[e, s, 1] = 0.0
                b_out[e, s] = -1.0
        for k in range(n_rows - n_sel):
            A_out[e, k_slots + k, 0] = A[n_sel + k, 0]
            A_out[e, k_slots + k, 1] = A[n_sel + k, 1]
            b_out[e, k_slots + k] = b[n_sel + k]


def _check_obstacle_count(n_obstacles: np.ndarray, k_slots: int) -> None:
    if n_obstacles.size and int(n_obstacles.max()) > k_slots:
        raise ValueError(f"an episode has {int(n_obstacles.max())} obstacles but the BarrierNet layout has "
                         f"{k_slots} obstacle slots; train with k_obstacles >= the scenario's max count")


class ConstraintBuilder:
    """QP rows of robot ``robot_index`` of ``scenario`` for a batch of states, in the
    gain-slot order of :class:`GainLayout`, with the filter ``config``'s lookahead
    and robot buffer."""

    def __init__(self, config: FilterConfig, scenario: Scenario, robot_index: int,
                 layout: GainLayout) -> None:
        role = scenario.robots[robot_index].role
        mates = [j for j in robot_order(scenario, robot_index) if scenario.robots[j].role == role]
        if len(mates) != layout.n_teammates:
            raise ValueError(f"layout has {layout.n_teammates} teammate slots, robot {robot_index} of "
                             f"'{scenario.name}' has {len(mates)} teammates")
        if scenario.obstacles.max_count > layout.k_obstacles:
            raise ValueError(f"scenario '{scenario.name}' has up to {scenario.obstacles.max_count} "
                             f"obstacles, the layout only {layout.k_obstacles} slots")
        self.config = config
        self.scenario = scenario
        self.robot_index = robot_index
        self.layout = layout
        self.mates = np.array(mates, dtype=np.int64)
        self.radius = np.array([r.radius for r in scenario.robots])
        robot = scenario.robots[robot_index]
        self.lo = np.array([robot.v_min, -robot.omega_max])
        self.hi = np.array([robot.v_max, robot.omega_max])
        self.weight = config.weight_matrix

    def rows(self, pose: np.ndarray, obstacles: np.ndarray, n_obstacles: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(A (B, G, 2), b1 (B, G), order (B, K))`` for states ``pose`` (B, N, 3),
        ``obstacles`` (B, M, 3), ``n_obstacles`` (B,). ``order[e, s]`` is the simulator
        index of the obstacle in slot s (-1: empty)."""
        pose = np.ascontiguousarray(pose, dtype=np.float64)
        obstacles = np.ascontiguousarray(obstacles, dtype=np.float64)
        n_obstacles = np.ascontiguousarray(n_obstacles, dtype=np.int64)
        _check_obstacle_count(n_obstacles, self.layout.k_obstacles)
        n_batch, g = pose.shape[0], self.layout.size
        A = np.empty((n_batch, g, 2))
        b1 = np.empty((n_batch, g))
        order = np.empty((n_batch, self.layout.k_obstacles), dtype=np.int64)
        sc = self.scenario
        _slot_rows(pose, obstacles, n_obstacles, self.robot_index, self.mates, self.radius,
                   self.layout.k_obstacles, self.config.lookahead, sc.half_width, sc.half_height,
                   self.config.robot_buffer, A, b1, order)
        return A, b1, order


__all__ = ["ConstraintBuilder"]
