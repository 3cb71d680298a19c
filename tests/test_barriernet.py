"""BarrierNet: the differentiable QP layer (gradcheck, agreement with the filter), the
gain layout, the exported network + filter QP vs the training-time layer, the PPO
fixes, and smoke training of both methods."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pe_policy.barriernet_policy import (
    BarrierNetPolicy,
    GainLayout,
    filter_gains,
    is_barriernet_onnx,
    nearest_order,
)
from pe_policy.policy import load_policy
from pe_safety_filter.barriers import assemble_constraints
from pe_safety_filter.config import load_filter_config
from pe_safety_filter.exact_qp import solve_qp
from pe_safety_filter.filter import BatchSafetyFilter
from pe_sim.batch import BatchSim
from pe_sim.scenario import load_scenario
from pe_sim.scripted import WorldView
from pe_training.barriernet.config import load_barriernet_config
from pe_training.barriernet.constraints import ConstraintBuilder
from pe_training.barriernet.ipm import filter_qp_ipm
from pe_training.barriernet.layer import active_sets, cbf_qp

torch.set_num_threads(1)
LAYOUT = GainLayout(k_obstacles=4, n_teammates=0, gain_min=0.5, gain_max=8.0)
LO = np.array([0.0, -2.84])
HI = np.array([1.0, 2.84])


@pytest.fixture(scope="module")
def bench():
    return load_scenario("bench_1v1_flee")


@pytest.fixture(scope="module")
def fconfig():
    return load_filter_config("vcp_cbf")


def _states(scenario, n_envs=64, steps=80, seed=11):
    """Batch states after ``steps`` steps of pure pursuit (ignores obstacles) vs flee."""
    from pe_sim.scripted import make_scripted

    sim = BatchSim(scenario, n_envs, seed=seed)
    view = WorldView.of(sim)
    pursuer = make_scripted("pure_pursuit", scenario, 0)
    evader = make_scripted("flee", scenario, 1)
    for _ in range(steps):
        sim.step(np.stack([pursuer(view), evader(view)], axis=1))
    return sim


def _near_obstacle_problems(fconfig):
    """Small problems with 0, 1 and 2 defining rows: a robot heading at an obstacle."""
    scenario = load_scenario("bench_1v1_flee")
    rows = ConstraintBuilder(fconfig, scenario, 0, LAYOUT)
    n = 6
    pose = np.zeros((n, 2, 3))
    pose[:, 1] = (8.0, 8.0, 0.0)
    obstacles = np.zeros((n, 4, 3))
    obstacles[:, 0] = (1.0, 0.0, 0.5)
    # Distance from the obstacle surface shrinks with e; headings slightly off-axis.
    for e in range(n):
        pose[e, 0] = (1.0 - (0.5 + 0.15 + 0.15) - 0.15 - 0.02 - 0.03 * e, 0.05 * (e - 2), 0.1 * (e - 3))
    pose[0, 0] = (-3.0, 0.0, 0.0)         # far from everything: nothing active
    A, b1, _ = rows.rows(pose, obstacles, np.ones(n, dtype=np.int64))
    u_ref = np.array([[1.0 - 0.05 * e, 0.3 * (e - 3)] for e in range(n)])
    u_ref[0] = (0.5, 0.3)
    u_ref[n - 1] = (0.98, 2.7)            # near a box corner
    gains = np.full((n, LAYOUT.size), 2.0)
    gains[:, 0] = 1.0 + 0.5 * np.arange(n)
    return A, b1, u_ref, gains


# --------------------------------------------------------------------------- the layer


def test_layer_matches_the_filter_on_simulated_states(bench, fconfig):
    sim = _states(bench)
    rows = ConstraintBuilder(fconfig, bench, 0, LAYOUT)
    A, b1, order = rows.rows(sim.pose, sim.obstacles, sim.n_obstacles)
    rng = np.random.default_rng(0)
    B = sim.num_envs
    u_ref = rng.uniform(LO, HI, (B, 2))
    slot = LAYOUT.gains_from_unit(rng.uniform(-1, 1, (B, LAYOUT.size)))
    W = torch.as_tensor(fconfig.weight_matrix)
    u, feasible = cbf_qp(torch.as_tensor(u_ref), torch.as_tensor(slot), torch.as_tensor(A),
                         torch.as_tensor(b1), W, torch.as_tensor(LO), torch.as_tensor(HI))
    u_enum, _ = cbf_qp(torch.as_tensor(u_ref), torch.as_tensor(slot), torch.as_tensor(A),
                       torch.as_tensor(b1), W, torch.as_tensor(LO), torch.as_tensor(HI), mode="enumerate")
    assert feasible.all()
    assert torch.allclose(u, u_enum, atol=1e-12)
    # The filter's own assembly in its constraint order with the mapped gains, its exact solver.
    fg = filter_gains(slot, order, sim.obstacles.shape[1], fconfig.gain_obstacle)
    m = sim.obstacles.shape[1]
    for e in range(B):
        n = int(sim.n_obstacles[e])
        g = np.concatenate([fg[e, :n], fg[e, m:]])
        Af, bf, _ = assemble_constraints(sim.pose[e, 0], fconfig.lookahead, 0.15, sim.obstacles[e, :n],
                                         bench.half_width, bench.half_height, gains=g)
        u_f, _, _ = solve_qp(Af, bf, fconfig.weight_matrix, u_ref[e], LO, HI)
        assert np.allclose(u_f, u[e].numpy(), atol=1e-9)
    # ... and the batch filter itself wherever it used its first QP (nominal / qp tiers).
    gains = np.full((B, 2, fg.shape[1]), 2.0)
    gains[:, 0] = fg
    commands = np.zeros((B, 2, 2))
    commands[:, 0] = u_ref
    safe, stats = BatchSafetyFilter(fconfig, bench).filter(sim.pose, commands, sim.obstacles, sim.n_obstacles,
                                                           gains=gains)
    first_qp = stats.tier[:, 0] <= 1
    assert first_qp.mean() > 0.9
    assert np.allclose(safe[first_qp, 0], u.numpy()[first_qp], atol=1e-12)


@pytest.mark.parametrize("mode", ["active_set", "enumerate"])
def test_layer_gradcheck_float64_with_active_constraints(fconfig, mode):
    A, b1, u_ref, gains = _near_obstacle_problems(fconfig)
    W = torch.as_tensor(fconfig.weight_matrix)
    n_act, act, _ = active_sets(A, gains * b1, u_ref, fconfig.weight_matrix, LO, HI)
    assert set(n_act.tolist()) >= {0, 1, 2}              # inactive, one row, two rows
    assert (act[n_act >= 1, 0] == 0).any()               # the obstacle barrier is active somewhere
    tA, tb1 = torch.as_tensor(A), torch.as_tensor(b1)
    lo, hi = torch.as_tensor(LO), torch.as_tensor(HI)

    def f(u, g):
        return cbf_qp(u, g, tA, tb1, W, lo, hi, mode=mode)[0]

    u = torch.tensor(u_ref, requires_grad=True)
    g = torch.tensor(gains, requires_grad=True)
    assert torch.autograd.gradcheck(f, (u, g), eps=1e-6, atol=1e-6)
    # Both modes give the same gradients.
    out = f(u, g)
    grad_u, grad_g = torch.autograd.grad(out.sum(), (u, g))
    other = "enumerate" if mode == "active_set" else "active_set"
    out2 = cbf_qp(u, g, tA, tb1, W, lo, hi, mode=other)[0]
    grad_u2, grad_g2 = torch.autograd.grad(out2.sum(), (u, g))
    assert torch.allclose(grad_u, grad_u2) and torch.allclose(grad_g, grad_g2)
    assert grad_g[:, 0].abs().max() > 0.0                # the gains get gradient where active


def test_ipm_baseline_agrees_on_well_scaled_problems(fconfig):
    rng = np.random.default_rng(3)
    B, m = 64, 4
    A = rng.normal(size=(B, m, 2))
    A /= np.linalg.norm(A, axis=2, keepdims=True)
    b1 = -np.abs(rng.normal(scale=0.4, size=(B, m)))
    u_ref = rng.uniform(LO, HI, (B, 2))
    args = [torch.as_tensor(u_ref), torch.ones(B, m, dtype=torch.float64), torch.as_tensor(A),
            torch.as_tensor(b1), torch.as_tensor(fconfig.weight_matrix), torch.as_tensor(LO),
            torch.as_tensor(HI)]
    exact, _ = cbf_qp(*args)
    ipm = filter_qp_ipm(*args)
    assert (exact - ipm).abs().max() < 1e-5


# --------------------------------------------------------------------------- gain layout


def test_gain_map_and_nearest_order_match_the_observation(bench):
    a = np.linspace(-1, 1, 9)
    g = LAYOUT.gains_from_unit(a)
    assert g[0] == pytest.approx(0.5) and g[-1] == pytest.approx(8.0) and g[4] == pytest.approx(2.0)
    assert np.allclose(LAYOUT.unit_from_gains(g), a)
    sim = _states(bench, n_envs=32, steps=30)
    from pe_sim.observation import ObservationBuilder

    obs = ObservationBuilder(bench, 0).build(sim.pose, sim.velocity, sim.obstacles, sim.n_obstacles)
    order = nearest_order(sim.pose, sim.obstacles, sim.n_obstacles, 0, 0.15, 4)
    for e in range(sim.num_envs):
        x, y, th = sim.pose[e, 0]
        for s in range(4):
            base = 17 + 5 * s
            if order[e, s] < 0:
                assert obs[e, base + 4] == 0.0
                continue
            c = sim.obstacles[e, order[e, s]]
            dx, dy = c[0] - x, c[1] - y
            assert obs[e, base] == pytest.approx((math.cos(th) * dx + math.sin(th) * dy) / 10.0, abs=1e-5)
            assert obs[e, base + 2] == pytest.approx(c[2] / 10.0, abs=1e-6)


# --------------------------------------------------------------------------- export


def test_exported_network_plus_filter_qp_reproduces_the_layer(tmp_path, fconfig):
    from pe_training.barriernet.check import compare, record_states
    from pe_training.barriernet.export import export_barriernet
    from pe_training.barriernet.network import make_policy
    from pe_training.barriernet.rollout import Setup
    from pe_training.train import policy_metadata

    cfg = load_barriernet_config("barriernet_imitation_bench", ["name=bn_export_test"])
    scenario = load_scenario(cfg.scenario)
    setup = Setup(cfg, scenario, 0)
    torch.manual_seed(0)
    policy = make_policy(setup.spec.dim, setup.layout, np.zeros(setup.spec.dim), np.full(setup.spec.dim, 0.3),
                         cfg.net_arch)
    with torch.no_grad():  # a non-trivial network: u_ref and gains vary over the states
        policy.action_net[0].weight.normal_(0.0, 0.5)
    path = export_barriernet(policy, setup.layout, setup.lo, setup.hi, tmp_path / "bn.onnx",
                             policy_metadata(cfg, scenario, 0), {"filter": fconfig.to_dict()})
    assert is_barriernet_onnx(path)
    states = record_states(setup, "scripted:pure_pursuit", 1000, seed=123)
    res = compare(setup, policy, path, states)
    assert res["n"] == 1000
    assert res["compared"] >= 950                       # the rest: the filter tightened / backed up
    assert res["qp_active"] >= 5                        # the QP changed u_ref on some of them
    assert res["max_abs_du_network"] < 1e-4             # onnxruntime == torch (float32, gains <= 8)
    assert res["max_abs_du"] < 1e-4                     # network + filter QP == training-time layer
    policy_loaded = load_policy(str(path), scenario, 0)
    assert isinstance(policy_loaded, BarrierNetPolicy)
    assert policy_loaded.gains(states).shape == (1000, states.obstacles.shape[1] + 4)


# --------------------------------------------------------------------------- PPO fixes


def _ppo_model(tmp_path, penalty=2.0):
    from stable_baselines3 import PPO

    from pe_training.activations import ACTIVATIONS
    from pe_training.barriernet.network import BarrierNetActorCritic, policy_net_arch
    from pe_training.barriernet.ppo import make_env
    from pe_training.barriernet.rollout import Setup

    cfg = load_barriernet_config("barriernet_ppo_bench", [
        "ppo.num_envs=8", "ppo.n_steps=32", "ppo.batch_size=64", "ppo.n_epochs=1", "ppo.warm_start=null",
        f"ppo.correction_penalty={penalty}", f"output_dir={tmp_path}"])
    scenario = load_scenario(cfg.scenario)
    setup = Setup(cfg, scenario, 0)
    env = make_env(cfg, setup)
    dim = setup.spec.dim
    model = PPO(BarrierNetActorCritic, env, n_steps=32, batch_size=64, n_epochs=1, device="cpu", seed=0,
                policy_kwargs={"net_arch": policy_net_arch([16, 16]), "activation_fn": ACTIVATIONS["tanh"],
                               "obs_mean": [0.0] * dim, "obs_std": [1.0] * dim,
                               "fixed_std": [0.1, 0.3, 0.2]})
    return cfg, setup, env, model


def test_ppo_env_applies_the_qp_with_the_sampled_gains_and_penalises_the_correction(tmp_path, bench):
    _, _, env, _ = _ppo_model(tmp_path)
    assert env.action_space.shape == (2 + LAYOUT.size,)
    env.reset()
    # Drive straight at full speed with the lowest and the highest gains: somewhere the QP acts,
    # and it acts differently with different gains.
    corrections = {}
    for a_g in (-1.0, 1.0):
        env.seed(5)
        env.reset()
        total = np.zeros(env.num_envs)
        for _ in range(150):
            action = np.concatenate([np.tile([1.0, 0.0], (env.num_envs, 1)),
                                     np.full((env.num_envs, LAYOUT.size), a_g)], axis=1)
            _, reward, _, _ = env.step(action.astype(np.float32))
            step = env.last_step
            expected = step.result.reward[:, 0] - 2.0 * step.correction[:, 0]
            assert np.allclose(reward, expected, atol=1e-5)
            total += step.correction[:, 0]
        corrections[a_g] = total
    assert corrections[-1.0].max() > 0.0
    assert not np.allclose(corrections[-1.0], corrections[1.0])
    assert env.last_gains is not None and np.allclose(env.last_gains, 8.0)


def test_ppo_fixed_std_stored_pre_qp_actions_and_trained_gains(tmp_path):
    _, _, _, model = _ppo_model(tmp_path)
    policy = model.policy
    assert not policy.log_std.requires_grad
    log_std0 = policy.log_std.detach().clone()
    w0 = policy.action_net[0].weight.detach().clone()
    model.learn(total_timesteps=256)
    buf = model.rollout_buffer
    # The buffer holds the sampled (pre-QP, unclipped) actions: 2 command + G gain components.
    actions = torch.as_tensor(buf.actions.reshape(-1, 2 + LAYOUT.size))
    obs = torch.as_tensor(buf.observations.reshape(len(actions), -1))
    assert (actions.abs() > 1.0).any() or actions.std() > 0.1
    # evaluate_actions scores exactly those stored actions under a Gaussian with the fixed std.
    _, log_prob, _ = policy.evaluate_actions(obs, actions)
    with torch.no_grad():
        mean = policy.actor_unit(obs)
    std = torch.exp(log_std0)
    assert torch.allclose(std[:3], torch.tensor([0.1, 0.3, 0.2])) and torch.allclose(std[3:], std[2])
    manual = torch.distributions.Normal(mean, std).log_prob(actions).sum(-1)
    assert torch.allclose(log_prob, manual, atol=1e-4)
    # The std never moves; the gain rows of the head do (the gains are part of the sampled action).
    assert torch.equal(policy.log_std.detach(), log_std0)
    dw = (policy.action_net[0].weight.detach() - w0).abs()
    assert dw[2:].max() > 0.0 and dw[:2].max() > 0.0


# --------------------------------------------------------------------------- smoke training


def test_smoke_training_both_methods_and_pe_eval(tmp_path, bench):
    from pe_bringup.evaluate import main as pe_eval
    from pe_training.barriernet.cli import main as train

    out = tmp_path / "runs"
    assert train(["barriernet_imitation_bench", "--smoke", "--output-dir", str(out), "--no-progress",
                  "--ship", str(tmp_path / "models")]) == 0
    imit = out / "barriernet_imitation_bench-smoke"
    card = json.loads((tmp_path / "models" / "barriernet_imitation_bench-smoke.model_card.json").read_text())
    assert card["config"]["method"] == "imitation" and card["export_check"]["max_abs_du"] < 1e-4
    assert (imit / "policy.pt").is_file()
    # PPO warm-started from the imitation smoke run.
    assert train(["barriernet_ppo_bench", "--smoke", "--output-dir", str(out), "--no-progress",
                  "--set", f"ppo.warm_start={imit}", "--no-final-eval"]) == 0
    ppo_card = json.loads((out / "barriernet_ppo_bench-smoke" / "model_card.json").read_text())
    assert ppo_card["config"]["method"] == "ppo" and ppo_card["steps"] >= 2048
    # pe-eval runs the shipped file behind the filter with its gains.
    onnx = tmp_path / "models" / "barriernet_imitation_bench-smoke.onnx"
    assert pe_eval(["--scenario", "bench_1v1_flee", "--episodes", "4", "--num-envs", "4", "--pursuer",
                    str(onnx), "--filter", "all", "--out", str(tmp_path / "eval")]) == 0
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["roles"]["pursuer"]["filter_calls"] > 0
    assert summary["roles"]["pursuer"]["violation_step_rate"] == 0.0
