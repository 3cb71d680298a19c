"""The RL environments: API conformance (Gymnasium, SB3, PettingZoo), the batch
VecEnv against single envs, seeding, the opponent and action-filter hooks."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from pettingzoo.test import parallel_api_test
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import VecMonitor

from pe_sim.envs import ENV_IDS, PolicyController, PursuitEvasionEnv, to_action, to_command
from pe_sim.envs.actions import CommandBounds
from pe_sim.envs.parallel import PursuitEvasionParallelEnv
from pe_sim.envs.vec_env import BatchVecEnv, bench_vec_env
from pe_sim.observation import ObservationBuilder, ObservationSpec, ObservationSpecMismatch
from pe_sim.scenario import RobotSpec, load_scenario, parse_scenario


def _scenario_dict(max_steps: int = 40, separation: tuple[float, float] = (0.8, 2.5)) -> dict:
    """The reference scenario with short episodes and close starts (captures happen)."""
    data = load_scenario("seed_1v1_2obs").to_dict()
    data["name"] = "test_short_1v1"
    data["max_steps"] = max_steps
    data["start"]["separation"] = list(separation)
    return data


def _scenario_2v1(max_steps: int = 40):
    data = _scenario_dict(max_steps)
    data["name"] = "test_short_2v1"
    data["robots"] = [
        {"name": "p1", "role": "pursuer", "radius": 0.15, "v_max": 1.0, "omega_max": 2.84},
        {"name": "p2", "role": "pursuer", "radius": 0.15, "v_max": 1.0, "omega_max": 2.84},
        {"name": "e", "role": "evader", "radius": 0.15, "v_max": 0.8, "omega_max": 2.84},
    ]
    return parse_scenario(data, "<test 2v1>")


SHORT_1V1 = parse_scenario(_scenario_dict(), "<test 1v1>")
SHORT_2V1 = _scenario_2v1()
# (scenario, env kwargs): learner roles and opponent kinds covering both outcomes.
SETUPS = {
    "pursuer_vs_random": (SHORT_1V1, {"role": "pursuer", "opponent": "random"}),
    "evader_vs_2_pursuers": (SHORT_2V1, {"role": "evader", "opponent": "pure_pursuit"}),
    "pursuer_with_teammate": (SHORT_2V1, {"robot": "p2", "opponent": "flee", "teammate": "pure_pursuit"}),
}


# ------------------------------------------------------------------------------ actions


def test_action_mapping_round_trip_and_clip():
    robot = RobotSpec("r", "pursuer", v_min=0.1, v_max=0.9, omega_max=2.0)
    cmd = to_command(np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [5.0, -7.0]]), robot)
    np.testing.assert_allclose(cmd, [[0.1, -2.0], [0.9, 2.0], [0.5, 0.0], [0.9, -2.0]])
    actions = np.random.default_rng(0).uniform(-1, 1, (100, 3, 2))
    robots = [robot, RobotSpec("a", "evader", v_max=0.5, omega_max=1.0), robot]
    np.testing.assert_allclose(to_action(to_command(actions, robots), robots), actions, atol=1e-12)
    fixed = RobotSpec("f", "evader", v_min=0.5, v_max=0.5, omega_max=1.0)
    np.testing.assert_allclose(to_action(np.array([0.5, 1.0]), fixed), [0.0, 1.0])
    np.testing.assert_allclose(CommandBounds.of(robot).scale, [0.9, 2.0])


# ------------------------------------------------------------------------------ API checkers


def test_gymnasium_and_sb3_checkers():
    env = gym.make("PursuitEvasion-v0", scenario=SHORT_1V1, render_mode="rgb_array").unwrapped
    assert isinstance(env, PursuitEvasionEnv)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checkers' warnings are failures here
        gym_check_env(env)
        sb3_check_env(PursuitEvasionEnv(SHORT_2V1, role="evader"), warn=True)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape[2] == 3


def test_registered_id_and_episode_info():
    assert "PursuitEvasion-v0" in ENV_IDS
    env = gym.make("PursuitEvasion-v0", scenario=SHORT_1V1)
    obs, info = env.reset(seed=7)
    assert info["episode_seed"] == 7 and obs in env.observation_space
    done, steps = False, 0
    while not done:
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        done, steps = terminated or truncated, steps + 1
        assert set(info["violation"]) == {"pursuer", "evader"}
    assert "is_success" in info and steps <= SHORT_1V1.max_steps
    assert env.reset()[1]["episode_seed"] == 8  # unseeded resets continue the sequence


@pytest.mark.parametrize("scenario", [SHORT_1V1, SHORT_2V1], ids=["1v1", "2v1"])
def test_pettingzoo_parallel_api(scenario):
    env = PursuitEvasionParallelEnv(scenario)
    parallel_api_test(env, num_cycles=200)
    obs, _ = env.reset(seed=3)
    assert set(obs) == {r.name for r in scenario.robots}
    assert env.action_space("e" if "e" in obs else "evader") is env.action_space(env.possible_agents[-1])


def test_parallel_matches_single_env():
    """Same seed, same actions: the parallel env's learner sees what the single env sees
    when the other robots' actions come from the same (recorded) commands."""
    par = PursuitEvasionParallelEnv(SHORT_1V1)
    single = PursuitEvasionEnv(SHORT_1V1, role="pursuer", opponent="flee")
    obs_p, _ = par.reset(seed=11)
    obs_s, _ = single.reset(seed=11)
    np.testing.assert_array_equal(obs_p["pursuer"], obs_s)
    rng = np.random.default_rng(0)
    from pe_sim.scripted import WorldView, make_scripted

    flee = make_scripted("flee", SHORT_1V1, 1)
    evader = SHORT_1V1.robots[1]
    while par.agents:
        a = rng.uniform(-1, 1, 2)
        e_action = to_action(flee(WorldView.of(par.sim))[0], evader)
        obs_p, rew_p, term_p, trunc_p, _ = par.step({"pursuer": a, "evader": e_action})
        obs_s, rew_s, term_s, trunc_s, _ = single.step(a)
        np.testing.assert_allclose(obs_p["pursuer"], obs_s, atol=1e-6)
        assert rew_p["pursuer"] == pytest.approx(rew_s, abs=1e-9)
        assert (term_p["pursuer"], trunc_p["pursuer"]) == (term_s, trunc_s)


