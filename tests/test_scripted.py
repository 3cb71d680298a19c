"""Scripted robots: bounds, determinism and the basic behaviour of each kind."""

from __future__ import annotations

import numpy as np
import pytest

from pe_sim.batch import BatchSim
from pe_sim.dynamics import unicycle_step
from pe_sim.scenario import Scenario, parse_scenario
from pe_sim.scripted import KINDS, FleeParams, ScriptedPolicy, WorldView, make_scripted


def _scenario(pursuers: int = 1, obstacles: int = 2, v_min: float = 0.0, evader_v: float = 0.9) -> Scenario:
    robots = [{"name": f"p{i}", "role": "pursuer", "v_min": v_min, "v_max": 1.0, "omega_max": 2.84}
              for i in range(pursuers)]
    robots.append({"name": "e", "role": "evader", "v_min": v_min, "v_max": evader_v, "omega_max": 2.5})
    return parse_scenario({
        "name": "t", "arena": {"width": 20.0, "height": 16.0}, "dt": 0.05, "max_steps": 600,
        "capture_radius": 0.5, "robots": robots, "obstacles": {"count": obstacles},
    })


def _view(pose, obstacles=None, n_obstacles=None, step=0, seed=7) -> WorldView:
    pose = np.asarray(pose, dtype=np.float64)
    b = pose.shape[0]
    if obstacles is None:
        obstacles = np.zeros((b, 0, 3))
    obstacles = np.asarray(obstacles, dtype=np.float64)
    if n_obstacles is None:
        n_obstacles = np.full(b, obstacles.shape[1])
    velocity = np.zeros((*pose.shape[:2], 2))
    velocity[..., 0] = 0.5
    return WorldView(pose=pose, velocity=velocity, obstacles=obstacles,
                     n_obstacles=np.asarray(n_obstacles, dtype=np.int64),
                     step_count=np.full(b, step, dtype=np.int64),
                     episode_seed=np.arange(seed, seed + b, dtype=np.int64))


def _hard_states(scenario: Scenario, n_random: int = 300) -> WorldView:
    """Random states plus robots at walls and corners, on obstacles and on each other."""
    rng = np.random.default_rng(0)
    n = scenario.num_robots
    hw, hh = scenario.half_width, scenario.half_height
    pose = np.column_stack([rng.uniform(-hw, hw, n_random * n), rng.uniform(-hh, hh, n_random * n),
                            rng.uniform(-np.pi, np.pi, n_random * n)]).reshape(n_random, n, 3)
    obstacles = np.zeros((n_random, 3, 3))
    obstacles[:, :, :2] = rng.uniform(-0.8, 0.8, (n_random, 3, 2)) * [hw, hh]
    obstacles[:, :, 2] = rng.uniform(0.3, 1.0, (n_random, 3))
    n_obs = rng.integers(0, 4, n_random)
    special = []
    r = scenario.robots[0].radius
    for cx, cy in ((hw - r, hh - r), (-hw + r, hh - r), (hw - r, 0.0), (0.0, -hh + r), (hw, hh),
                   (hw + 1.0, 0.0), (-hw - 0.5, -hh - 0.5)):
        for th in np.linspace(-np.pi, np.pi, 8, endpoint=False):
            row = pose[0].copy()
            row[-1] = (cx, cy, th)                       # evader in a corner / at a wall / outside
            row[0] = (cx - 1.0 * np.sign(cx or 1.0), cy, th + 1.0)
            special.append(row)
    same = pose[1].copy()
    same[:, :2] = 1.0                                    # every robot at the same point
    special.append(same)
    on_obstacle = pose[2].copy()
    on_obstacle[:, :2] = obstacles[2, 0, :2]             # on an obstacle's centre
    special.append(on_obstacle)
    k = len(special)
    pose[:k] = np.array(special)
    n_obs[2] = 3
    return _view(pose, obstacles, n_obs)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pursuers", [1, 2])
