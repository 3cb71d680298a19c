"""The batch filter equals the single-robot filter, and the reckless evaluation shows
0 violations with the filter and violations without it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pe_safety_filter.config import load_filter_config
from pe_safety_filter.evaluate_reckless import evaluate
from pe_safety_filter.filter import TIERS, BatchSafetyFilter, SafetyFilter
from pe_sim.batch import BatchSim
from pe_sim.scenario import RobotSpec
from pe_sim.scripted import WorldView, make_scripted


@pytest.fixture(scope="module")
def config():
    return load_filter_config("vcp_cbf")


def _team_scenario(seed_scenario):
    robots = (RobotSpec("p0", "pursuer"), RobotSpec("p1", "pursuer", radius=0.2, v_max=0.8),
              RobotSpec("e0", "evader"))
    return dataclasses.replace(seed_scenario, name="team", robots=robots)


def test_batch_equals_single_filter_with_teammates(seed_scenario, config):
    scenario = _team_scenario(seed_scenario)
    sim = BatchSim(scenario, num_envs=16, seed=3)
    rng = np.random.default_rng(0)
    # Bring teammates close so robot-robot constraints act.
    sim.pose[:, 1, :2] = sim.pose[:, 0, :2] + rng.uniform(0.6, 1.2, (16, 1)) * np.array([1.0, 0.0])
    sim.pose[:, 1, 0] = np.clip(sim.pose[:, 1, 0], -9, 9)
    u_nom = np.stack([rng.uniform(-0.2, 1.5, (16, 3)), rng.uniform(-4, 4, (16, 3))], axis=2)
    u_nom[3, 0] = np.nan
    bf = BatchSafetyFilter(config, scenario)
    u_safe, stats = bf.filter(sim.pose, u_nom, sim.obstacles, sim.n_obstacles)
    singles = [SafetyFilter(config, r, scenario.half_width, scenario.half_height, scenario.dt)
               for r in scenario.robots]
    for e in range(16):
        for i in range(3):
            mates = [j for j in range(3) if j != i and scenario.robots[j].role == scenario.robots[i].role]
            res = singles[i].filter(
                sim.pose[e, i], u_nom[e, i], sim.obstacles[e, :sim.n_obstacles[e]],
                sim.pose[e, mates] if mates else None,
                np.array([scenario.robots[j].radius for j in mates]) if mates else None,
                teammate_reach=np.array([scenario.robots[j].v_max * scenario.dt for j in mates]))
            assert np.array_equal(u_safe[e, i], res.u_safe)
            assert TIERS[stats.tier[e, i]] == res.tier
            assert stats.intervened[e, i] == res.intervened
            assert stats.backup[e, i] == (res.tier == "backup")
            assert stats.correction_size[e, i] == res.correction_size
            assert np.isclose(stats.min_barrier[e, i], res.min_barrier, equal_nan=True)
    assert stats.backup[3, 0]
    assert (stats.tier >= 1).any()      # some robots were corrected


def test_robot_subset_passes_others_through(seed_scenario, config):
    sim = BatchSim(seed_scenario, num_envs=8, seed=1)
    u_nom = np.full((8, 2, 2), 7.0)
    bf = BatchSafetyFilter(config, seed_scenario)
    u_safe, stats = bf.filter(sim.pose, u_nom, sim.obstacles, sim.n_obstacles, robots=np.array([1]))
    assert np.array_equal(u_safe[:, 0], u_nom[:, 0])
    assert np.all(stats.tier[:, 0] == -1) and np.all(stats.tier[:, 1] >= 0)
    assert np.all(u_safe[:, 1, 0] <= 1.0)


def test_batch_gains_layout(seed_scenario, config):
    sim = BatchSim(seed_scenario, num_envs=4, seed=2)
    bf = BatchSafetyFilter(config, seed_scenario)
    G = bf.num_constraints(sim.obstacles.shape[1])
    u_nom = np.tile(np.array([1.0, 0.0]), (4, 2, 1))
    with pytest.raises(ValueError, match="gains"):
        bf.filter(sim.pose, u_nom, sim.obstacles, sim.n_obstacles, gains=np.ones((4, 2, G + 1)))
    same = np.tile(np.array([config.gain_obstacle] * 2 + [config.gain_wall] * 4), (4, 2, 1))
    a, _ = bf.filter(sim.pose, u_nom, sim.obstacles, sim.n_obstacles, gains=same)
    b, _ = bf.filter(sim.pose, u_nom, sim.obstacles, sim.n_obstacles)
    assert np.array_equal(a, b)


def test_reckless_small_evaluation(seed_scenario, config):
    """Pure pursuit through obstacles: violations without the filter, none with it."""
    on = evaluate(seed_scenario, 24, config, seed=0)
    off = evaluate(seed_scenario, 24, None, seed=0)
    assert on.total_violation_steps == 0
    assert off.total_violation_steps > 0
    assert on.roles["pursuer"].calls > 0 and on.roles["pursuer"].interventions > 0
    assert "capture rate" in on.report() and "backup rate" in on.report()


def test_filter_keeps_a_long_reckless_run_safe(seed_scenario, config):
    """Every robot-step of 64 environments x 300 steps, checked against the sim's own
    true-geometry violation flag."""
    sim = BatchSim(seed_scenario, num_envs=64, seed=100)
    view = WorldView.of(sim)
    policies = [make_scripted("pure_pursuit", seed_scenario, 0), make_scripted("flee", seed_scenario, 1)]
    bf = BatchSafetyFilter(config, seed_scenario)
    violations = 0
    for _ in range(300):
        u_nom = np.stack([p(view) for p in policies], axis=1)
        u_safe, _ = bf.filter(sim.pose, u_nom, sim.obstacles, sim.n_obstacles)
        violations += int(sim.step(u_safe).violation.sum())
    assert violations == 0
