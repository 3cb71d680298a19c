"""Data from the batch simulation: expert demonstrations (and DAgger relabelling) for
imitation, observation statistics, and in-process evaluation of a BarrierNet network
behind the filter (exactly what ``pe-eval --filter all`` does, without the ONNX file).

Every robot is behind the safety filter, as in the evaluation (``--filter all``):
the other robots with the filter's default gains, the expert too (its *filtered*
command is the label), the BarrierNet learner with its own gains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pe_policy.barriernet_policy import BarrierNetPolicy, GainLayout, batch_filter_gains
from pe_policy.policy import load_policy
from pe_safety_filter.config import FilterConfig, load_filter_config
from pe_safety_filter.filter import TIER_QP, BatchSafetyFilter
from pe_sim.batch import BatchSim
from pe_sim.config_reader import ConfigError
from pe_sim.evaluation import run_episodes
from pe_sim.metrics import summarize
from pe_sim.observation import ObservationBuilder, ObservationSpec
from pe_sim.scenario import Scenario
from pe_sim.scripted import WorldView
from pe_training.barriernet.config import BarrierNetConfig
from pe_training.barriernet.constraints import ConstraintBuilder
from pe_training.barriernet.export import torch_outputs
from pe_training.barriernet.network import BarrierNetActorCritic
from pe_training.train import other_sources, source_of


@dataclass
class Samples:
    """Training samples: raw observations (N, dim) float32, QP rows at unit gain
    ``A`` (N, G, 2) and ``b1`` (N, G), and the label (N, 2): the expert's filtered
    command (v m/s, omega rad/s)."""

    obs: np.ndarray
    A: np.ndarray
    b1: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.obs)

    @classmethod
    def cat(cls, parts: list[Samples]) -> Samples:
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("obs", "A", "b1", "label")))


class Setup:
    """What training needs about the scenario, the learner and the filter."""

    def __init__(self, cfg: BarrierNetConfig, scenario: Scenario, index: int) -> None:
        if len(scenario.variants_of()) > 1:
            raise ConfigError(cfg.scenario, "variants", "BarrierNet training runs one scenario; train "
                              "over variants (evader speeds, arena sizes) with pe-train")
        self.cfg = cfg
        self.scenario = scenario
        self.index = index
        self.robot = scenario.robots[index]
        self.filter_config: FilterConfig = load_filter_config(cfg.filter_config)
        self.spec = ObservationSpec.for_robot(scenario, index, cfg.k_obstacles)
        self.layout = GainLayout(cfg.k_obstacles, self.spec.n_teammates, cfg.gains.min, cfg.gains.max)
        self.builder = ObservationBuilder(scenario, index, cfg.k_obstacles)
        self.rows = ConstraintBuilder(self.filter_config, scenario, index, self.layout)
        self.batch_filter = BatchSafetyFilter(self.filter_config, scenario)
        self.lo = np.array([self.robot.v_min, -self.robot.omega_max])
        self.hi = np.array([self.robot.v_max, self.robot.omega_max])
        self.scale = np.maximum(np.abs(self.lo), np.abs(self.hi))
        fc = self.filter_config
        self.default_gains = (fc.gain_obstacle, fc.gain_wall, fc.gain_teammate)
        self.others = {i: load_policy(src, scenario, i)
                       for i, src in other_sources(cfg, scenario, index).items()}

    def learner_policy(self, policy: BarrierNetActorCritic, name: str = "barriernet") -> BarrierNetPolicy:
        """The torch network as a deployable :class:`BarrierNetPolicy` (same code path as
        the ONNX file, without onnxruntime)."""

        def network(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return torch_outputs(policy, self.layout, self.lo, self.hi, obs)

        return BarrierNetPolicy(network, self.scenario, self.index, self.spec, self.layout, name=name,
                                default_obstacle_gain=self.filter_config.gain_obstacle)

    def filter_with(self, view: WorldView, commands: np.ndarray,
                    learner: BarrierNetPolicy | None = None) -> tuple[np.ndarray, Any]:
        """Every robot's command through the filter (the learner with its gains)."""
        gains = None
        if learner is not None:
            gains = batch_filter_gains(view, {self.index: learner}, self.scenario.num_robots,
                                       self.batch_filter.max_teammates, self.default_gains)
        return self.batch_filter.filter(view.pose, commands, view.obstacles, view.n_obstacles, gains=gains)


