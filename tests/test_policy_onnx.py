"""The exported-policy contract: ONNX == PyTorch deterministic action, metadata, spec and
role checks, batch and single observations, and the common Policy interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from pe_policy.contract import KEY_CONFIG_HASH, KEY_ROLE, KEY_SPEC, PolicyContractError, PolicyMetadata
from pe_policy.onnx_policy import OnnxPolicy, read_metadata
from pe_policy.policy import Policy, ScriptedPolicyAdapter, load_policy
from pe_sim.envs.vec_env import BatchVecEnv
from pe_sim.observation import ObservationSpec, ObservationSpecMismatch
from pe_sim.scenario import parse_scenario
from pe_sim.scripted import WorldView
from pe_training.activations import ACTIVATIONS
from pe_training.export import export_onnx, torch_deterministic_action

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def exported(seed_scenario, tmp_path_factory):
    """An untrained PPO pursuer (the training configs' tanh) with non-trivial weights and
    VecNormalize statistics, exported."""
    venv = BatchVecEnv(seed_scenario, 4, role="pursuer", opponent="random", seed=0)
    env = VecNormalize(venv, norm_obs=True, norm_reward=True, clip_obs=5.0)
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=32, device="cpu", seed=0,
                policy_kwargs={"net_arch": [32, 32], "activation_fn": ACTIVATIONS["tanh"]})
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # weights large enough that actions span the box and some get clipped
        for p in model.policy.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.6)
    rng = np.random.default_rng(0)
    dim = venv.observation_space.shape[0]
    env.obs_rms.mean = rng.normal(0.0, 0.5, dim)
    env.obs_rms.var = rng.uniform(0.05, 2.0, dim)
    meta = PolicyMetadata(spec=venv.observation_spec, action_low=(0.0, -2.84), action_high=(1.0, 2.84),
                          role="pursuer", scenario=seed_scenario.name, config_hash="0123456789abcdef",
                          name="test_policy")
    path = export_onnx(model.policy, env, tmp_path_factory.mktemp("onnx") / "policy.onnx", meta)
    return model, env, path


def test_onnx_equals_pytorch_on_1000_random_observations(exported, seed_scenario):
    model, env, path = exported
    policy = OnnxPolicy(path, seed_scenario, 0)
    obs = np.random.default_rng(1).normal(0.0, 1.5, (1000, policy.spec.dim)).astype(np.float32)
    reference = torch_deterministic_action(model.policy, env, obs)
    got = policy.predict(obs)
    assert got.shape == (1000, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference, atol=1e-5, rtol=0)
    inside = np.abs(reference) < 0.999
    assert inside.mean() > 0.2 and (~inside).mean() > 0.05  # both the MLP and the clip are exercised


def test_metadata_and_checker(exported, seed_scenario):
    _, _, path = exported
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert props[KEY_ROLE] == "pursuer" and props[KEY_CONFIG_HASH] == "0123456789abcdef"
    meta = read_metadata(path)
    assert meta.spec == ObservationSpec.for_robot(seed_scenario, 0)
    assert meta.action_high == (1.0, 2.84) and meta.scenario == seed_scenario.name
    assert meta.obs_normalization["folded"] is True
    assert "pe_sim.ego" in props[KEY_SPEC]
    assert not list(path.parent.glob("*.data"))  # one self-contained file
    # the hidden layers export as ONNX Tanh, not as the numpy call used in training
    assert [n.op_type for n in model.graph.node].count("Tanh") == 2


def test_single_and_batch_observations(exported, seed_scenario):
    _, _, path = exported
    policy = OnnxPolicy(path, seed_scenario, 0)
    obs = np.random.default_rng(2).normal(size=(5, policy.spec.dim)).astype(np.float32)
    batch = policy.predict(obs)
    assert policy.predict(obs[3]).shape == (2,)
    np.testing.assert_allclose(policy.predict(obs[3]), batch[3], atol=1e-6)
    cmd = policy.command(obs)
    assert cmd.shape == (5, 2)
    assert np.all(cmd[:, 0] >= 0.0) and np.all(cmd[:, 0] <= 1.0) and np.all(np.abs(cmd[:, 1]) <= 2.84)
    with pytest.raises(ValueError, match="shape"):
        policy.predict(np.zeros(policy.spec.dim + 1, dtype=np.float32))


def test_act_on_world_state_and_load_policy(exported, seed_scenario):
    model, env, path = exported
    venv = BatchVecEnv(seed_scenario, 3, role="pursuer", opponent="random", seed=5)
    venv.reset()
    policy = load_policy(str(path), seed_scenario, 0)
    assert isinstance(policy, OnnxPolicy) and isinstance(policy, Policy)
    view = WorldView.of(venv.sim)
    cmd = policy.act(view)
    expected = torch_deterministic_action(model.policy, env, venv.core.observe())
    np.testing.assert_allclose(cmd[:, 0], 0.5 * (expected[:, 0] + 1.0), atol=1e-5)
    np.testing.assert_allclose(cmd[:, 1], 2.84 * expected[:, 1], atol=1e-4)
    scripted = load_policy("scripted:pure_pursuit", seed_scenario, 0)
    assert isinstance(scripted, ScriptedPolicyAdapter) and scripted.act(view).shape == (3, 2)


def test_spec_mismatch_is_refused_listing_both(exported, seed_scenario):
    _, _, path = exported
    data = seed_scenario.to_dict()
    data["name"] = "bigger_arena"
    data["arena"] = {"width": 30.0, "height": 30.0}
    bigger = parse_scenario(data)
    with pytest.raises(ObservationSpecMismatch) as err:
        OnnxPolicy(path, bigger, 0)
    message = str(err.value)
    assert "policy expects" in message and "caller builds" in message
    assert "'length_scale': 10.0" in message and "'length_scale': 15.0" in message
    with pytest.raises(ObservationSpecMismatch, match="k_obstacles"):
        OnnxPolicy(path, seed_scenario, 0,
                   expected_spec=ObservationSpec.for_robot(seed_scenario, 0, k_obstacles=3))


def test_role_mismatch_is_refused(exported, seed_scenario):
    _, _, path = exported
    with pytest.raises(PolicyContractError, match="trained for a pursuer"):
        OnnxPolicy(path, seed_scenario, 1)  # robot 1 is the evader (same spec in 1v1)


def test_non_policy_onnx_is_refused(tmp_path, seed_scenario):
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros((37, 2), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "w"], ["action"])], "plain",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", 37])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", 2])], [weight])
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    with pytest.raises(PolicyContractError, match="not an exported pe policy"):
        OnnxPolicy(path, seed_scenario, 0)


def test_export_is_byte_identical_anywhere_and_free_of_paths(exported, tmp_path, monkeypatch):
    model, env, first = exported
    meta = read_metadata(first, str(first))
    (tmp_path / "elsewhere" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "elsewhere")
    second = export_onnx(model.policy, env, tmp_path / "elsewhere" / "deeper" / "again.onnx", meta)
    data = second.read_bytes()
    assert data == first.read_bytes()
    for marker in (b"site-packages", b".py\"", b".py:", str(Path(__file__).parents[1]).encode(),
                   str(tmp_path).encode(), b"stack_trace"):
        assert marker not in data, marker
    proto = onnx.load(str(second))
    assert all(len(node.metadata_props) == 0 and not node.doc_string for node in proto.graph.node)


def test_envelope_is_carried_and_checked(exported, seed_scenario, tmp_path):
    import dataclasses
    import warnings

    from pe_policy.contract import Envelope
    from pe_policy.evaluate import check_envelopes
    from pe_sim.cli import UserError

    model, env, _ = exported
    meta = dataclasses.replace(read_metadata(exported[2], "x"), envelope=Envelope.of(seed_scenario))
    path = export_onnx(model.policy, env, tmp_path / "enveloped.onnx", meta)
    policy = OnnxPolicy(path, seed_scenario, 0)
    assert policy.metadata.envelope == Envelope.of(seed_scenario)
    check_envelopes(seed_scenario, [policy], strict=True)  # inside: silent
    faster = dataclasses.replace(seed_scenario, robots=tuple(
        dataclasses.replace(r, v_max=2 * r.v_max) for r in seed_scenario.robots))
    crowded = dataclasses.replace(seed_scenario, obstacles=dataclasses.replace(
        seed_scenario.obstacles, count=(6, 8)))
    for outside, what in ((faster, "v_max"), (crowded, "obstacle_count")):
        with pytest.raises(UserError, match=what):
            check_envelopes(outside, [policy], strict=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_envelopes(outside, [policy], strict=False)
        assert any(what in str(w.message) for w in caught)
    shipped = OnnxPolicy(exported[2], seed_scenario, 0)  # no envelope: only its obstacle slots
    check_envelopes(faster, [shipped], strict=True)
    with pytest.raises(UserError, match="observation holds the nearest 4"):
        check_envelopes(crowded, [shipped], strict=True)