@pytest.mark.parametrize("v_min", [0.0, 0.2])
def test_commands_finite_and_within_bounds(kind, pursuers, v_min):
    scenario = _scenario(pursuers, v_min=v_min)
    view = _hard_states(scenario)
    for i, robot in enumerate(scenario.robots):
        u = make_scripted(kind, scenario, i)(view)
        assert u.shape == (view.pose.shape[0], 2)
        assert np.all(np.isfinite(u))
        assert np.all(u[:, 0] >= robot.v_min) and np.all(u[:, 0] <= robot.v_max)
        assert np.all(np.abs(u[:, 1]) <= robot.omega_max)


@pytest.mark.parametrize("kind", KINDS)
def test_non_finite_state_gives_a_stop(kind):
    scenario = _scenario(1, obstacles=0)
    view = _view([[[np.nan, 0.0, 0.0], [1.0, np.inf, 0.0]]])
    for i in range(2):
        with np.errstate(invalid="ignore"):
            u = make_scripted(kind, scenario, i)(view)
        assert np.all(np.isfinite(u))
        assert 0.0 <= u[0, 0] <= scenario.robots[i].v_max


def test_unknown_kind_rejected():
    from pe_sim.cli import UserError

    with pytest.raises(UserError, match="unknown scripted policy"):
        make_scripted("teleport", _scenario(), 0)


def test_flee_gains_distance_in_open_space():
    scenario = _scenario(1, obstacles=0)
    flee = make_scripted("flee", scenario, 1)
    rng = np.random.default_rng(1)
    b = 64
    evader = np.column_stack([rng.uniform(-2, 2, b), rng.uniform(-2, 2, b), rng.uniform(-np.pi, np.pi, b)])
    bearing = rng.uniform(-np.pi, np.pi, b)
    dist = rng.uniform(1.0, 4.0, b)
    pursuer = np.column_stack([evader[:, 0] + dist * np.cos(bearing), evader[:, 1] + dist * np.sin(bearing),
                               bearing + np.pi])           # facing the evader
    pose = np.stack([pursuer, evader], axis=1)
    # Headed anywhere but towards the pursuer: one step already gains distance.
    away = bearing + np.pi
    pose[:, 1, 2] = away + rng.uniform(-1.2, 1.2, b)
    u = flee(_view(pose))
    assert np.all(u[:, 0] == pytest.approx(scenario.robots[1].v_max))
    after = unicycle_step(pose[:, 1], u, scenario.dt)
    assert np.all(np.hypot(*(after[:, :2] - pursuer[:, :2]).T) > dist)
    # Headed straight at it: it turns away (a turn takes up to 1.3 s here) and is
    # further off within two seconds.
    pose[:, 1, 2] = bearing
    for _ in range(40):
        u = flee(_view(pose))
        pose[:, 1] = unicycle_step(pose[:, 1], u, scenario.dt)
    assert np.all(np.hypot(*(pose[:, 1, :2] - pursuer[:, :2]).T) > dist)


def test_flee_leaves_a_corner_sideways_and_does_not_hit_the_wall():
    scenario = _scenario(1, obstacles=0)
    hw, hh = scenario.half_width, scenario.half_height
    sim = BatchSim(scenario, 1, seed=0)
    # Evader in the top-right corner facing into it; pursuer closing in along the diagonal.
    sim.pose[0, 1] = (hw - 1.0, hh - 1.0, np.pi / 4)
    sim.pose[0, 0] = (hw - 5.0, hh - 5.0, np.pi / 4)
    policies = [make_scripted("pure_pursuit", scenario, 0), make_scripted("flee", scenario, 1)]
    for _ in range(100):
        view = WorldView.of(sim)
        result = sim.step(np.stack([p(view) for p in policies], axis=1), auto_reset=False)
        assert not result.violation[0, 1]
        if result.terminated[0]:
            break
    assert not result.terminated[0]
    x, y = sim.pose[0, 1, :2]
    assert np.hypot(hw - x, hh - y) > 3.0   # out of the corner, not waiting in it


def test_flee_keeps_off_obstacles_and_walls_in_play():
    scenario = _scenario(1, obstacles=4)
    sim = BatchSim(scenario, 64, seed=0)
    policies = [make_scripted("pure_pursuit", scenario, 0), make_scripted("flee", scenario, 1)]
    for _ in range(200):
        view = WorldView.of(sim)
        result = sim.step(np.stack([p(view) for p in policies], axis=1))
        assert not result.violation[:, 1].any()


