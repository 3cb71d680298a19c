"""The PFSP opponent pool inside the batch VecEnv: weights, per-episode draws, one batched
call per member, and win counting from episode infos."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pe_sim.envs.vec_env import BatchVecEnv
from pe_sim.scenario import load_scenario
from pe_training.pool import OpponentPool, PoolStats, pfsp_weights


def test_pfsp_weightings():
    np.testing.assert_allclose(pfsp_weights([0.0, 0.5, 1.0], "hard", 2.0), [0.8, 0.2, 0.0])
    np.testing.assert_allclose(pfsp_weights([0.0, 0.5, 1.0], "hard", 1.0), [2 / 3, 1 / 3, 0.0])
    np.testing.assert_allclose(pfsp_weights([0.0, 0.5, 0.9], "var"), [0.0, 0.25, 0.09] / np.float64(0.34))
    np.testing.assert_allclose(pfsp_weights([0.2, 0.7], "uniform"), [0.5, 0.5])
    np.testing.assert_allclose(pfsp_weights([1.0, 1.0], "hard"), [0.5, 0.5])  # beats everyone: uniform
    with pytest.raises(ValueError, match="weighting"):
        pfsp_weights([0.5], "easy")


class ConstantEvader:
    """A member that drives at a fixed command and logs the batch size of every call."""

    def __init__(self, v: float) -> None:
        self.v = v
        self.calls: list[int] = []

    def __call__(self, view) -> np.ndarray:
        self.calls.append(view.pose.shape[0])
        return np.tile([self.v, 0.0], (view.pose.shape[0], 1))


def short_scenario(steps: int = 12):
    return dataclasses.replace(load_scenario("bench_1v1_flee"), max_steps=steps)


def pooled_env(members, probabilities, num_envs=32, steps=12):
    scenario = short_scenario(steps)
    pool = OpponentPool(num_envs, seed=0)
    pool.set_members([f"m{i}" for i in range(len(members))], [{1: m} for m in members], probabilities)
    env = BatchVecEnv(scenario, num_envs, role="pursuer", opponent={"evader": pool.seat(1)}, seed=5)
    return env, pool


def test_each_member_drives_its_own_envs_in_one_call_per_step():
    slow, fast = ConstantEvader(0.1), ConstantEvader(0.9)
    env, pool = pooled_env([slow, fast], [0.5, 0.5])
    env.reset()
    stand = np.tile([-1.0, 0.0], (env.num_envs, 1)).astype(np.float32)
    env.step(stand)
    assignment = pool.assignment.copy()
    assert 0 < (assignment == 0).sum() < env.num_envs  # both members in play
    assert slow.calls == [(assignment == 0).sum()] and fast.calls == [(assignment == 1).sum()]
    speed = env.sim.velocity[:, 1, 0]
    np.testing.assert_allclose(speed[assignment == 0], 0.1)
    np.testing.assert_allclose(speed[assignment == 1], 0.9)
    for _ in range(5):  # mid-episode: nobody switches opponent
        env.step(stand)
        np.testing.assert_array_equal(pool.assignment, assignment)
    assert len(slow.calls) == len(fast.calls) == 6


class GainedEvader(ConstantEvader):
    """A member that chooses its own filter gains (as a BarrierNet policy does)."""

    def __init__(self, v: float, gain: float) -> None:
        super().__init__(v)
        self.gain = gain

    def gains(self, view) -> np.ndarray:
        m = view.obstacles.shape[1]
        return np.full((view.pose.shape[0], m + 4), self.gain)


def test_members_choosing_their_gains_reach_the_filter_in_the_loop():
    """The env's filter runs each pool member's robot with the member's own gains (NaN, i.e.
    the filter's defaults, for members without), as pe-eval deploys a BarrierNet policy."""
    from pe_training.envs import default_gains, make_action_filter

    scenario = short_scenario()
    seen = []
    inner = make_action_filter("vcp_cbf", scenario)

    def recording_filter(pose, u_nom, obstacles, n_obstacles, robot_gains=None):
        seen.append(robot_gains)
        return inner(pose, u_nom, obstacles, n_obstacles, robot_gains=robot_gains)

    pool = OpponentPool(16, seed=0)
    pool.set_members(["plain", "gained"], [{1: ConstantEvader(0.5)}, {1: GainedEvader(0.5, 7.5)}], [0.5, 0.5])
    env = BatchVecEnv(scenario, 16, role="pursuer", opponent={"evader": pool.seat(1)}, seed=5,
                      action_filter=recording_filter)
    env.reset()
    env.step(np.zeros((16, 2), np.float32))
    gains = seen[-1][1]
    gained = pool.assignment == 1
    assert 0 < gained.sum() < 16
    assert np.all(gains[gained] == 7.5) and np.all(np.isnan(gains[~gained]))
    # NaN rows get the defaults; a gain of the defaults' value changes nothing
    s = env.sim
    u = np.zeros((16, 2, 2))
    from pe_safety_filter.config import load_filter_config
    from pe_safety_filter.filter import BatchSafetyFilter

    batch_filter = BatchSafetyFilter(load_filter_config("vcp_cbf"), scenario)
    same = default_gains(batch_filter, 16, s.obstacles.shape[1])[:, 1, :gains.shape[1]]
    a, _ = inner(s.pose, u, s.obstacles, s.n_obstacles, robot_gains={1: same})
    b, _ = inner(s.pose, u, s.obstacles, s.n_obstacles)
    c, _ = inner(s.pose, u, s.obstacles, s.n_obstacles, robot_gains={1: np.full_like(same, np.nan)})
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(c, b)
    own = np.random.default_rng(0).uniform(0.5, 8.0, same.shape)  # forwarded as the robot's gains
    full = default_gains(batch_filter, 16, s.obstacles.shape[1])
    full[:, 1, :own.shape[1]] = own
    d, _ = inner(s.pose, u, s.obstacles, s.n_obstacles, robot_gains={1: own})
    e, _ = batch_filter.filter(s.pose, u, s.obstacles, s.n_obstacles, gains=full)
    np.testing.assert_array_equal(d, e)


