"""Training 2: PPO with the QP in the environment (SB3, fixing the prototype's bugs).

How each fix is realised (see docs/barriernet.md):

* **noise on the pre-QP action, fixed std**: the policy's action is the unit vector
  ``a = (a_u, a_g)`` *before* the QP; SB3 samples ``a ~ N(tanh-mean(obs), sigma)``
  with ``sigma = ppo.fixed_std`` per component (v, omega, gains; ``log_std`` has
  ``requires_grad=False``).
* **log-prob of the stored pre-QP action**: the rollout buffer stores the sampled
  ``a`` (what SB3 stores for any VecEnv); the QP runs inside
  :class:`BarrierNetVecEnv`'s step, so ``evaluate_actions`` computes the log-prob of
  exactly that stored pre-QP ``a`` under the current policy -- the post-QP command
  never enters the likelihood.
* **gains are part of the sampled action**: ``a_g`` (one gain per barrier) is sampled
  and scored with ``a_u``, so the policy gradient trains the gains.
* **QP applied in the rollout, batched**: :class:`BarrierNetVecEnv` maps ``a`` to
  (u_ref, gains) and calls :class:`~pe_safety_filter.filter.BatchSafetyFilter` once
  per step for all environments -- the deployed filter (QP + exact next-step check).
* **penalty on the QP's correction**: the learner's reward loses
  ``ppo.correction_penalty * |(u_safe - u_ref) / bound|`` per step (the
  ``correction_penalty`` of :class:`~pe_sim.envs.core.LearnerBatch`).
* **optional warm start**: ``ppo.warm_start`` loads an imitation run's network (same
  module), then ``ppo.critic_warmup_rollouts`` rollouts train the critic only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecNormalize

from pe_policy.barriernet_policy import GainLayout, filter_gains, nearest_order
from pe_safety_filter.filter import BatchSafetyFilter
from pe_sim.cli import UserError
from pe_sim.envs.vec_env import BatchVecEnv
from pe_sim.evaluation import EVAL_SEED_BASE
from pe_sim.scenario import Scenario
from pe_training.activations import ACTIVATIONS
from pe_training.barriernet.config import BarrierNetConfig
from pe_training.barriernet.network import BarrierNetActorCritic, policy_net_arch
from pe_training.barriernet.rollout import Setup, collect, evaluate, observation_stats
from pe_training.callbacks import CheckpointEvery, ProgressCallback, ValidationCallback
from pe_training.envs import (
    TRAIN_SEED_STRIDE,
    default_gains,
    group_controllers,
    put_robot_gains,
    training_scenario,
)
from pe_training.run import CHECKPOINT_DIR, Checkpoint

POLICY_FILE = "policy.pt"


class BarrierNetVecEnv(BatchVecEnv):
    """:class:`BatchVecEnv` whose action is BarrierNet's pre-QP unit action
    ``(a_u (2), a_g (G))`` in [-1, 1]; each step maps it to u_ref and the learner's gains
    and runs the filter (every robot; the others with the default gains) in the loop.
    The learner's reward loses ``correction_penalty`` x its scaled correction."""

    def __init__(
        self,
        scenario: Scenario,
        num_envs: int,
        *,
        robot: str,
        filter_config,
        layout: GainLayout,
        opponent: Any = None,
        teammate: Any = None,
        seed: int | None = None,
        k_obstacles: int = 4,
        correction_penalty: float = 0.0,
    ) -> None:
        self.batch_filter = BatchSafetyFilter(filter_config, scenario)
        self.layout = layout
        super().__init__(scenario, num_envs, robot=robot, opponent=opponent, teammate=teammate, seed=seed,
                         k_obstacles=k_obstacles, action_filter=self._filter, filter_robots="all",
                         correction_penalty=correction_penalty)
        self.action_space = spaces.Box(-1.0, 1.0, (2 + layout.size,), np.float32)
        self._defaults = default_gains(self.batch_filter, num_envs, self.sim.obstacles.shape[1])
        self._gains = self._defaults.copy()
        self._default_obstacle_gain = filter_config.gain_obstacle
        self.last_gains: np.ndarray | None = None

    def _filter(self, pose, u_nom, obstacles, n_obstacles, robot_gains=None):
        if robot_gains:  # opponents or teammates that choose their own gains
            put_robot_gains(self._gains, robot_gains, self._defaults)
        return self.batch_filter.filter(pose, u_nom, obstacles, n_obstacles, gains=self._gains)

    def step_async(self, actions: np.ndarray) -> None:
        a = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, 2 + self.layout.size)
        a = np.clip(a, -1.0, 1.0)
        self._actions[:, 0, :] = a[:, :2]
        slot = self.layout.gains_from_unit(a[:, 2:])
        sim, li = self.sim, self.learner_index
        order = nearest_order(sim.pose, sim.obstacles, sim.n_obstacles, li, self.robot.radius,
                              self.layout.k_obstacles)
        g = filter_gains(slot, order, sim.obstacles.shape[1], self._default_obstacle_gain)
        self._gains[:, li, :g.shape[1]] = g
        self.last_gains = slot