def test_flee_params_are_used():
    scenario = _scenario(1, obstacles=0)
    policy = make_scripted("flee", scenario, 1, flee=FleeParams(candidates=8, horizon=2.0))
    assert len(policy._flee_offsets) == 8
    u = policy(_view([[[3.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]))
    assert np.all(np.isfinite(u))


def test_pure_pursuit_turns_towards_the_target():
    scenario = _scenario(1, obstacles=0)
    pp = make_scripted("pure_pursuit", scenario, 0)
    rng = np.random.default_rng(2)
    b = 100
    pursuer = np.column_stack([rng.uniform(-3, 3, b), rng.uniform(-3, 3, b), rng.uniform(-np.pi, np.pi, b)])
    evader = pursuer.copy()
    bearing = rng.uniform(-np.pi, np.pi, b)
    evader[:, 0] += 3.0 * np.cos(bearing)
    evader[:, 1] += 3.0 * np.sin(bearing)
    pose = np.stack([pursuer, evader], axis=1)
    u = pp(_view(pose))
    error = (bearing - pursuer[:, 2] + np.pi) % (2 * np.pi) - np.pi
    big = np.abs(error) > 1e-3
    assert np.all(np.sign(u[big, 1]) == np.sign(error[big]))
    after = unicycle_step(pursuer, u, scenario.dt)
    new_error = (np.arctan2(evader[:, 1] - after[:, 1], evader[:, 0] - after[:, 0]) - after[:, 2]
                 + np.pi) % (2 * np.pi) - np.pi
    assert np.all(np.abs(new_error[big]) < np.abs(error[big]))
    # Roughly facing the target: full speed.
    ahead = np.abs(error) < 0.1
    assert np.all(u[ahead, 0] > 0.99)


@pytest.mark.parametrize("kind", ["pure_pursuit", "proportional_navigation"])
def test_pursuers_catch_a_standing_target(kind):
    scenario = _scenario(1, obstacles=0)
    sim = BatchSim(scenario, 16, seed=3)
    pursuer = make_scripted(kind, scenario, 0)
    caught = np.zeros(16, dtype=bool)
    for _ in range(400):
        view = WorldView.of(sim)
        result = sim.step(np.stack([pursuer(view), np.zeros((16, 2))], axis=1), auto_reset=False)
        caught |= result.terminated
        if caught.all():
            break
    assert caught.all()


def test_proportional_navigation_leads_a_crossing_target():
    scenario = _scenario(1, obstacles=0)
    pn = make_scripted("proportional_navigation", scenario, 0)
    pp = make_scripted("pure_pursuit", scenario, 0)
    # Target dead ahead, crossing to the left: PN turns left more than the heading error asks.
    view = _view([[[0.0, 0.0, 0.0], [4.0, 0.0, np.pi / 2]]])
    view.velocity[0, 1] = (0.9, 0.0)
    view.velocity[0, 0] = (1.0, 0.0)
    assert pp(view)[0, 1] == pytest.approx(0.0)
    assert pn(view)[0, 1] > 0.1


def test_random_is_deterministic_per_seed_and_step():
    scenario = _scenario(1)
    policy = make_scripted("random", scenario, 1)
    pose = np.zeros((4, 2, 3))
    a = policy(_view(pose, step=5))
    b = make_scripted("random", scenario, 1)(_view(pose + 1.0, step=5))   # state does not matter
    c = policy(_view(pose, step=6))
    d = policy(_view(pose, step=5, seed=100))
    np.testing.assert_array_equal(a, b)
    assert not np.any(a == c)
    assert not np.any(a == d)
    assert len(np.unique(a[:, 0])) == 4                                     # differs across episodes
    other = make_scripted("random", scenario, 0)(_view(pose, step=5))
    assert not np.any(other == a)                                           # and across robots


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic(kind):
    scenario = _scenario(2)
    view = _hard_states(scenario, 80)
    a = ScriptedPolicy(kind, scenario, 2)(view)
    b = ScriptedPolicy(kind, scenario, 2)(view)
    np.testing.assert_array_equal(a, b)
