"""BarrierNet training configuration: ``config/training/barriernet_*.yaml`` plus
``--set key=value`` overrides (same loader and rules as ``pe-train``: every key has a
default here, unknown keys are errors, see :mod:`pe_training.config`).

``method`` selects the training: ``imitation`` (behaviour cloning of an expert's
filtered commands through the QP layer, optional DAgger rounds) or ``ppo`` (SB3
PPO with the QP in the environment step). Units: gains 1/s, commands m/s and rad/s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pe_sim.config_reader import ConfigError
from pe_sim.config_schema import setting
from pe_training.activations import ACTIVATIONS
from pe_training.config import FinalEvalConfig, RunConfig, load_run_config

METHODS = ("imitation", "ppo")


@dataclass
class GainConfig:
    """Bounds of the class-K gains the network outputs (1/s), log-uniform map; the
    default range [0.5, 8] has its geometric mean at the filter's default gain 2."""

    min: float = setting(0.5, min=0.0, min_exclusive=True)
    max: float = setting(8.0, min=0.0, min_exclusive=True)


@dataclass
class ImitationConfig:
    """Behaviour cloning through the QP layer (BarrierNet's original training)."""

    #: Expert pursuer: a scripted kind (its commands pass through the filter with the
    #: config's default gains; the *filtered* command is the label) or an .onnx policy.
    expert: str = "scripted:proportional_navigation"
    #: Expert episodes recorded (training seeds).
    episodes: int = setting(400, min=1)
    #: DAgger rounds after the first fit: roll out the learner (behind the filter), label
    #: the visited states with the expert's filtered command, refit on everything.
    dagger_rounds: int = setting(2, min=0)
    dagger_episodes: int = setting(200, min=1)
    #: Probability per step of executing the expert's command in DAgger rollouts (beta).
    dagger_beta: float = setting(0.0, min=0.0, max=1.0)
    epochs: int = setting(20, min=1)
    #: Epochs of the refits after each DAgger round.
    dagger_epochs: int = setting(10, min=1)
    batch_size: int = setting(1024, min=1)
    learning_rate: float = setting(1.0e-3, min=0.0, min_exclusive=True)
    #: Weight of the correction term |QP(u_ref) - u_ref|^2 (scaled units) in the loss:
    #: keeps u_ref inside the safe set when it can be (fewer QP interventions).
    correction_weight: float = setting(0.1, min=0.0)
    #: QP layer implementation: "active_set" (numba active set + torch closed form) or
    #: "enumerate" (pe_safety_filter.torch_qp, every candidate in torch).
    qp_mode: str = setting("active_set", choices=("active_set", "enumerate"))
    #: Validation episodes after each fit (held-out validation seeds); the best fit is kept.
    validation_episodes: int = setting(200, min=1)
    num_envs: int = setting(200, min=1)


@dataclass
class BNPPOConfig:
    """SB3 PPO with the QP in the environment (names as ``PPO(...)``)."""

    total_steps: int = setting(3_000_000, min=1)
    num_envs: int = setting(128, min=1)
    learning_rate: float = setting(3.0e-4, min=0.0, min_exclusive=True)
    linear_lr: bool = True
    n_steps: int = setting(128, min=1)
    batch_size: int = setting(4096, min=1)
    n_epochs: int = setting(5, min=1)
    gamma: float = setting(0.99, min=0.0, min_exclusive=True, max=1.0)
    gae_lambda: float = setting(0.95, min=0.0, max=1.0)
    clip_range: float = setting(0.2, min=0.0, min_exclusive=True)
    ent_coef: float = setting(0.0, min=0.0)
    vf_coef: float = setting(0.5, min=0.0)
    max_grad_norm: float = setting(0.5, min=0.0, min_exclusive=True)
    target_kl: float | None = setting(None, min=0.0, min_exclusive=True)
    #: Fixed (not learned) std of the Gaussian noise on the pre-QP unit action: [v, omega,
    #: every gain] (unit-action units; v spans 2 units over [v_min, v_max]).
    fixed_std: list[float] = setting(default_factory=lambda: [0.1, 0.3, 0.2], min=0.0, min_exclusive=True)
    #: Reward penalty per unit of the scaled QP correction |(u_safe - u_ref) / bound|.
    correction_penalty: float = setting(1.0, min=0.0)
    #: Warm start: a BarrierNet imitation run folder (its policy.pt) or null.
    warm_start: str | None = None
    #: Rollouts at the start during which only the critic learns (for warm starts).
    critic_warmup_rollouts: int = setting(0, min=0)
    #: Expert episodes used for the observation statistics when not warm-started.
    stats_episodes: int = setting(50, min=1)
    #: Normalise rewards with SB3's VecNormalize (observations are normalised in the policy).
    normalize_reward: bool = True


