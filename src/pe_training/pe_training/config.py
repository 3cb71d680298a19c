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
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pe_sim.config_reader import ConfigError, load_yaml
from pe_sim.package_data import resolve_named

ALGORITHMS = ("ppo",)
ROLES = ("pursuer", "evader")


@dataclass
class PPOConfig:
    """Stable-Baselines3 PPO hyperparameters (same names as ``PPO(...)``)."""

    learning_rate: float = 3e-4
    n_steps: int = 128
    batch_size: int = 4096
    n_epochs: int = 5
    gamma: float = 0.995
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    #: Hidden layer sizes of the actor and of the critic (separate networks).
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "tanh"
    #: Initial log standard deviation of the (state-independent) Gaussian policy.
    log_std_init: float = -0.5
    #: Anneal the learning rate linearly to 0 over the run.
    linear_lr: bool = True


@dataclass
class NormalizeConfig:
    """SB3 ``VecNormalize``: observation statistics are exported with the policy."""

    obs: bool = True
    reward: bool = True
    clip_obs: float = 10.0
    clip_reward: float = 10.0
    epsilon: float = 1e-8


@dataclass
class FilterConfig:
    """Filter-in-the-loop training: the batch safety filter on every training action."""

    in_loop: bool = False
    #: Filter config name (``config/filter/<name>.yaml``) or path.
    config: str = "vcp_cbf"
    #: Whose commands the filter changes during training: "all" robots or only the "learners".
    robots: str = "all"
    #: Reward penalty per unit of the learner's scaled correction |u_safe - u_nom|.
    correction_penalty: float = 0.0
    #: Without the filter in the loop: still put the *opponents* behind the filter (each
    #: for its own robot), as ``pe-eval --filter all`` deploys them, so the unconstrained
    #: learner trains against the opponent it will meet.
    opponents: bool = False


@dataclass
class ShapingConfig:
    """Training-only reward shaping (:mod:`pe_training.shaping`); 0 turns a term off."""

    #: Penalise the learner's body clearance below this (m) ...
    clearance_margin: float = 0.0
    #: ... by up to this much per step (linear in the shortfall).
    clearance_weight: float = 0.0
    #: Penalise the change of the applied (v m/s, omega rad/s) from one step to the next:
    #: reward units per step per unit of squared change, each component divided by its
    #: bound (max |v|, omega_max).
    command_rate_weight: float = 0.0


@dataclass
class EvalConfig:
    """Periodic evaluation on held-out *validation* seeds (disjoint from training seeds,
    which are below ``EVAL_SEED_BASE``, and from ``pe-eval``'s default test seeds)."""

    every_steps: int = 250_000
    episodes: int = 200
    #: Robots behind the post-hoc filter during evaluation: none, all, pursuer, evader.
    filter: str = "all"
    #: Offset above ``EVAL_SEED_BASE`` of the first validation seed.
    seed_offset: int = 100_000_000
    num_envs: int = 200


@dataclass
class FinalEvalConfig:
    """The evaluation written into the model card: the exported ONNX policy through
    :func:`pe_policy.policy.load_policy`, exactly as ``pe-eval`` runs it."""

    episodes: int = 1000
    filter: str = "all"
    #: Scripted pursuers/evaders evaluated the same way for comparison (same role as the learner).
    baselines: list[str] = field(default_factory=list)
    num_envs: int = 250


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
        """The checks every training config needs: role, seed range, export rule, reward
        weight names, and a PPO minibatch that divides the rollout (``num_envs`` x
        ``ppo.n_steps``)."""
        if self.role not in ROLES:
            raise bad("role", f"must be one of {list(ROLES)}, got {self.role!r}")
        if self.seed < 0 or self.seed >= 100:
            raise bad("seed", f"must be in [0, 100) (training episode seeds are seed * 1e7 + k), "
                              f"got {self.seed}")
        if self.export not in ("best", "final"):
            raise bad("export", f"must be 'best' or 'final', got {self.export!r}")
        unknown = set(self.reward) - {"capture", "timeout", "distance_shaping", "contact"}
        if unknown:
            raise bad("reward", f"unknown reward weights {sorted(unknown)}")
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
    role: str = "pursuer"
    #: Learning robot by name (default: the first robot of ``role``).
    robot: str | None = None
    #: Opponents: ``scripted:<kind>`` (or a bare kind) or a path to an exported ``.onnx`` policy.
    opponent: str = "scripted:flee"
    #: Teammates of the learner (multi-robot scenarios), same forms as ``opponent``.
    teammate: str | None = None
    algorithm: str = "ppo"
    total_steps: int = 1_000_000
    seed: int = 0
    num_envs: int = 64
    #: Runs go to ``<output_dir>/<name>/``.
    output_dir: str = "runs"
    torch_threads: int = 1
    k_obstacles: int = 4
    #: Overrides of the scenario's reward weights (capture, timeout, distance_shaping, contact),
    #: for training only.
    reward: dict[str, float] = field(default_factory=dict)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    shaping: ShapingConfig = field(default_factory=ShapingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    final_eval: FinalEvalConfig = field(default_factory=FinalEvalConfig)
    checkpoint_every_steps: int = 500_000
    #: Export the checkpoint with the best validation score ("best") or the last one ("final").
    export: str = "best"

    # -- validation -------------------------------------------------------------------------
    def validate(self, source: str = "<config>") -> TrainConfig:
        def bad(key: str, message: str) -> ConfigError:
            return ConfigError(source, key, message)

        if self.algorithm not in ALGORITHMS:
            raise bad("algorithm", f"unsupported {self.algorithm!r}; choose from {list(ALGORITHMS)}")
        for key in ("total_steps", "num_envs", "torch_threads", "checkpoint_every_steps"):
            if getattr(self, key) < 1:
                raise bad(key, f"must be >= 1, got {getattr(self, key)}")
        self.check_shared(bad, self.num_envs)
        for key, value in vars(self.shaping).items():
            if not (math.isfinite(value) and value >= 0.0):
                raise bad(f"shaping.{key}", f"must be a finite number >= 0, got {value}")
        if self.filter.robots not in ("all", "learners"):
            raise bad("filter.robots", f"must be 'all' or 'learners', got {self.filter.robots!r}")
        return self



# --------------------------------------------------------------------------- loading


def _from_data(cls: type, data: Any, source: str, prefix: str) -> Any:
    """Build dataclass ``cls`` from a mapping, checking keys and scalar types."""
    if not isinstance(data, dict):
        raise ConfigError(source, prefix or "<root>", f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(source, f"{prefix}.{sorted(unknown)[0]}" if prefix else sorted(unknown)[0],
                          f"unknown key (known: {sorted(names)})")
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(hints[name], value, source, key)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _from_data(hint, value, source, key)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, source, key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(source, key, f"expected a list, got {value!r}")
        return [_coerce(args[0], v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(source, key, f"expected a mapping, got {value!r}")
        return {str(k): _coerce(args[1], v, source, f"{key}.{k}") for k, v in value.items()}
    if hint in (int, float) and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" (no dot) as a string
            value = float(value)
        except ValueError:
            raise ConfigError(source, key, f"expected a number, got {value!r}") from None
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(source, key, f"expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ConfigError(source, key, f"expected a whole number, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(source, key, f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(source, key, f"expected a string, got {value!r}")
        return value
    return value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a nested mapping."""
    data = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", item, "expected KEY=VALUE (dotted keys for sections)")
        value = yaml.safe_load(raw) if raw else ""
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
    return _from_data(cls, data, source, "").validate(source)


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