# ------------------------------------------------------------------------------ BatchVecEnv


def test_vec_env_shapes_and_api():
    venv = BatchVecEnv(SHORT_2V1, 6, role="evader", seed=100)
    obs = venv.reset()
    assert obs.shape == (6, venv.observation_space.shape[0]) and obs.dtype == np.float32
    assert [i["episode_seed"] for i in venv.reset_infos] == list(range(100, 106))
    obs, rew, dones, infos = venv.step(np.zeros((6, 2), np.float32))
    assert obs.shape == (6, 37 + 7) and rew.shape == (6,) and rew.dtype == np.float32
    assert dones.shape == (6,) and dones.dtype == bool and len(infos) == 6
    assert venv.get_attr("episode_seed") == list(range(100, 106))
    assert venv.get_attr("step_count", [0, 2]) == [1, 1]
    assert venv.get_attr("learner_index") == [2] * 6
    assert venv.env_is_wrapped(gym.Wrapper) == [False] * 6
    venv.set_attr("correction_penalty_note", 1.5)
    assert venv.get_attr("correction_penalty_note", 3) == [1.5]
    with pytest.raises(ValueError):
        venv.set_attr("x", 1, indices=[0])
    assert venv.env_method("set_opponent", "flee", indices=[1, 2]) == [None, None]
    assert venv.seed(5) == [5, 6, 7, 8, 9, 10]
    venv.reset()
    assert venv.get_attr("episode_seed") == [5, 6, 7, 8, 9, 10]


def _run_vec(venv: BatchVecEnv, actions: np.ndarray):
    venv.reset()
    out = [venv.step(a) for a in actions]
    return out


