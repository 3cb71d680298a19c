"""pe-train: config loading and overrides, and a smoke run end to end
(train -> checkpoints -> export -> model card -> load -> act -> resume)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import pytest

from pe_policy.onnx_policy import OnnxPolicy
from pe_policy.policy import load_policy
from pe_sim.config_reader import ConfigError
from pe_sim.envs.vec_env import BatchVecEnv
from pe_sim.scripted import WorldView
from pe_training import train as train_mod
from pe_training.config import load_train_config
from pe_training.envs import make_vec_env, training_scenario


def test_config_defaults_file_and_overrides():
    cfg = load_train_config("pursuer_seed_random", ["ppo.learning_rate=1e-4", "filter.in_loop=true",
                                                    "reward.contact=2.5", "seed=3"])
    assert cfg.name == "pursuer_seed_random" and cfg.scenario == "seed_1v1_2obs"
    assert cfg.ppo.learning_rate == 1e-4 and cfg.filter.in_loop and cfg.seed == 3
    assert training_scenario(cfg).reward.contact == 2.5
    base = load_train_config("pursuer_seed_random")
    assert base.config_hash() != cfg.config_hash()
    elsewhere = load_train_config("pursuer_seed_random", ["output_dir=/elsewhere"])
    assert base.config_hash() == elsewhere.config_hash()


@pytest.mark.parametrize("override, key", [
    ("ppo.learnin_rate=1", "ppo.learnin_rate"),      # typo: unknown key
    ("total_steps=many", "total_steps"),             # wrong type
    ("role=referee", "role"),
    ("ppo.batch_size=1000", "ppo.batch_size"),       # does not divide the rollout
])
def test_config_errors_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_train_config("pursuer_seed_random", [override])


def test_training_env_is_the_batch_vec_env_with_truncation_infos():
    cfg = load_train_config("pursuer_seed_random",
                            ["num_envs=4", "ppo.n_steps=256", "ppo.batch_size=512", "opponent=scripted:flee"])
    env = make_vec_env(cfg, training_scenario(cfg))
    assert isinstance(env, BatchVecEnv) and env.num_envs == 4
    env.reset()
    assert env.sim.episode_seed.tolist() == [10_000_000 + i for i in range(4)]  # seed 1 * 1e7 + k
    for _ in range(env.scenario.max_steps):  # standing still vs flee: no capture, time limit
        _, _, dones, infos = env.step(np.tile([-1.0, 0.0], (4, 1)).astype(np.float32))
    assert dones.all()
    assert all(info["TimeLimit.truncated"] and "terminal_observation" in info for info in infos)


def test_smoke_training_end_to_end(tmp_path, seed_scenario, capsys):
    out = tmp_path / "runs"
    argv = ["pursuer_seed_random", "--smoke", "--output-dir", str(out), "--no-progress",
            "--ship", str(tmp_path / "models")]
    assert train_mod.main(argv) == 0
    run = out / "pursuer_seed_random-smoke"
    onnx_path = run / "pursuer_seed_random-smoke.onnx"
    onnx.checker.check_model(onnx.load(str(onnx_path)))
    card = json.loads((tmp_path / "models" / "pursuer_seed_random-smoke.model_card.json").read_text())
    assert card["steps"] == 4096 and card["seed"] == 1 and card["command"].startswith("pe-train ")
    assert len(card["config_hash"]) == 16 and card["git_revision"]
    assert card["final_eval"]["results"][0]["command"].startswith("pe-eval --scenario seed_1v1_2obs")
    assert card["final_eval"]["results"][0]["summary"]["episodes"] == 16
    md = (tmp_path / "models" / "pursuer_seed_random-smoke.model_card.md").read_text()
    assert md.startswith("# Model card")
    assert list((run / "tb").rglob("events.out.tfevents*"))
    rows = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]
    assert rows and all(r["steps_per_s"] > 0 for r in rows)
    # load -> act through the common interface
    policy = load_policy(str(tmp_path / "models" / "pursuer_seed_random-smoke.onnx"), seed_scenario, 0)
    assert isinstance(policy, OnnxPolicy) and policy.metadata.config_hash == card["config_hash"]
    env = BatchVecEnv(seed_scenario, 2, role="pursuer", opponent="random", seed=7)
    env.reset()
    cmd = policy.act(WorldView.of(env.sim))
    assert cmd.shape == (2, 2) and np.all(np.isfinite(cmd))
    # resume from the latest checkpoint for 2048 more steps
    assert train_mod.main([*argv[:-2], "--resume", "--set", "total_steps=6144", "--no-final-eval"]) == 0
    state = json.loads((run / "checkpoints" / "final.json").read_text())
    assert state["num_timesteps"] == 6144
    assert state["next_seed"] > 10_000_000
    # an existing run is not silently overwritten
    capsys.readouterr()
    assert train_mod.main(argv) == 2
    assert "--resume" in capsys.readouterr().err


def test_clearance_penalty_shaping(seed_scenario):
    from pe_training.shaping import ClearancePenalty

    raw = BatchVecEnv(seed_scenario, 8, role="pursuer", opponent="flee", seed=3)
    shaped = ClearancePenalty(BatchVecEnv(seed_scenario, 8, role="pursuer", opponent="flee", seed=3),
                              margin=5.0, weight=0.5)
    raw.reset()
    shaped.reset()
    action = np.tile([1.0, 0.3], (8, 1)).astype(np.float32)
    for _ in range(5):
        _, r_raw, _, _ = raw.step(action)
        _, r_shaped, _, _ = shaped.step(action)
    clearance = raw.last_step.result.clearance[:, 0]
    expected = r_raw - 0.5 * np.clip(1.0 - clearance / 5.0, 0.0, 1.0)
    np.testing.assert_allclose(r_shaped, expected, atol=1e-6)
    assert np.any(clearance < 5.0)


def test_command_rate_penalty_shaping(seed_scenario):
    """The penalty is weight * |du / u_max|^2 of the applied command (u_max = (1 m/s,
    omega_max)); every episode starts from rest, also after an auto-reset, with envs
    finishing on different steps."""
    from pe_sim.envs.actions import CommandBounds, to_command
    from pe_training.envs import apply_shaping
    from pe_training.shaping import ClearancePenalty, CommandRatePenalty

    scenario = dataclasses.replace(seed_scenario, max_steps=3)
    raw = BatchVecEnv(scenario, 4, role="pursuer", opponent="flee", seed=3)
    shaped = CommandRatePenalty(BatchVecEnv(scenario, 4, role="pursuer", opponent="flee", seed=3), weight=0.5)
    raw.reset()
    shaped.reset()
    for env in (raw, shaped.batch):
        env.sim.step_count[[0, 2]] = 1  # envs 0 and 2 end after 2 steps, 1 and 3 after 3
    bounds = CommandBounds.of(scenario.robots[0])
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, (5, 4, 2)).astype(np.float32)
    previous = np.zeros((4, 2))
    for step, a in enumerate(actions):
        _, r_raw, _, _ = raw.step(a)
        _, r_shaped, dones, _ = shaped.step(a)
        applied = to_command(a[:, None, :], bounds)[:, 0]
        expected = 0.5 * np.sum(((applied - previous) / bounds.scale) ** 2, axis=1)
        np.testing.assert_allclose(r_raw - r_shaped, expected, rtol=1e-5, atol=1e-6)
        assert dones.tolist() == [[False] * 4, [True, False, True, False], [False, True, False, True],
                                  [False] * 4, [True, False, True, False]][step]
        previous = np.where(dones[:, None], 0.0, applied)
    cfg = load_train_config("pursuer_seed_random", ["shaping.command_rate_weight=0.1",
                                                    "shaping.clearance_margin=0.5",
                                                    "shaping.clearance_weight=0.1"])
    stacked = apply_shaping(cfg, make_vec_env(cfg, training_scenario(cfg)))
    assert isinstance(stacked, CommandRatePenalty) and isinstance(stacked.venv, ClearancePenalty)
    for bad in ("-1", ".nan", ".inf"):
        with pytest.raises(ConfigError, match=r"shaping\.command_rate_weight"):
            load_train_config("pursuer_seed_random", [f"shaping.command_rate_weight={bad}"])


def test_opponent_behind_the_filter(seed_scenario):
    from pe_safety_filter.config import load_filter_config
    from pe_safety_filter.filter import BatchSafetyFilter
    from pe_sim.scripted import make_scripted
    from pe_training.envs import FilteredController

    cfg = load_train_config("pursuer_seed_random",
                            ["num_envs=4", "ppo.n_steps=256", "ppo.batch_size=512", "filter.opponents=true"])
    env = make_vec_env(cfg, training_scenario(cfg))
    assert isinstance(env.core.controllers[1], FilteredController)
    env.reset()
    for _ in range(20):
        env.step(np.zeros((4, 2), dtype=np.float32))
    view = WorldView.of(env.sim)
    u = np.zeros((4, 2, 2))
    u[:, 1] = make_scripted("random", seed_scenario, 1)(view)
    u_safe, _ = BatchSafetyFilter(load_filter_config("vcp_cbf"), seed_scenario).filter(
        view.pose, u, view.obstacles, view.n_obstacles, robots=[1])
    np.testing.assert_allclose(env.core.controllers[1](view), u_safe[:, 1])


def test_train_bench_runs_both_sides_of_the_same_config(tmp_path):
    """pe-train-bench on a tiny config: both the batch env and plain SB3 DummyVecEnv
    train, with the config's shaping on the batch side, and the ratio is reported."""
    from pe_training import bench

    argv = ["pursuer_seed_random", "--set", "num_envs=8", "--set", "ppo.n_steps=32",
            "--set", "ppo.batch_size=64", "--set", "ppo.n_epochs=1",
            "--set", "shaping.command_rate_weight=0.05",
            "--batch-steps", "768", "--dummy-steps", "768", "--out", str(tmp_path)]
    assert bench.main(argv) == 0
    res = json.loads((tmp_path / "bench.json").read_text())
    for side in ("batch_vec_env", "dummy_vec_env"):
        assert res[side]["steps"] == 768 and res[side]["iterations"] == 2  # first iteration skipped
        assert res[side]["steps_per_s_median"] > 0
    assert res["batch_side_shaping"]["command_rate_weight"] == 0.05
    assert res["ratio"] == pytest.approx(res["batch_vec_env"]["steps_per_s_median"]
                                         / res["dummy_vec_env"]["steps_per_s_median"])


