"""One side of a ``pe-selfplay`` run: its training config, its VecEnv whose opponents are
an :class:`~pe_training.pool.OpponentPool` per batch (one batch, or one per scenario
variant), its SB3 PPO model and how it exports a snapshot.

Two kinds of learner (``pursuer_learner`` / ``evader_learner`` of the self-play config):

* ``ppo``: a ``pe-train`` config, set up exactly as ``pe-train`` sets it up (MLP actor,
  VecNormalize, training-only shaping, the filter in the loop as the config says);
* ``barriernet``: a ``pe-barriernet-train`` config of method ``ppo``: the network's
  pre-QP action (u_ref, class-K gains) is sampled, the filter's QP runs with those gains in
  every env step, the warm start (an imitation run) is loaded and its critic warmed up in
  the first generation; every robot is behind the filter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from pe_policy.policy import SCRIPTED_PREFIX
from pe_sim.config_reader import ConfigError
from pe_sim.envs.concat import ConcatVecEnv
from pe_sim.envs.vec_env import BatchVecEnv
from pe_sim.scenario import Scenario, load_scenario
from pe_sim.scripted import DEFAULT_KIND, make_scripted
from pe_training.config import TrainConfig, load_train_config
from pe_training.envs import (
    TRAIN_SEED_STRIDE,
    group_controllers,
    learner_index,
    make_training_env,
    training_scenario,
)
from pe_training.export import export_onnx
from pe_training.opponents import other_role
from pe_training.pool import OpponentPool, PoolStats
from pe_training.run import Checkpoint
from pe_training.selfplay_config import SelfPlayConfig
from pe_training.train import make_model, policy_metadata, wrap_normalize

#: The evader learner's config seed is the run's seed + this.
EVADER_SEED_OFFSET = 50


@dataclass
class Learner:
    """One side of the self-play: its config, env, PPO model and opponent pools.

    ``venv`` is the env as the model sees it under its normalisation: one batch, or a
    :class:`~pe_sim.envs.concat.ConcatVecEnv` of one batch per scenario variant;
    ``batches`` are those batches and ``pools`` their opponent pools (same members, each
    driving its batch's opponents). ``export(path)`` writes the current deterministic
    policy as an ordinary pe policy file; ``opponent_filter`` is the filter config pool
    members run behind (None when the env already filters every robot);
    ``first_callbacks`` run in the first generation only."""

    role: str
    cfg: Any
    scenario: Scenario
    index: int
    model: PPO
    venv: VecEnv
    batches: list[BatchVecEnv]
    pools: list[OpponentPool]
    stats: PoolStats
    export: Callable[[Path], Path]
    opponent_filter: str | None = None
    teammates: list[int] = field(default_factory=list)
    first_callbacks: list[BaseCallback] = field(default_factory=list)


class BudgetSchedule:
    """The learning rate over a learner's whole self-play budget, linear to 0 or constant.

    SB3 calls the schedule with the progress remaining of the current ``learn`` call,
    1 - steps / ``call_total`` where ``call_total`` is that call's end (steps before it +
    its budget); :meth:`start_call` records it, so the rate follows the steps of the run."""

    def __init__(self, learning_rate: float, total_steps: int, linear: bool) -> None:
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.linear = linear
        self.call_total = total_steps

    def start_call(self, steps_before: int, call_steps: int) -> None:
        self.call_total = steps_before + call_steps

    def __call__(self, progress_remaining: float) -> float:
        if not self.linear:
            return self.learning_rate
        steps = (1.0 - progress_remaining) * self.call_total
        return self.learning_rate * max(0.0, 1.0 - steps / self.total_steps)


def learner_overrides(sp: SelfPlayConfig, role: str) -> tuple[str, list[str], str]:
    """(base config, overrides with the run's seed, name and folder, learner kind)."""
    base, sets, kind = ((sp.pursuer, sp.pursuer_set, sp.pursuer_learner) if role == "pursuer"
                        else (sp.evader, sp.evader_set, sp.evader_learner))
    seed = sp.seed if role == "pursuer" else sp.seed + EVADER_SEED_OFFSET
    return base, [*sets, f"name={sp.name}_{role}", f"seed={seed}", f"output_dir={sp.run_dir}",
                  "robot=null"], kind


def learner_config(sp: SelfPlayConfig, role: str) -> Any:
    """The learner's training config (a ``TrainConfig``, or a ``BarrierNetConfig`` for a
    ``barriernet`` learner) with the run's seed, name and output folder."""
    base, overrides, kind = learner_overrides(sp, role)
    expected = "a pe-barriernet-train config" if kind == "barriernet" else "a pe-train config"
    try:
        if kind == "barriernet":
            from pe_training.barriernet.config import load_barriernet_config

            cfg = load_barriernet_config(base, overrides)
        else:
            cfg = load_train_config(base, overrides)
    except ConfigError as e:
        raise ConfigError(f"{role}_learner: {kind}", role, f"needs {expected}; {e}") from e
    if kind == "barriernet" and cfg.method != "ppo":
        raise ConfigError(base, "method", f"a barriernet learner trains by ppo, this config by {cfg.method}")
    if cfg.role != role:
        raise ConfigError(base, "role", f"the {role} learner's config trains the {cfg.role}")
    return cfg


def batches_of(venv: VecEnv) -> list[BatchVecEnv]:
    """The batches under ``venv``: itself (unwrapped), or each part of a ConcatVecEnv."""
    parts = venv.unwrapped.parts if isinstance(venv.unwrapped, ConcatVecEnv) else [venv]
    return [part.unwrapped for part in parts]


def seat_pools(batches: list[BatchVecEnv], role: str, seed: int) -> list[OpponentPool]:
    """An empty opponent pool per batch, driving every robot of the other role there."""
    pools = []
    for k, batch in enumerate(batches):
        pool = OpponentPool(batch.num_envs, seed=seed + 1000 * k)  # its own draws per batch
        opponents = batch.scenario.indices(other_role(role))
        batch.set_opponent({batch.scenario.robots[i].name: pool.seat(i) for i in opponents})
        pools.append(pool)
    return pools


def restore(checkpoint: Checkpoint, env: Any, wrap: Callable[[Any], Any], tensorboard: str) -> PPO:
    """A checkpointed model on ``env`` with its VecNormalize statistics (or ``wrap(env)``
    when it has none), in training mode."""
    model, normalized = checkpoint.load(env)
    if normalized is None:
        normalized = wrap(env)
        model.set_env(normalized)
    if isinstance(normalized, VecNormalize):
        normalized.training = True
    model.tensorboard_log = tensorboard
    return model


def make_ppo_learner(cfg: TrainConfig, role: str, tensorboard: str, checkpoint: Checkpoint | None) -> Learner:
    scenario = training_scenario(cfg)
    index = learner_index(cfg, scenario)
    venv = make_training_env(cfg, scenario)
    batches = batches_of(venv)
    pools = seat_pools(batches, role, cfg.seed)
    if checkpoint is None:
        model = make_model(cfg, wrap_normalize(cfg, venv), tensorboard)
    else:
        model = restore(checkpoint, venv, lambda env: wrap_normalize(cfg, env), tensorboard)
    eval_scenario = load_scenario(cfg.scenario)

    def export(path: Path) -> Path:
        return export_onnx(model.policy, model.get_vec_normalize_env(), path,
                           policy_metadata(cfg, eval_scenario, index))

    opponent_filter = cfg.filter.config if cfg.filter.opponents and not cfg.filter.in_loop else None
    return Learner(role, cfg, scenario, index, model, venv, batches, pools, PoolStats(pools), export,
                   opponent_filter)


def make_barriernet_learner(cfg: Any, role: str, tensorboard: str, checkpoint: Checkpoint | None) -> Learner:
    from pe_training.barriernet.export import export_barriernet
    from pe_training.barriernet.ppo import CriticWarmup, make_env, wrap_reward_normalize
    from pe_training.barriernet.ppo import make_model as make_barriernet_model
    from pe_training.barriernet.rollout import Setup

    eval_scenario = load_scenario(cfg.scenario)
    index = learner_index(cfg, eval_scenario)
    setup = Setup(cfg, eval_scenario, index)
    venv = make_env(cfg, setup)
    pools = seat_pools([venv], role, cfg.seed)
    first: list[BaseCallback] = []
    if checkpoint is None:
        model = make_barriernet_model(cfg, setup, venv, tensorboard)
        if cfg.ppo.warm_start:
            first.append(CriticWarmup(cfg.ppo.critic_warmup_rollouts))
    else:
        model = restore(checkpoint, venv, lambda env: wrap_reward_normalize(cfg, env), tensorboard)
    extra = {"filter": setup.filter_config.to_dict(), "method": cfg.method, "config_hash": cfg.config_hash()}

    def export(path: Path) -> Path:
        return export_barriernet(model.policy, setup.layout, setup.lo, setup.hi, path,
                                 policy_metadata(cfg, eval_scenario, index), extra)

    return Learner(role, cfg, venv.scenario, index, model, venv, [venv], pools, PoolStats(pools), export,
                   first_callbacks=first)


def make_learner(sp: SelfPlayConfig, role: str, tensorboard: str, checkpoint: Checkpoint | None = None,
                 ) -> Learner:
    """A learner with a fresh PPO model, or the one of ``checkpoint`` (with its VecNormalize
    statistics and the next training episode seed)."""
    cfg = learner_config(sp, role)
    build = make_barriernet_learner if sp.learner_kind(role) == "barriernet" else make_ppo_learner
    learner = build(cfg, role, tensorboard, checkpoint)
    check_both_roles(learner.scenario)
    learner.teammates = [i for i in learner.scenario.indices(role) if i != learner.index]
    next_seed = cfg.seed * TRAIN_SEED_STRIDE if checkpoint is None else int(checkpoint.state()["next_seed"])
    learner.venv.seed(next_seed)
    budget = sp.generations * sp.steps_per_generation
    learner.model.lr_schedule = BudgetSchedule(cfg.ppo.learning_rate, budget, cfg.ppo.linear_lr)
    return learner


def check_both_roles(scenario: Scenario) -> None:
    counts = {role: len(scenario.indices(role)) for role in ("pursuer", "evader")}
    if any(n < 1 for n in counts.values()):
        raise ConfigError(scenario.name, "robots",
                          f"pe-selfplay needs a pursuer and an evader, the scenario has {counts}")


def member_controllers(learner: Learner, source: str, scenario: Scenario) -> dict[int, Any]:
    """One pool member as controllers of the learner's opponent robots in ``scenario`` (one
    of its batches' scenarios; behind the filter when the learner's env does not filter
    them, as pe-train does)."""
    opponents = list(scenario.indices(other_role(learner.role)))
    by_name = group_controllers(source, scenario, opponents, learner.opponent_filter) or {}
    out = {}
    for name, c in by_name.items():
        i = scenario.robot_index(name)
        if isinstance(c, str):  # a scripted kind
            c = make_scripted(c, scenario, i)
        out[i] = c
    return out


def teammate_source(learner: Learner, exports: list[str]) -> str:
    """Who drives the learner's teammates: its latest export, or before the first one the
    config's ``teammate`` (default: the role's scripted default)."""
    if exports:
        return exports[-1]
    return learner.cfg.teammate or SCRIPTED_PREFIX + DEFAULT_KIND[learner.role]


__all__ = ["EVADER_SEED_OFFSET", "BudgetSchedule", "Learner", "check_both_roles", "learner_config",
           "make_learner", "member_controllers", "teammate_source"]