def test_vec_env_deterministic_per_seed():
    actions = np.random.default_rng(1).uniform(-1, 1, (90, 4, 2)).astype(np.float32)
    runs = [_run_vec(BatchVecEnv(SHORT_1V1, 4, opponent="random", seed=42), actions) for _ in range(2)]
    n_done = 0
    for (o1, r1, d1, i1), (o2, r2, d2, i2) in zip(*runs, strict=True):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        for a, b in zip(i1, i2, strict=True):
            assert a.keys() == b.keys()
            if "terminal_observation" in a:
                np.testing.assert_array_equal(a["terminal_observation"], b["terminal_observation"])
                assert a["episode_seed"] == b["episode_seed"]
        n_done += int(d1.sum())
    assert n_done >= 4  # auto-resets happened


@pytest.mark.parametrize("setup", list(SETUPS))
def test_vec_env_equals_single_envs(setup):
    """Env i of the batch plays exactly the single env seeded s + i, terminal observation
    included; then it restarts with the next unused seed."""
    scenario, kwargs = SETUPS[setup]
    B, seed, T = 5, 300, 45
    actions = np.random.default_rng(2).uniform(-1.2, 1.2, (T, B, 2)).astype(np.float32)
    venv = BatchVecEnv(scenario, B, seed=seed, **kwargs)
    vec_obs0 = venv.reset()
    steps = [venv.step(a) for a in actions]
    terminated_any = truncated_any = False
    for i in range(B):
        env = PursuitEvasionEnv(scenario, **kwargs)
        obs, _ = env.reset(seed=seed + i)
        np.testing.assert_array_equal(obs, vec_obs0[i])
        violations = 0
        for t in range(T):
            obs, rew, term, trunc, info = env.step(actions[t, i])
            violations += info["violation"][env.robot.name]
            v_obs, v_rew, v_done, v_infos = steps[t]
            assert v_rew[i] == np.float32(rew)
            assert v_done[i] == (term or trunc)
            if term or trunc:
                vi = v_infos[i]
                np.testing.assert_array_equal(vi["terminal_observation"], obs)
                assert vi["TimeLimit.truncated"] == trunc
                assert vi["is_success"] == info["is_success"]
                assert vi["episode"]["l"] == t + 1 and vi["episode_seed"] == seed + i
                assert vi["violation_steps"] == violations
                terminated_any |= term
                truncated_any |= trunc
                # The returned observation is the first of the next episode.
                restart, _ = PursuitEvasionEnv(scenario, **kwargs).reset(
                    seed=_restart_seed(steps, t, i, seed, B))
                np.testing.assert_array_equal(restart, v_obs[i])
                break
            np.testing.assert_array_equal(obs, v_obs[i])
            assert v_infos[i] == {}
        else:
            pytest.fail(f"episode of env {i} did not end in {T} steps")
    # Both outcomes are covered across the setups (captures need a chasing opponent).
    assert terminated_any or setup != "evader_vs_2_pursuers"
    assert truncated_any or setup != "pursuer_vs_random"


def _restart_seed(steps, t: int, i: int, seed: int, B: int) -> int:
    """The seed env i restarted with at step t: auto-resets take the next unused seeds in
    (step, env) order, starting at seed + B."""
    count = 0
    for k in range(t + 1):
        for j in np.flatnonzero(steps[k][2]):
            if (k, j) == (t, i):
                return seed + B + count
            count += 1
    raise AssertionError("no reset found")


def test_vec_env_with_vec_monitor_and_is_success():
    venv = VecMonitor(BatchVecEnv(SHORT_1V1, 3, opponent="random", seed=0))
    venv.reset()
    episodes = []
    for _ in range(SHORT_1V1.max_steps):
        _, _, dones, infos = venv.step(np.ones((3, 2), np.float32))
        episodes += [i for i, d in zip(infos, dones, strict=True) if d]
    assert len(episodes) == 3
    for info in episodes:
        assert {"r", "l", "t"} <= set(info["episode"]) and "is_success" in info