def test_ctrl_c_saves_a_checkpoint_and_prints_the_resume_command(tmp_path, monkeypatch, capsys):
    """Ctrl-C during learning: a checkpoint at the steps reached, the command that continues
    the run, exit 130, no traceback; --resume then finds that checkpoint."""
    from stable_baselines3 import PPO

    real_learn = PPO.learn

    def learn_then_interrupt(self, total_timesteps, callback=None, **kwargs):
        real_learn(self, 1024, callback=callback, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(PPO, "learn", learn_then_interrupt)
    argv = ["pursuer_seed_random", "--smoke", "--output-dir", str(tmp_path / "runs"), "--no-progress",
            "--no-final-eval"]
    assert train_mod.main(argv) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"continue with: pe-train {' '.join(argv)} --resume" in err
    saved = list((tmp_path / "runs" / "pursuer_seed_random-smoke" / "checkpoints").glob("step_*.zip"))
    assert len(saved) == 1
    from pe_training.run import latest_checkpoint

    ckpt = latest_checkpoint(tmp_path / "runs" / "pursuer_seed_random-smoke")
    assert ckpt.state()["num_timesteps"] >= 1024


def test_training_over_scenario_variants_exports_one_policy_for_the_whole_envelope(tmp_path):
    """pe-train on a scenario with variants splits its envs over them (one batch each),
    writes the envelope they span into the policy, evaluates every variant, resumes without
    replaying an episode, and the policy loads where the base arena's spec holds."""
    from pe_policy.contract import Envelope
    from pe_policy.onnx_policy import read_metadata
    from pe_sim.envs.concat import ConcatVecEnv
    from pe_sim.scenario import load_scenario
    from pe_training.envs import make_training_env

    cfg = load_train_config("pursuer_envelope_flee_filter", train_mod.smoke_overrides())
    venv = make_training_env(cfg, training_scenario(cfg))
    assert isinstance(venv, ConcatVecEnv) and len(venv.parts) == 9 and venv.num_envs == cfg.num_envs
    assert {p.scenario.arena_width for p in (part.unwrapped for part in venv.parts)} == {16.0, 20.0, 24.0}
    out = tmp_path / "runs"
    argv = ["pursuer_envelope_flee_filter", "--smoke", "--output-dir", str(out), "--no-progress"]
    assert train_mod.main(argv) == 0
    run = out / "pursuer_envelope_flee_filter-smoke"
    path = run / "pursuer_envelope_flee_filter-smoke.onnx"
    meta = read_metadata(str(path))
    assert meta.envelope == Envelope(obstacle_count=(0, 4), obstacle_radius=(0.2, 1.2), v_max=(0.9, 1.0),
                                     omega_max=(2.84, 2.84), arena=(24.0, 24.0))
    assert meta.spec.length_scale == 10.0
    for name in ("bench_1v1_flee", "open_1v1"):  # same spec: loads, and both lie inside the envelope
        scenario = load_scenario(name)
        load_policy(str(path), scenario, 0)
        assert meta.envelope.departures(scenario) == []
    card = json.loads((run / "model_card.json").read_text())
    assert card["envelope"] == meta.envelope.to_dict()
    summary = card["final_eval"]["results"][0]["summary"]
    assert len(summary["variants"]) == 9 and summary["episodes"] == 9 * 16
    assert train_mod.main([*argv, "--resume", "--set", "total_steps=6144", "--no-final-eval"]) == 0
    state = json.loads((run / "checkpoints" / "final.json").read_text())
    assert state["num_timesteps"] == 6144 and state["next_seed"] > 10_000_000
