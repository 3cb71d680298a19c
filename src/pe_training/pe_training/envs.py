"""The training environment of a config: scenario (with reward overrides), opponents,
the batch VecEnv and the optional safety filter in the loop."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from pe_policy.policy import SCRIPTED_PREFIX, load_policy
from pe_sim.config_reader import ConfigError
from pe_sim.envs.concat import ConcatVecEnv
from pe_sim.envs.core import resolve_learner
from pe_sim.envs.vec_env import BatchVecEnv
from pe_sim.scenario import Scenario, load_scenario
from pe_sim.scripted import KINDS, make_scripted
from pe_training.config import TrainConfig
from pe_training.shaping import ClearancePenalty, CommandRatePenalty

#: Training episode seeds of config seed s are s * TRAIN_SEED_STRIDE + k (all below EVAL_SEED_BASE).
TRAIN_SEED_STRIDE = 10_000_000


def training_scenario(cfg: TrainConfig) -> Scenario:
    """The config's scenario with its ``reward`` overrides applied (the file is not changed)."""
    scenario = load_scenario(cfg.scenario)
    if cfg.reward:
        scenario = dataclasses.replace(scenario, reward=dataclasses.replace(scenario.reward, **cfg.reward))
    return scenario


def learner_index(cfg: TrainConfig, scenario: Scenario) -> int:
    return resolve_learner(scenario, cfg.role, cfg.robot)


def controller(source: str, scenario: Scenario, index: int) -> str | Callable[[Any], np.ndarray]:
    """A VecEnv controller from a policy source: a scripted kind stays a string (the env
    builds it), ``scripted:<kind>`` too, anything else goes through ``load_policy``."""
    kind = source[len(SCRIPTED_PREFIX):] if source.startswith(SCRIPTED_PREFIX) else source
    if kind in KINDS:
        return kind
    policy = load_policy(source, scenario, index)
    # A policy choosing its own filter gains (BarrierNet) stays whole: the env's filter asks it.
    return policy if callable(getattr(policy, "gains", None)) else policy.act


class FilteredController:
    """A controller whose commands go through the safety filter (for its own robot only),
    e.g. the scripted opponent as ``pe-eval --filter all`` deploys it."""

    def __init__(self, inner: Callable[[Any], np.ndarray], index: int, action_filter: Callable) -> None:
        self.inner = inner
        self.index = index
        self.action_filter = action_filter
        self._u: np.ndarray | None = None

    def __call__(self, view: Any) -> np.ndarray:
        command = self.inner(view)
        if self._u is None or self._u.shape[0] != view.pose.shape[0]:
            self._u = np.zeros((*view.pose.shape[:2], 2))
        self._u[:] = 0.0
        self._u[:, self.index] = command
        gains = getattr(self.inner, "gains", None)
        extra = {"robot_gains": {self.index: gains(view)}} if callable(gains) else {}
        u_safe, _ = self.action_filter(view.pose, self._u, view.obstacles, view.n_obstacles, **extra)
        return np.asarray(u_safe)[:, self.index].copy()


def group_controllers(source: str | None, scenario: Scenario, indices: list[int],
                      filter_config: str | None = None) -> dict[str, Any] | None:
    """Controllers by robot name for ``indices`` from one source; behind the safety filter
    (each for its own robot) when ``filter_config`` is given."""
    if source is None:
        return None
    out: dict[str, Any] = {}
    for i in indices:
        c = controller(source, scenario, i)
        if filter_config is not None:
            inner = make_scripted(c, scenario, i) if isinstance(c, str) else c
            c = FilteredController(inner, i, make_action_filter(filter_config, scenario, [i]))
        out[scenario.robots[i].name] = c
    return out


def default_gains(batch_filter: Any, n_batch: int, max_obstacles: int) -> np.ndarray:
    """Gains (B, N, M + 4 + K) (1/s) for ``BatchSafetyFilter.filter``: the filter config's
    per-kind defaults (obstacles, walls, teammates) for every robot."""
    c = batch_filter.config
    row = np.concatenate([np.full(max_obstacles, c.gain_obstacle), np.full(4, c.gain_wall),
                          np.full(batch_filter.max_teammates, c.gain_teammate)])
    return np.broadcast_to(row, (n_batch, len(batch_filter.radius), row.size)).copy()


def put_robot_gains(gains: np.ndarray, robot_gains: dict[int, np.ndarray], defaults: np.ndarray) -> None:
    """Write each robot's own gains (B, G) into ``gains`` (B, N, >= G), the defaults where NaN."""
    for i, g in robot_gains.items():
        w = g.shape[1]
        gains[:, i, :w] = np.where(np.isnan(g), defaults[:, i, :w], g)