def test_opponent_hook_and_policy_controller():
    """Any callable(WorldView) -> (B, 2) drives the opponent; a PolicyController runs a
    normalised-action policy on the opponent's own observations in one batched call."""
    B = 3
    stop = BatchVecEnv(SHORT_1V1, B, opponent=lambda view: np.zeros((len(view.pose), 2)), seed=0)
    stop.reset()
    start = stop.sim.pose[:, 1].copy()
    stop.step(np.zeros((B, 2), np.float32))
    np.testing.assert_allclose(stop.sim.pose[:, 1], start, rtol=0, atol=1e-12)

    calls = []

    def policy(obs: np.ndarray) -> np.ndarray:
        calls.append(obs.shape)
        return np.tile([1.0, -0.5], (len(obs), 1))

    evader = SHORT_1V1.robot_index("evader")
    controller = PolicyController(policy, SHORT_1V1, evader,
                                  spec=ObservationSpec.for_robot(SHORT_1V1, evader))
    venv = BatchVecEnv(SHORT_1V1, B, opponent=controller, seed=0)
    venv.reset()
    venv.step(np.zeros((B, 2), np.float32))
    assert calls == [(B, ObservationBuilder(SHORT_1V1, evader).spec.dim)]
    np.testing.assert_allclose(venv.sim.velocity[:, evader], [[1.0, -0.5 * 2.84]] * B)
    with pytest.raises(ObservationSpecMismatch):
        PolicyController(policy, SHORT_1V1, evader, spec=ObservationSpec.for_robot(SHORT_1V1, evader, 2))
    with pytest.raises(ValueError, match="mapping"):
        BatchVecEnv(SHORT_2V1, 2, role="evader", opponent=lambda v: np.zeros((len(v.pose), 2)))


def test_set_teammate_replaces_only_the_teammates():
    """A self-play learner's teammate is swapped between rollouts; its opponents stay."""
    B = 2
    venv = BatchVecEnv(SHORT_2V1, B, robot="p1", opponent=lambda v: np.zeros((len(v.pose), 2)), seed=0)
    mate, evader = SHORT_2V1.robot_index("p2"), SHORT_2V1.robot_index("e")
    venv.set_teammate(lambda v: np.tile([0.5, 0.25], (len(v.pose), 1)))
    venv.reset()
    venv.step(np.zeros((B, 2), np.float32))
    np.testing.assert_allclose(venv.sim.velocity[:, mate], [[0.5, 0.25]] * B)
    np.testing.assert_allclose(venv.sim.velocity[:, evader], 0.0)
    with pytest.raises(ValueError, match="unknown or learning"):
        venv.set_teammate({"p1": "pure_pursuit"})


def test_action_filter_hook_and_correction_penalty():
    """A filter that halves every robot's speed: the learner's correction is reported and
    penalised; the trajectory equals an unfiltered run fed the filtered commands."""
    calls = []

    def halve_speed(pose, u_nom, obstacles, n_obstacles):
        calls.append(u_nom.shape)
        u = u_nom.copy()
        u[..., 0] *= 0.5
        return u, {"n": len(u)}

    B, weight = 4, 0.3
    kw = {"opponent": "random", "seed": 9}
    filtered = BatchVecEnv(SHORT_1V1, B, action_filter=halve_speed, correction_penalty=weight,
                           filter_robots="learners", **kw)
    plain = BatchVecEnv(SHORT_1V1, B, **kw)
    filtered.reset(), plain.reset()
    robot = SHORT_1V1.robots[0]
    rng = np.random.default_rng(3)
    for _ in range(30):
        a = rng.uniform(-1, 1, (B, 2)).astype(np.float32)
        cmd = to_command(a, robot)
        cmd[:, 0] *= 0.5
        of, rf, _, _ = filtered.step(a)
        op, rp, _, _ = plain.step(to_action(cmd, robot).astype(np.float32))
        expected = np.abs(to_command(a, robot)[:, 0] * 0.5) / robot.v_max
        np.testing.assert_allclose(filtered.last_step.correction[:, 0], expected, rtol=1e-9)
        np.testing.assert_allclose(of, op, atol=1e-5)
        np.testing.assert_allclose(rf, rp - weight * expected, atol=1e-5)
        assert filtered.last_step.filter_stats == {"n": B}
    assert calls[0] == (B, 2, 2)
    # Single env: the same hook, reported per step in info.
    env = PursuitEvasionEnv(SHORT_1V1, action_filter=halve_speed, correction_penalty=weight)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
    assert info["correction"] == pytest.approx(0.5) and info["intervened"]


