"""The batch core: determinism per seed, batch == B single episodes, auto-reset."""

from __future__ import annotations

import numpy as np

from pe_sim.batch import BatchSim
from pe_sim.scripted import WorldView, make_scripted


def _play(sim, policies, steps):
    """Step ``sim`` with scripted policies; return the trajectory of env 0 and all results."""
    view = WorldView.of(sim)
    poses, results = [], []
    for _ in range(steps):
        actions = np.stack([p(view) for p in policies], axis=1)
        results.append(sim.step(actions))
        poses.append(sim.pose.copy())
    return np.array(poses), results


def _policies(scenario):
    return [make_scripted("pure_pursuit", scenario, 0), make_scripted("random", scenario, 1)]


def test_same_seed_same_episodes(seed_scenario):
    a, _ = _play(BatchSim(seed_scenario, 8, seed=42), _policies(seed_scenario), 200)
    b, _ = _play(BatchSim(seed_scenario, 8, seed=42), _policies(seed_scenario), 200)
    c, _ = _play(BatchSim(seed_scenario, 8, seed=43), _policies(seed_scenario), 200)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_batch_equals_single_episodes(seed_scenario):
    """Env b of a batch seeded s plays exactly the episode a single env seeded s + b plays."""
    batch_poses, batch_results = _play(BatchSim(seed_scenario, 6, seed=100), _policies(seed_scenario), 150)
    for b in range(6):
        single_poses, single_results = _play(BatchSim(seed_scenario, 1, seed=100 + b),
                                             _policies(seed_scenario), 150)
        first_done = next((t for t, r in enumerate(single_results) if r.done[0]), 150)
        assert np.array_equal(batch_poses[:first_done, b], single_poses[:first_done, 0])
        for t in range(first_done):
            assert np.array_equal(batch_results[t].reward[b], single_results[t].reward[0])


def test_episode_is_a_function_of_its_seed_alone(seed_scenario):
    """Whatever slot plays it, seed s gives the same obstacles and start state."""
    big = BatchSim(seed_scenario, 10, seed=7)
    small = BatchSim(seed_scenario, 1, seed=12)
    assert np.array_equal(big.obstacles[5], small.obstacles[0])
    assert np.array_equal(big.pose[5], small.pose[0])


def test_auto_reset_takes_the_next_seeds_and_reports_the_final_state(seed_scenario):
    sim = BatchSim(seed_scenario, 4, seed=0)
    # drive the pursuer straight at the evader until some episode ends
    view = WorldView.of(sim)
    policies = [make_scripted("pure_pursuit", seed_scenario, 0), make_scripted("random", seed_scenario, 1)]
    seen_next = []
    for _ in range(seed_scenario.max_steps):
        before = sim.pose.copy()
        result = sim.step(np.stack([p(view) for p in policies], axis=1))
        done = np.flatnonzero(result.done)
        if done.size:
            assert np.array_equal(result.final_seed, np.sort(result.final_seed))
            for k, b in enumerate(done):
                # the final state is a step on from the pre-step state, not the new episode
                assert np.linalg.norm(result.final_pose[k, :, :2] - before[b, :, :2], axis=1).max() <= 0.051
                assert sim.step_count[b] == 0
                seen_next.append(int(sim.episode_seed[b]))
            break
    assert seen_next == list(range(4, 4 + len(seen_next)))


def test_start_states_are_safe_and_separated(seed_scenario):
    sim = BatchSim(seed_scenario, 2000, seed=0)
    assert (sim.initial_clearance() >= seed_scenario.start.obstacle_clearance - 1e-12).all()
    d = np.linalg.norm(sim.pose[:, 0, :2] - sim.pose[:, 1, :2], axis=1)
    lo, hi = seed_scenario.start.separation
    assert (d >= lo).all() and (d <= hi).all()
    assert (sim.n_obstacles == 2).all()
    # obstacles do not overlap and keep the minimum gap
    o = sim.obstacles
    gap = np.linalg.norm(o[:, 0, :2] - o[:, 1, :2], axis=1) - o[:, 0, 2] - o[:, 1, 2]
    assert (gap >= seed_scenario.obstacles.min_gap).all()


def test_nonfinite_commands_mean_stop_and_bounds_are_enforced(seed_scenario):
    sim = BatchSim(seed_scenario, 3, seed=5)
    start = sim.pose.copy()
    actions = np.zeros((3, 2, 2))
    actions[0, 0] = [np.nan, 1.0]
    actions[1, 0] = [np.inf, -np.inf]
    actions[2, 0] = [50.0, 50.0]
    sim.step(actions)
    assert np.array_equal(sim.pose[0, 0, :2], start[0, 0, :2])
    assert np.array_equal(sim.velocity[1, 0], [0.0, 0.0])
    assert np.array_equal(sim.velocity[2, 0], [1.0, 2.84])


def test_timeout_truncates(seed_scenario):
    sim = BatchSim(seed_scenario, 2, seed=3)
    result = None
    for _ in range(seed_scenario.max_steps):
        result = sim.step(np.zeros((2, 2, 2)))  # nobody moves: no capture
    assert result.truncated.all() and not result.terminated.any()
    assert (result.final_steps == seed_scenario.max_steps).all()