class CriticWarmup(BaseCallback):
    """Freeze the actor (MLP + head) for the first ``rollouts`` PPO updates."""

    def __init__(self, rollouts: int) -> None:
        super().__init__()
        self.rollouts = rollouts
        self.count = 0

    def _set(self, trainable: bool) -> None:
        for p in self.model.policy.actor_parameters():
            p.requires_grad_(trainable)

    def _on_training_start(self) -> None:
        if self.rollouts > 0:
            self._set(False)

    def _on_rollout_end(self) -> None:
        self.count += 1
        if self.count == self.rollouts + 1:
            self._set(True)

    def _on_step(self) -> bool:
        return True


class ValidateAtStart(BaseCallback):
    """Run a :class:`ValidationCallback` once before the first rollout."""

    def __init__(self, validation: ValidationCallback) -> None:
        super().__init__()
        self.validation = validation

    def _on_training_start(self) -> None:
        self.validation.run()

    def _on_step(self) -> bool:
        return True


def load_warm_start(source: str | Path) -> dict[str, Any]:
    """An imitation run's saved network (``<run>/policy.pt`` or the file itself)."""
    path = Path(source)
    if path.is_dir():
        path = path / POLICY_FILE
    if not path.is_file():
        raise UserError(f"ppo.warm_start: no {path}; train the imitation run first "
                        "(pe-barriernet-train barriernet_imitation_bench) or start from scratch "
                        "with --set ppo.warm_start=null")
    return torch.load(path, map_location="cpu", weights_only=False)


def make_env(cfg: BarrierNetConfig, setup: Setup) -> BarrierNetVecEnv:
    scenario = training_scenario(cfg)
    index = setup.index
    role = scenario.robots[index].role
    opponents = [i for i, r in enumerate(scenario.robots) if r.role != role]
    teammates = [i for i, r in enumerate(scenario.robots) if r.role == role and i != index]
    return BarrierNetVecEnv(
        scenario, cfg.ppo.num_envs, robot=scenario.robots[index].name, filter_config=setup.filter_config,
        layout=setup.layout, opponent=group_controllers(cfg.opponent, scenario, opponents),
        teammate=group_controllers(cfg.teammate, scenario, teammates), seed=cfg.seed * TRAIN_SEED_STRIDE,
        k_obstacles=cfg.k_obstacles, correction_penalty=cfg.ppo.correction_penalty)


def warm_start_of(cfg: BarrierNetConfig) -> dict[str, Any] | None:
    """The imitation network ``ppo.warm_start`` names, checked against the config, or None."""
    p = cfg.ppo
    if not p.warm_start:
        return None
    warm = load_warm_start(p.warm_start)
    if list(warm["net_arch"]) != list(cfg.net_arch) or warm["activation"] != cfg.activation:
        raise UserError(f"warm start {p.warm_start}: network {warm['net_arch']} {warm['activation']} "
                        f"!= config {cfg.net_arch} {cfg.activation}")
    return warm


def wrap_reward_normalize(cfg: BarrierNetConfig, venv: Any) -> Any:
    """``venv`` with SB3's reward normalisation when the config asks for it (observations
    are normalised inside the policy)."""
    p = cfg.ppo
    return VecNormalize(venv, training=True, norm_obs=False, norm_reward=True,
                        gamma=p.gamma) if p.normalize_reward else venv


