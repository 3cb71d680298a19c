"""Violation detection from true geometry on hand-made configurations."""

from __future__ import annotations

import numpy as np
import pytest

from pe_sim.batch import BatchSim
from pe_sim.safety_geometry import (
    KIND_OBSTACLE,
    KIND_WALL,
    arena_clearance,
    body_clearance,
    disc_clearance,
    static_clearance,
)
from pe_sim.scenario import parse_scenario


def test_touching_is_not_overlap():
    assert disc_clearance(0.0, 0.0, 0.15, 0.65, 0.0, 0.5) == pytest.approx(0.0, abs=1e-15)
    assert disc_clearance(0.0, 0.0, 0.15, 0.64, 0.0, 0.5) < 0.0
    assert disc_clearance(0.0, 0.0, 0.15, 0.66, 0.0, 0.5) > 0.0


def test_arena_clearance_inside_touching_outside():
    assert arena_clearance(0.0, 0.0, 0.15, 10.0, 10.0) == pytest.approx(9.85)
    assert arena_clearance(9.85, 0.0, 0.15, 10.0, 10.0) == pytest.approx(0.0, abs=1e-12)
    assert arena_clearance(0.0, -9.9, 0.15, 10.0, 10.0) < 0.0   # body pokes out of the bottom wall
    assert arena_clearance(12.0, 0.0, 0.15, 10.0, 10.0) < 0.0   # centre outside


def test_static_clearance_reports_the_nearest_kind():
    obstacles = np.array([[2.0, 0.0, 0.5], [-5.0, 0.0, 1.0]])
    c, kind = static_clearance(1.2, 0.0, 0.15, obstacles, 2, 10.0, 10.0)
    assert c == pytest.approx(2.0 - 1.2 - 0.5 - 0.15)
    assert kind == KIND_OBSTACLE
    c, kind = static_clearance(9.9, 0.0, 0.15, obstacles, 2, 10.0, 10.0)
    assert kind == KIND_WALL and c < 0
    # padding rows beyond n_obstacles are ignored
    c, _ = static_clearance(2.0, 0.0, 0.15, obstacles, 0, 10.0, 10.0)
    assert c > 0
    assert body_clearance(np.array([2.0, 0.0, 0.0]), 0.15, obstacles, 10.0, 10.0) < 0


def _one_obstacle_scenario(**robots):
    return parse_scenario({
        "name": "hand", "arena": {"width": 10.0, "height": 10.0}, "dt": 0.1, "max_steps": 100,
        "capture_radius": 0.5,
        "robots": [
            {"name": "p", "role": "pursuer", "radius": 0.15, "v_max": 1.0, "omega_max": 2.0},
            {"name": "p2", "role": "pursuer", "radius": 0.15, "v_max": 1.0, "omega_max": 2.0},
            {"name": "e", "role": "evader", "radius": 0.15, "v_max": 1.0, "omega_max": 2.0},
        ],
        "obstacles": {"fixed": [{"x": 0.0, "y": 0.0, "radius": 1.0}], "count": 0},
    })


def _place(sim, poses):
    sim.pose[0] = np.array(poses, dtype=float)
    sim.velocity[:] = 0.0


def test_driving_into_an_obstacle_is_a_contact_and_the_body_stays_outside():
    sim = BatchSim(_one_obstacle_scenario(), 1)
    _place(sim, [[-1.2, 0.0, 0.0], [-3.0, 3.0, 0.0], [4.0, 4.0, 0.0]])
    result = sim.step(np.array([[[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]]))
    assert result.violation[0, 0] and result.contact[0, 0]
    assert result.clearance[0, 0] == pytest.approx(-0.05, abs=1e-9)
    assert not result.violation[0, 1:].any()
    # pushed back to touching: the obstacle is solid
    assert np.hypot(*sim.pose[0, 0, :2]) == pytest.approx(1.15, abs=1e-6)
    assert np.hypot(*sim.pose[0, 0, :2]) >= 1.15


def test_driving_out_of_the_arena_is_a_violation_and_is_blocked():
    sim = BatchSim(_one_obstacle_scenario(), 1)
    _place(sim, [[4.8, -2.0, 0.0], [-3.0, 3.0, 0.0], [-4.0, -4.0, 0.0]])
    result = sim.step(np.array([[[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]]))
    assert result.violation[0, 0]
    assert sim.pose[0, 0, 0] <= 5.0 - 0.15


def test_teammate_overlap_is_a_violation_for_both():
    sim = BatchSim(_one_obstacle_scenario(), 1)
    _place(sim, [[-3.0, 3.0, 0.0], [-2.75, 3.0, 0.0], [4.0, -4.0, 0.0]])
    result = sim.step(np.zeros((1, 3, 2)))
    assert result.violation[0, 0] and result.violation[0, 1]
    assert not result.contact[0, 0]
    assert not result.violation[0, 2]


def test_touching_a_teammate_is_not_a_violation():
    sim = BatchSim(_one_obstacle_scenario(), 1)
    _place(sim, [[1.0, 3.0, 0.0], [1.3, 3.0, 0.0], [4.0, -4.0, 0.0]])  # 0.3 m apart: touching
    result = sim.step(np.zeros((1, 3, 2)))
    assert not result.violation[0].any()


def test_capture_ends_the_episode():
    sim = BatchSim(_one_obstacle_scenario(), 1)
    _place(sim, [[-3.0, 3.0, 0.0], [3.0, 3.0, 0.0], [-2.45, 3.0, 0.0]])
    result = sim.step(np.array([[[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]]))
    assert result.terminated[0] and not result.truncated[0]
    assert result.reward[0, 0] > 0 > result.reward[0, 2]