def make_action_filter(config_name: str, scenario: Scenario, robots: list[int] | None = None):
    """``BatchSafetyFilter.filter`` bound to its config, as the envs' ``action_filter``;
    robots whose controllers choose their own gains (``robot_gains``) get them."""
    from pe_safety_filter.config import load_filter_config
    from pe_safety_filter.filter import BatchSafetyFilter

    batch_filter = BatchSafetyFilter(load_filter_config(config_name), scenario)
    defaults: dict[tuple[int, int], np.ndarray] = {}  # by (batch size, obstacle slots)

    def action_filter(pose, u_nom, obstacles, n_obstacles, robot_gains=None):
        gains = None
        if robot_gains:
            shape = (pose.shape[0], obstacles.shape[1])
            if shape not in defaults:
                defaults[shape] = default_gains(batch_filter, *shape)
            gains = defaults[shape].copy()
            put_robot_gains(gains, robot_gains, defaults[shape])
        return batch_filter.filter(pose, u_nom, obstacles, n_obstacles, gains=gains, robots=robots)

    return action_filter


def apply_shaping(cfg: TrainConfig, venv: BatchVecEnv) -> VecEnv:
    """``venv`` with the config's training-only reward shaping wrappers (if any)."""
    s = cfg.shaping
    shaped: VecEnv = venv
    if s.clearance_margin > 0.0 and s.clearance_weight > 0.0:
        shaped = ClearancePenalty(shaped, s.clearance_margin, s.clearance_weight)
    if s.command_rate_weight > 0.0:
        shaped = CommandRatePenalty(shaped, s.command_rate_weight)
    return shaped


def make_training_env(cfg: TrainConfig, scenario: Scenario) -> VecEnv:
    """The training VecEnv with the config's shaping (no normalisation wrapper), seeded with
    the config's training seeds: ``num_envs`` episodes in one batch, or, for a scenario
    with variants, split evenly over one batch per variant (:class:`ConcatVecEnv`)."""
    variants = scenario.variants_of()
    if len(variants) == 1:
        return apply_shaping(cfg, make_vec_env(cfg, scenario))
    if cfg.num_envs < len(variants):
        raise ConfigError(cfg.scenario, "variants", f"{len(variants)} variants need num_envs >= "
                                                    f"{len(variants)}, got {cfg.num_envs}")
    sizes = np.diff(np.linspace(0, cfg.num_envs, len(variants) + 1).round().astype(int))
    venv = ConcatVecEnv([apply_shaping(cfg, make_vec_env(cfg, v, num_envs=int(n)))
                         for v, n in zip(variants, sizes, strict=True)])
    venv.seed(cfg.seed * TRAIN_SEED_STRIDE)
    return venv


def make_vec_env(cfg: TrainConfig, scenario: Scenario, seed: int | None = None,
                 num_envs: int | None = None) -> BatchVecEnv:
    """A training batch of ``scenario`` (no shaping, no normalisation wrapper): ``num_envs``
    (default the config's) episodes in one batch."""
    index = learner_index(cfg, scenario)
    role = scenario.robots[index].role
    opponents = [i for i, r in enumerate(scenario.robots) if r.role != role]
    teammates = [i for i, r in enumerate(scenario.robots) if r.role == role and i != index]
    action_filter = make_action_filter(cfg.filter.config, scenario) if cfg.filter.in_loop else None
    # In the loop, the filter already covers every robot; otherwise optionally the opponents.
    opponent_filter = cfg.filter.config if cfg.filter.opponents and not cfg.filter.in_loop else None
    return BatchVecEnv(
        scenario, num_envs or cfg.num_envs, robot=scenario.robots[index].name,
        opponent=group_controllers(cfg.opponent, scenario, opponents, opponent_filter),
        teammate=group_controllers(cfg.teammate, scenario, teammates),
        seed=cfg.seed * TRAIN_SEED_STRIDE if seed is None else seed, k_obstacles=cfg.k_obstacles,
        action_filter=action_filter, filter_robots=cfg.filter.robots,
        correction_penalty=cfg.filter.correction_penalty)


__all__ = ["TRAIN_SEED_STRIDE", "apply_shaping", "controller", "default_gains", "learner_index",
           "make_action_filter", "make_training_env", "make_vec_env", "put_robot_gains", "training_scenario"]