@dataclass
class BNEvalConfig:
    """Periodic validation on held-out validation seeds (PPO)."""

    every_steps: int = setting(500_000, min=1)
    episodes: int = setting(200, min=1)
    seed_offset: int = setting(100_000_000, min=0)
    num_envs: int = setting(200, min=1)


@dataclass
class BarrierNetConfig(RunConfig):
    """Everything one ``pe-barriernet-train`` run needs."""

    name: str = "barriernet"
    method: str = setting("imitation", choices=METHODS)
    scenario: str = "bench_1v1_flee"
    role: str = setting("pursuer", choices=("pursuer", "evader"))
    robot: str | None = None
    opponent: str = "scripted:flee"
    teammate: str | None = None
    seed: int = setting(0, min=0, max=99)
    output_dir: str = "runs"
    torch_threads: int = setting(1, min=1)
    k_obstacles: int = setting(4, min=0)
    #: Safety filter config (``config/filter/<name>.yaml``): the QP layer's constraints,
    #: weight and box, and the filter used in data collection, PPO rollouts and evaluation.
    filter_config: str = "vcp_cbf"
    net_arch: list[int] = setting(default_factory=lambda: [64, 64], min=1)
    activation: str = setting("tanh", choices=tuple(ACTIVATIONS))
    gains: GainConfig = field(default_factory=GainConfig)
    #: Training-only reward weight overrides (PPO): capture, timeout, distance_shaping, contact.
    reward: dict[str, float] = field(default_factory=dict)
    imitation: ImitationConfig = field(default_factory=ImitationConfig)
    ppo: BNPPOConfig = field(default_factory=BNPPOConfig)
    eval: BNEvalConfig = field(default_factory=BNEvalConfig)
    final_eval: FinalEvalConfig = field(default_factory=lambda: FinalEvalConfig(filter="all"))
    checkpoint_every_steps: int = setting(1_000_000, min=1)
    #: PPO: export the checkpoint with the best validation score ("best") or the last ("final").
    export: str = setting("best", choices=("best", "final"))

    def validate(self, source: str = "<config>") -> BarrierNetConfig:
        def bad(key: str, message: str) -> ConfigError:
            return ConfigError(source, key, message)

        if not self.gains.min < self.gains.max:
            raise bad("gains", f"need 0 < min < max, got {self.gains.min}, {self.gains.max}")
        if len(self.ppo.fixed_std) != 3 or min(self.ppo.fixed_std) <= 0.0:
            raise bad("ppo.fixed_std", f"must be [v, omega, gains], all > 0, got {self.ppo.fixed_std}")
        self.check_shared(bad, self.ppo.num_envs)
        return self


def load_barriernet_config(name_or_path: str | Path | None = None,
                           overrides: list[str] | None = None) -> BarrierNetConfig:
    """Defaults <- YAML (a name in ``config/training/`` or a path) <- ``overrides``."""
    return load_run_config(BarrierNetConfig, name_or_path, overrides)


def smoke_overrides(method: str) -> list[str]:
    """What ``--smoke`` changes: tiny data, few steps, tiny evaluations (seconds)."""
    common = ["final_eval.episodes=8", "final_eval.num_envs=8", "final_eval.baselines=[]",
              "eval.episodes=8", "eval.num_envs=8"]
    if method == "imitation":
        return [*common, "imitation.episodes=6", "imitation.dagger_rounds=1", "imitation.dagger_episodes=4",
                "imitation.epochs=2", "imitation.dagger_epochs=1", "imitation.validation_episodes=8",
                "imitation.num_envs=8"]
    # A smoke run starts from scratch: it must not need a finished imitation run.
    return [*common, "ppo.warm_start=null",
            "ppo.total_steps=2048", "ppo.num_envs=16", "ppo.n_steps=64", "ppo.batch_size=512",
            "ppo.n_epochs=2", "ppo.stats_episodes=4", "eval.every_steps=1024", "checkpoint_every_steps=1024"]


__all__ = ["METHODS", "BNEvalConfig", "BNPPOConfig", "BarrierNetConfig", "GainConfig", "ImitationConfig",
           "load_barriernet_config", "smoke_overrides"]