def make_model(cfg: BarrierNetConfig, setup: Setup, venv: BarrierNetVecEnv, tensorboard: str) -> PPO:
    """The SB3 PPO model on ``venv`` (reward-normalised as the config says), with the warm
    start's network loaded, or observation statistics from expert episodes without one."""
    p = cfg.ppo
    warm = warm_start_of(cfg)
    if warm is not None:
        if GainLayout.from_dict(warm["layout"]) != setup.layout:
            raise UserError(f"warm start {p.warm_start}: gain layout {warm['layout']} != {setup.layout}")
        mean, std = np.asarray(warm["obs_mean"]), np.asarray(warm["obs_std"])
    else:
        data, _ = collect(setup, cfg.imitation.expert, cfg.seed * TRAIN_SEED_STRIDE + 9_000_000,
                          p.stats_episodes, min(p.stats_episodes, 200))
        mean, std = observation_stats(data)
    env = wrap_reward_normalize(cfg, venv)
    lr: Any = LinearSchedule(p.learning_rate, 0.0, 1.0) if p.linear_lr else p.learning_rate
    model = PPO(
        BarrierNetActorCritic, env, learning_rate=lr, n_steps=p.n_steps, batch_size=p.batch_size,
        n_epochs=p.n_epochs, gamma=p.gamma, gae_lambda=p.gae_lambda, clip_range=p.clip_range,
        ent_coef=p.ent_coef, vf_coef=p.vf_coef, max_grad_norm=p.max_grad_norm, target_kl=p.target_kl,
        policy_kwargs={"net_arch": policy_net_arch(cfg.net_arch),
                       "activation_fn": ACTIVATIONS[cfg.activation], "obs_mean": mean.tolist(),
                       "obs_std": std.tolist(), "fixed_std": list(p.fixed_std)},
        tensorboard_log=tensorboard, seed=cfg.seed, device="cpu", verbose=0)
    if warm is not None:
        model.policy.load_state_dict(warm["state_dict"])
        model.policy.set_fixed_std(list(p.fixed_std))
    return model


def train_ppo(cfg: BarrierNetConfig, setup: Setup, run_dir: Path, progress: bool = True) -> dict[str, Any]:
    """The PPO run; returns what the model card needs."""
    p = cfg.ppo
    t0 = time.perf_counter()
    venv = make_env(cfg, setup)
    model = make_model(cfg, setup, venv, str(run_dir / "tb"))
    venv.seed(cfg.seed * TRAIN_SEED_STRIDE)

    sc = setup.scenario
    max_duration = sc.max_steps * sc.dt
    ckpt_dir = run_dir / CHECKPOINT_DIR

    def state() -> dict[str, Any]:
        return {"num_timesteps": model.num_timesteps, "next_seed": int(venv.sim.next_seed),
                "wall_s": time.perf_counter() - t0, "config_hash": cfg.config_hash()}

    def validate() -> dict[str, Any]:
        return evaluate(setup, setup.learner_policy(model.policy), cfg.eval.episodes,
                        EVAL_SEED_BASE + cfg.eval.seed_offset, cfg.eval.num_envs)

    from pe_training.barriernet.imitation import score

    best = Checkpoint(ckpt_dir / "best.zip")
    validation = ValidationCallback(cfg.eval.every_steps, validate, lambda s: score(s, setup.robot.role,
                                                                                    max_duration),
                                    best, run_dir / "eval.jsonl", state, setup.robot.role)
    progress_cb = ProgressCallback(p.total_steps, run_dir / "progress.jsonl", show_bar=progress)
    callbacks = [progress_cb, validation, CheckpointEvery(cfg.checkpoint_every_steps, ckpt_dir, state),
                 CriticWarmup(p.critic_warmup_rollouts)]
    if p.warm_start:
        callbacks.append(ValidateAtStart(validation))  # the warm start itself is a candidate
    t_train = time.perf_counter()
    model.learn(total_timesteps=p.total_steps, callback=callbacks, tb_log_name="ppo", progress_bar=False)
    train_time = time.perf_counter() - t_train
    if not validation.history or validation.history[-1]["num_timesteps"] != model.num_timesteps:
        validation.run()
    final = Checkpoint(ckpt_dir / "final.zip")
    final.save(model, model.get_vec_normalize_env(), state())
    chosen = best if cfg.export == "best" and best.model.exists() else final
    chosen_model, _ = chosen.load()
    rows = progress_cb.recent()
    return {"policy": chosen_model.policy, "validation": validation.history,
            "chosen": f"{chosen.model.name} at {int(chosen.state().get('num_timesteps', -1)):,} steps "
                      f"(export rule: {cfg.export})",
            "steps": int(model.num_timesteps), "train_time_s": train_time,
            "recent_rollout": rows}


__all__ = ["POLICY_FILE", "BarrierNetVecEnv", "CriticWarmup", "ValidateAtStart", "load_warm_start",
           "make_env", "make_model", "train_ppo", "warm_start_of", "wrap_reward_normalize"]
