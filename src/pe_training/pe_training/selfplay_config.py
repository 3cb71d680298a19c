"""Self-play configuration: ``config/training/selfplay_*.yaml`` plus ``--set key=value``
overrides (same loader and rules as ``pe-train``: every key has a default here, unknown
keys are errors; see :mod:`pe_training.config`).

A self-play run trains a pursuer and an evader in alternation. Each learner's PPO, reward,
shaping and filter settings come from an ordinary training config (``pursuer``,
``evader``: names in ``config/training/`` or paths), changed by ``pursuer_set`` /
``evader_set`` overrides; its opponent is the pool (:mod:`pe_training.pool`). Budgets are
env steps per learner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pe_sim.config_reader import ConfigError
from pe_sim.config_schema import setting
from pe_training.config import RunConfig, load_run_config
from pe_training.pool import WEIGHTINGS

#: Kinds of self-play learner: a pe-train config or a BarrierNet PPO config.
LEARNER_KINDS = ("ppo", "barriernet")


@dataclass
class PoolConfig:
    """Who is in each side's opponent pool and how opponents are drawn."""

    #: Scripted members of the pursuer learner's pool (evaders).
    scripted_evaders: list[str] = field(default_factory=lambda: ["scripted:flee", "scripted:random"])
    #: Scripted members of the evader learner's pool (pursuers).
    scripted_pursuers: list[str] = field(
        default_factory=lambda: ["scripted:pure_pursuit", "scripted:proportional_navigation"])
    #: Frozen learned members of the pursuer learner's pool (shipped names or ONNX paths),
    #: there from the first generation beside the scripted ones: e.g. best-response evaders
    #: that ``pe-exploit`` trained against an earlier pursuer.
    frozen_evaders: list[str] = field(default_factory=list)
    #: Frozen learned members of the evader learner's pool (pursuers).
    frozen_pursuers: list[str] = field(default_factory=list)
    #: PFSP weighting of the learner's win rate x against a member: hard (1 - x)^p, var x(1 - x), uniform.
    weighting: str = setting("hard", choices=WEIGHTINGS)
    #: p of the hard weighting.
    exponent: float = setting(2.0, min=0.0, min_exclusive=True)
    #: A learner's snapshot (its exported ONNX policy) enters the other side's pool every
    #: this many generations.
    snapshot_every: int = setting(1, min=1)
    #: Keep at most this many snapshots per side (the oldest leave first; 0: keep all).
    max_snapshots: int = setting(0, min=0)

    def frozen(self, side: str) -> list[str]:
        """``side``'s frozen learned members."""
        return self.frozen_pursuers if side == "pursuer" else self.frozen_evaders

    def fixed_members(self, side: str) -> list[str]:
        """``side``'s members that are in the pool from the start: scripted, then frozen."""
        scripted = self.scripted_pursuers if side == "pursuer" else self.scripted_evaders
        return [*scripted, *self.frozen(side)]


@dataclass
class SelfPlayConfig(RunConfig):
    """Everything one ``pe-selfplay`` run needs."""

    name: str = "selfplay"
    #: Training config of the pursuer learner and of the evader learner.
    pursuer: str = "pursuer_bench_flee_filter"
    evader: str = "evader_bench_pn_filter"
    #: What each learner's config is: ``ppo`` a pe-train config, ``barriernet`` a
    #: pe-barriernet-train config of method ppo (see :mod:`pe_training.selfplay_learner`).
    pursuer_learner: str = setting("ppo", choices=LEARNER_KINDS)
    evader_learner: str = setting("ppo", choices=LEARNER_KINDS)
    #: Overrides (``key=value``) applied to each learner's training config.
    pursuer_set: list[str] = field(default_factory=list)
    evader_set: list[str] = field(default_factory=list)
    #: Generations; in each, the pursuer trains ``steps_per_generation`` env steps against
    #: the evader pool, then the evader as many against the pursuer pool.
    generations: int = setting(16, min=1)
    steps_per_generation: int = setting(1_000_000, min=1)
    #: Seed of the run: the pursuer learner trains on episode seeds ``seed * 1e7 + k``,
    #: the evader on ``(seed + 50) * 1e7 + k``; also the pools' sampling seed.
    seed: int = setting(1, min=0, max=49)
    #: Held-out validation episodes per cell of each generation's cross-play matrix.
    crossplay_episodes: int = setting(200, min=1)
    pool: PoolConfig = field(default_factory=PoolConfig)
    output_dir: str = "runs"

    HASH_EXCLUDES = ("output_dir", "name")

    def learner_kind(self, role: str) -> str:
        return self.pursuer_learner if role == "pursuer" else self.evader_learner

    def validate(self, source: str = "<config>") -> SelfPlayConfig:
        """Checks across keys (single keys are checked by their ``setting``)."""
        if not self.pool.scripted_evaders or not self.pool.scripted_pursuers:
            raise ConfigError(source, "pool",
                              "each side's pool needs at least one scripted member for the first generation")
        return self


def load_selfplay_config(name_or_path: str | Path | None = None,
                         overrides: list[str] | None = None) -> SelfPlayConfig:
    """A validated :class:`SelfPlayConfig` (defaults <- YAML <- overrides)."""
    return load_run_config(SelfPlayConfig, name_or_path, overrides)


#: What ``pe-selfplay --smoke`` adds to each kind of learner's overrides (a BarrierNet
#: learner starts from scratch: a smoke run must not need a finished imitation run).
LEARNER_SMOKE = {
    "ppo": ["num_envs=16", "ppo.n_steps=64", "ppo.batch_size=256", "ppo.n_epochs=2", "final_eval.episodes=8"],
    "barriernet": ["ppo.num_envs=16", "ppo.n_steps=64", "ppo.batch_size=256", "ppo.n_epochs=2",
                   "final_eval.episodes=8", "ppo.warm_start=null", "ppo.stats_episodes=4"],
}


def smoke_overrides() -> list[str]:
    """What ``pe-selfplay --smoke`` changes (besides :data:`LEARNER_SMOKE`): two tiny
    generations, seconds of wall time."""
    return ["generations=2", "steps_per_generation=2048", "crossplay_episodes=8"]


__all__ = ["LEARNER_KINDS", "LEARNER_SMOKE", "PoolConfig", "SelfPlayConfig", "load_selfplay_config",
           "smoke_overrides"]