def test_draws_follow_the_probabilities_and_new_episodes_redraw():
    a, b = ConstantEvader(0.2), ConstantEvader(0.8)
    env, pool = pooled_env([a, b], [0.25, 0.75], num_envs=400, steps=3)
    env.reset()
    stand = np.tile([-1.0, 0.0], (env.num_envs, 1)).astype(np.float32)
    env.step(stand)
    first = pool.assignment.copy()
    assert 0.17 < (first == 0).mean() < 0.33
    for _ in range(3):  # the 3-step episodes end; the next step starts new ones
        env.step(stand)
    assert (pool.assignment != first).any()
    pool.set_members(["m1"], [{1: b}], [1.0])  # m0 leaves the pool: its envs move at once
    assert (pool.assignment == 0).all() and pool.names == ["m1"]


def test_pool_stats_count_the_learners_wins_per_member():
    a, b = ConstantEvader(0.0), ConstantEvader(0.0)
    env, pool = pooled_env([a, b], [0.5, 0.5], num_envs=16, steps=4)
    stats = PoolStats([pool])
    env.reset()
    stand = np.tile([-1.0, 0.0], (env.num_envs, 1)).astype(np.float32)
    expected = {"m0": 0, "m1": 0}
    for _ in range(8):
        _, _, dones, infos = env.step(stand)
        for i in np.flatnonzero(dones):
            expected[pool.names[pool.episode_member[infos[i]["episode_seed"]]]] += 1
        stats.locals = {"infos": infos}
        stats._on_step()
    assert stats.games == expected and sum(expected.values()) == 32  # 2 episodes x 16 envs
    assert stats.win_rates() == {"m0": 0.0, "m1": 0.0}  # a standing pursuer never captures
    assert not pool.episode_member or min(pool.episode_member) >= 0
