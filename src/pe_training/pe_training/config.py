"""Training configuration: a YAML file (``config/training/<name>.yaml``) plus CLI overrides.

Every key has a default here, so a config file only states what differs; unknown
keys are errors (a typo must not silently train something else). Overrides use
dotted keys with YAML values: ``--set ppo.learning_rate=1e-4 --set filter.in_loop=true``.

The *config hash* identifies what was trained: a SHA-256 over the resolved config
(as canonical JSON) without the keys that do not change the policy (output folder,
logging and checkpoint cadence); it is written into the exported policy and the
model card.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pe_sim.config_reader import ConfigError, load_yaml
from pe_sim.config_schema import closest, from_data, setting
from pe_sim.package_data import resolve_named
from pe_training.activations import ACTIVATIONS

ALGORITHMS = ("ppo",)
ROLES = ("pursuer", "evader")


@dataclass
class PPOConfig:
    """Stable-Baselines3 PPO hyperparameters (same names as ``PPO(...)``)."""

    learning_rate: float = setting(3e-4, min=0.0, min_exclusive=True)
    n_steps: int = setting(128, min=1)
    batch_size: int = setting(4096, min=1)
    n_epochs: int = setting(5, min=1)
    gamma: float = setting(0.995, min=0.0, min_exclusive=True, max=1.0)
    gae_lambda: float = setting(0.95, min=0.0, max=1.0)
    clip_range: float = setting(0.2, min=0.0, min_exclusive=True)
    ent_coef: float = setting(0.0, min=0.0)
    vf_coef: float = setting(0.5, min=0.0)
    max_grad_norm: float = setting(0.5, min=0.0, min_exclusive=True)
    target_kl: float | None = setting(None, min=0.0, min_exclusive=True)
    #: Hidden layer sizes of the actor and of the critic (separate networks).
    net_arch: list[int] = setting(default_factory=lambda: [64, 64], min=1)
    activation: str = setting("tanh", choices=tuple(ACTIVATIONS))
    #: Initial log standard deviation of the (state-independent) Gaussian policy.
    log_std_init: float = -0.5
    #: Anneal the learning rate linearly to 0 over the run.
    linear_lr: bool = True


@dataclass
class NormalizeConfig:
    """SB3 ``VecNormalize``: observation statistics are exported with the policy."""

    obs: bool = True
    reward: bool = True
    clip_obs: float = setting(10.0, min=0.0, min_exclusive=True)
    clip_reward: float = setting(10.0, min=0.0, min_exclusive=True)
    epsilon: float = setting(1e-8, min=0.0, min_exclusive=True)


@dataclass
class FilterConfig:
    """Filter-in-the-loop training: the batch safety filter on every training action."""

    in_loop: bool = False
    #: Filter config name (``config/filter/<name>.yaml``) or path.
    config: str = "vcp_cbf"
    #: Whose commands the filter changes during training: "all" robots or only the "learners".
    robots: str = setting("all", choices=("all", "learners"))
    #: Reward penalty per unit of the learner's scaled correction |u_safe - u_nom|.
    correction_penalty: float = setting(0.0, min=0.0)
    #: Without the filter in the loop: still put the *opponents* behind the filter (each
    #: for its own robot), as ``pe-eval --filter all`` deploys them, so the unconstrained
    #: learner trains against the opponent it will meet.
    opponents: bool = False


@dataclass
class ShapingConfig:
    """Training-only reward shaping (:mod:`pe_training.shaping`); 0 turns a term off."""

    #: Penalise the learner's body clearance below this (m) ...
    clearance_margin: float = setting(0.0, min=0.0)
    #: ... by up to this much per step (linear in the shortfall).
    clearance_weight: float = setting(0.0, min=0.0)
    #: Penalise the change of the applied (v m/s, omega rad/s) from one step to the next:
    #: reward units per step per unit of squared change, each component divided by its
    #: bound (max |v|, omega_max).
    command_rate_weight: float = setting(0.0, min=0.0)


@dataclass
class EvalConfig:
    """Periodic evaluation on held-out *validation* seeds (disjoint from training seeds,
    which are below ``EVAL_SEED_BASE``, and from ``pe-eval``'s default test seeds)."""

    every_steps: int = setting(250_000, min=1)
    episodes: int = setting(200, min=1)
    #: Robots behind the post-hoc filter during evaluation: none, all, pursuer, evader.
    filter: str = "all"
    #: Offset above ``EVAL_SEED_BASE`` of the first validation seed.
    seed_offset: int = setting(100_000_000, min=0)
    num_envs: int = setting(200, min=1)


@dataclass
class FinalEvalConfig:
    """The evaluation written into the model card: the exported ONNX policy through
    :func:`pe_policy.policy.load_policy`, exactly as ``pe-eval`` runs it."""

    episodes: int = setting(1000, min=0)
    filter: str = "all"
    #: Scripted pursuers/evaders evaluated the same way for comparison (same role as the learner).
    baselines: list[str] = field(default_factory=list)
    num_envs: int = setting(250, min=1)


class RunConfig:
    """What every training config (PPO or BarrierNet) shares: plain-data view, the
    hash of what determines the trained policy, and the run folder."""

    #: Keys that do not change the trained policy (left out of the hash).
    HASH_EXCLUDES = ("output_dir", "name", "eval", "final_eval", "checkpoint_every_steps")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        """16 hex digits of SHA-256 over what determines the trained policy."""
        data = self.to_dict()
        for key in self.HASH_EXCLUDES:
            data.pop(key, None)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def check_shared(self, bad: Callable[[str, str], ConfigError], num_envs: int) -> None:
        """The checks every training config needs beyond single keys: reward weight names
        and a PPO minibatch that divides the rollout (``num_envs`` x
        ``ppo.n_steps``)."""
        weights = ("capture", "timeout", "distance_shaping", "contact")
        for key in self.reward:
            if key not in weights:
                raise bad(f"reward.{key}", f"unknown reward weight{closest(key, weights)}; "
                                           f"known: {list(weights)}")
        rollout = num_envs * self.ppo.n_steps
        if rollout % self.ppo.batch_size:
            raise bad("ppo.batch_size",
                      f"must divide num_envs * n_steps = {rollout}, got {self.ppo.batch_size}")


@dataclass
class TrainConfig(RunConfig):
    """Everything one ``pe-train`` run needs."""

    name: str = "policy"
    #: Scenario name (``config/scenarios``) or path.
    scenario: str = "seed_1v1_2obs"
    role: str = setting("pursuer", choices=ROLES)
    #: Learning robot by name (default: the first robot of ``role``).
    robot: str | None = None
    #: Opponents: ``scripted:<kind>`` (or a bare kind) or a path to an exported ``.onnx`` policy.
    opponent: str = "scripted:flee"
    #: Teammates of the learner (multi-robot scenarios), same forms as ``opponent``.
    teammate: str | None = None
    algorithm: str = setting("ppo", choices=ALGORITHMS)
    total_steps: int = setting(1_000_000, min=1)
    seed: int = setting(0, min=0, max=99)
    num_envs: int = setting(64, min=1)
    #: Runs go to ``<output_dir>/<name>/``.
    output_dir: str = "runs"
    torch_threads: int = setting(1, min=1)
    k_obstacles: int = setting(4, min=0)
    #: Overrides of the scenario's reward weights (capture, timeout, distance_shaping, contact),
    #: for training only.
    reward: dict[str, float] = field(default_factory=dict)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    shaping: ShapingConfig = field(default_factory=ShapingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    final_eval: FinalEvalConfig = field(default_factory=FinalEvalConfig)
    checkpoint_every_steps: int = setting(500_000, min=1)
    #: Export the checkpoint with the best validation score ("best") or the last one ("final").
    export: str = setting("best", choices=("best", "final"))

    # -- validation -------------------------------------------------------------------------
    def validate(self, source: str = "<config>") -> TrainConfig:
        def bad(key: str, message: str) -> ConfigError:
            return ConfigError(source, key, message)

        self.check_shared(bad, self.num_envs)
        return self



# --------------------------------------------------------------------------- loading


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a nested mapping."""
    data = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", item, "expected KEY=VALUE (dotted keys for sections)")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as exc:
            raise ConfigError("--set", key, f"value is not valid YAML: {exc}") from None
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError("--set", key, f"'{part}' is not a section")
        node[parts[-1]] = value
    return data


def load_train_config(
    name_or_path: str | Path | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """A validated :class:`TrainConfig`: defaults <- YAML file (a name in
    ``config/training/`` or a path) <- ``overrides`` (``key=value`` strings)."""
    return load_run_config(TrainConfig, name_or_path, overrides)


def load_run_config(cls: type, name_or_path: str | Path | None = None,
                    overrides: list[str] | None = None) -> Any:
    """A validated config of dataclass ``cls``: defaults <- YAML file (a name in
    ``config/training/`` or a path) <- ``overrides`` (``key=value`` strings)."""
    data: dict[str, Any] = {}
    source = "<defaults>"
    if name_or_path is not None:
        path = resolve_named(name_or_path, "pe_training", "config/training", "training config")
        data = load_yaml(path)
        source = str(path)
        data.setdefault("name", Path(path).stem)
    if overrides:
        data = apply_overrides(data, overrides)
        source += " + --set"
    return from_data(cls, data, source).validate(source)


def smoke_overrides() -> list[str]:
    """What ``--smoke`` changes: a few thousand steps, tiny evaluations, seconds of wall time."""
    return [
        "total_steps=4096", "num_envs=16", "ppo.n_steps=64", "ppo.batch_size=256", "ppo.n_epochs=2",
        "eval.every_steps=2048", "eval.episodes=8", "eval.num_envs=8",
        "final_eval.episodes=16", "final_eval.num_envs=16", "final_eval.baselines=[]",
        "checkpoint_every_steps=2048",
    ]


__all__ = [
    "EvalConfig", "FilterConfig", "FinalEvalConfig", "NormalizeConfig", "PPOConfig", "ShapingConfig",
    "TrainConfig",
    "apply_overrides", "load_train_config", "smoke_overrides",
]