def test_ppo_smoke_on_batch_vec_env():
    torch = pytest.importorskip("torch")
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    venv = BatchVecEnv(SHORT_1V1, 8, opponent="flee", seed=0)
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=128, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"net_arch": [32, 32]})
    model.learn(total_timesteps=512)
    assert model.num_timesteps >= 512 and len(model.ep_info_buffer) > 0


def test_bench_vec_env_runs():
    res = bench_vec_env(num_envs=64, steps=20)
    print(f"BatchVecEnv B=64: {res['steps_per_s']:,.0f} env steps/s")
    assert res["steps_per_s"] > 0


def test_concat_vec_env_plays_each_variant_as_its_own_batch_with_its_own_seeds():
    """The parts of a ConcatVecEnv over two scenario variants step exactly as the same
    BatchVecEnvs alone, side by side; part k's episodes start at seed + k * stride, and
    next_seed continues every part without replaying an episode."""
    from pe_sim.envs.concat import ConcatVecEnv

    data = _scenario_dict()
    data["variants"] = {"evader_speed_ratio": [0.8], "arena_scale": [0.8, 1.2]}
    small, large = parse_scenario(data, "<test variants>").variants_of()
    assert small.arena_width < large.arena_width

    def parts():
        return [BatchVecEnv(small, 3, opponent="random"), BatchVecEnv(large, 2, opponent="random")]

    venv = ConcatVecEnv(parts(), seed_stride=1000)
    alone = parts()
    assert venv.num_envs == 5 and venv.observation_spec == alone[0].observation_spec
    venv.seed(7)
    for k, part in enumerate(alone):
        part.seed(7 + 1000 * k)
    obs = venv.reset()
    assert [i["episode_seed"] for i in venv.reset_infos] == [7, 8, 9, 1007, 1008]
    np.testing.assert_array_equal(obs, np.concatenate([p.reset() for p in alone]))
    actions = np.random.default_rng(3).uniform(-1, 1, (120, 5, 2)).astype(np.float32)
    finished = []
    for a in actions:
        o, r, _, infos = venv.step(a)
        expected = [p.step(a[s]) for p, s in zip(alone, (slice(0, 3), slice(3, 5)), strict=True)]
        np.testing.assert_array_equal(o, np.concatenate([e[0] for e in expected]))
        np.testing.assert_array_equal(r, np.concatenate([e[1] for e in expected]))
        finished += [i["episode_seed"] for i in infos if "episode_seed" in i]
    assert finished and {s // 1000 for s in finished} == {0, 1}
    assert venv.get_attr("episode_seed", [2, 3]) == [alone[0].episode_seed[2], alone[1].episode_seed[0]]
    resumed = ConcatVecEnv(parts(), seed_stride=1000)
    resumed.seed(venv.next_seed)
    resumed.reset()
    fresh = {i["episode_seed"] for i in resumed.reset_infos}
    played = set(finished) | {int(s) for p in alone for s in p.episode_seed}
    assert not fresh & played


def test_concat_vec_env_refuses_parts_that_observe_differently():
    from pe_sim.envs.concat import ConcatVecEnv

    with pytest.raises(ValueError, match="observe differently"):
        ConcatVecEnv([BatchVecEnv(SHORT_1V1, 2), BatchVecEnv(SHORT_2V1, 2, role="evader")])