def collect(
    setup: Setup,
    expert_source: str,
    first_seed: int,
    episodes: int,
    num_envs: int,
    learner: BarrierNetPolicy | None = None,
    beta: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[Samples, dict[str, float]]:
    """Play episodes ``first_seed .. first_seed + episodes - 1`` and record, at every step
    of those episodes, the learner's observation, QP rows and the expert's filtered command.

    Without ``learner`` the expert (behind the filter) drives; with one (DAgger) the
    learner drives behind the filter with its gains, except on a fraction ``beta`` of
    steps where the expert's filtered command is executed. Steps where the expert's
    filter did not return its first QP's solution (tightened or backup) are not
    recorded (the QP layer does not model them). Returns the samples and rollout stats
    (capture rate of the recorded episodes, fraction of dropped steps)."""
    sc = setup.scenario
    rng = rng or np.random.default_rng(first_seed)
    expert = load_policy(source_of(expert_source), sc, setup.index)
    num_envs = max(1, min(num_envs, episodes))
    sim = BatchSim(sc, num_envs, seed=first_seed)
    view = WorldView.of(sim)
    end = first_seed + episodes
    parts: list[Samples] = []
    finished: dict[int, bool] = {}
    dropped = kept = 0
    commands = np.zeros((num_envs, sc.num_robots, 2))
    while len(finished) < episodes:
        active = sim.episode_seed < end
        for i, p in setup.others.items():
            commands[:, i] = p.act(view)
        commands[:, setup.index] = expert.act(view)
        safe, stats = setup.filter_with(view, commands)
        label = safe[:, setup.index].copy()
        good = active & (stats.tier[:, setup.index] <= TIER_QP)
        dropped += int((active & ~good).sum())
        kept += int(good.sum())
        if good.any():
            obs = setup.builder.build(view.pose, view.velocity, view.obstacles, view.n_obstacles)
            A, b1, _ = setup.rows.rows(view.pose, view.obstacles, view.n_obstacles)
            parts.append(Samples(obs[good].copy(), A[good], b1[good], label[good]))
        executed = safe
        if learner is not None:
            mine = commands.copy()
            mine[:, setup.index] = learner.act(view)
            executed, _ = setup.filter_with(view, mine, learner)
            if beta > 0.0:
                use_expert = rng.random(num_envs) < beta
                executed[use_expert, setup.index] = label[use_expert]
        result = sim.step(executed)
        for seed, captured in zip(result.final_seed.tolist(), result.terminated[result.done].tolist(),
                                  strict=True):
            if first_seed <= seed < end:
                finished[seed] = bool(captured)
    samples = Samples.cat(parts)
    return samples, {"episodes": float(episodes), "samples": float(len(samples)),
                     "capture_rate": float(np.mean(list(finished.values()))),
                     "dropped_fraction": dropped / max(dropped + kept, 1)}


def evaluate(setup: Setup, policy: BarrierNetPolicy, episodes: int, seed: int,
             num_envs: int) -> dict[str, Any]:
    """Metrics summary of ``policy`` in the learner's seat, every robot behind the filter
    (the learner's QP with its gains), on episodes ``seed ..``."""
    sc = setup.scenario
    actors = [policy.act if i == setup.index else setup.others[i].act for i in range(sc.num_robots)]
    bf = setup.batch_filter

    def action_filter(pose, u_nom, obstacles, n_obstacles, gains=None):
        return bf.filter(pose, u_nom, obstacles, n_obstacles, gains=gains)

    def gains_of(view: WorldView) -> np.ndarray:
        return batch_filter_gains(view, {setup.index: policy}, sc.num_robots, bf.max_teammates,
                                  setup.default_gains)

    records = run_episodes(sc, actors, episodes, seed=seed, num_envs=num_envs, action_filter=action_filter,
                           filtered_robots=list(range(sc.num_robots)), filter_gains=gains_of)
    return summarize(records)


def observation_stats(samples: Samples) -> tuple[np.ndarray, np.ndarray]:
    """Per-component mean and std of the observations (std floored at 1e-3)."""
    obs = samples.obs.astype(np.float64)
    return obs.mean(axis=0), np.maximum(obs.std(axis=0), 1e-3)


__all__ = ["Samples", "Setup", "collect", "evaluate", "observation_stats"]
