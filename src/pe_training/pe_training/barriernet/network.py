"""The BarrierNet network: an SB3 actor-critic whose actor outputs, per observation,
the unit vector ``a = (a_u (2), a_g (G))`` in (-1, 1):

* ``a_u`` -> u_ref = lo + (a_u + 1) / 2 (hi - lo), the reference command (v m/s,
  omega rad/s) inside the robot's bounds (the normalised action convention of
  :mod:`pe_sim.envs.actions`);
* ``a_g`` -> one class-K gain per barrier (1/s), log-uniform in
  [gain_min, gain_max] (:class:`~pe_policy.barriernet_policy.GainLayout`).

Both training methods use this one module, so the imitation model warm-starts PPO
as it is: observation normalisation with *fixed* statistics (buffers, from expert
data; no running VecNormalize), an MLP (``net_arch``, ``activation``), a linear
head and ``HEAD_SCALE * tanh`` (the actor's mean); the deterministic output is the
mean clipped to [-1, 1]. The head reaches a little past the bounds so that a policy
that wants a bound (full speed, most of the time) can put its mean beyond it: its
noisy samples then mostly clip *to* the bound instead of averaging below it (with a
mean inside [-1, 1], symmetric noise at v_max costs a pursuer a few percent of
speed -- the whole margin over a 0.94 x evader). For PPO the action distribution is
a Gaussian around that mean with a *fixed* standard deviation per component
(v, omega, each gain); ``log_std`` has ``requires_grad=False``: the optimiser never
changes it.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from pe_policy.barriernet_policy import GainLayout
from pe_training.activations import ACTIVATIONS

#: The mean is HEAD_SCALE * tanh(linear); outputs are clipped to [-1, 1] before use.
HEAD_SCALE = 1.5


class Scale(nn.Module):
    """Multiply by a constant."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def std_vector(fixed_std: float | list[float], n_gains: int) -> np.ndarray:
    """Per-component std (2 + G,) from one value or (v, omega, gains)."""
    values = [float(fixed_std)] * 3 if isinstance(fixed_std, int | float) else [float(x) for x in fixed_std]
    if len(values) != 3 or min(values) <= 0.0:
        raise ValueError(f"fixed_std must be > 0: one value or [v, omega, gains], got {fixed_std}")
    return np.array([values[0], values[1]] + [values[2]] * n_gains)


class NormalizeExtractor(BaseFeaturesExtractor):
    """``clip((obs - mean) / std, -clip, clip)`` with fixed statistics (buffers)."""

    def __init__(self, observation_space: gym.spaces.Box, mean: list[float], std: list[float],
                 clip: float = 10.0) -> None:
        dim = int(np.prod(observation_space.shape))
        super().__init__(observation_space, dim)
        mean_a = np.asarray(mean, dtype=np.float32).reshape(dim)
        std_a = np.maximum(np.asarray(std, dtype=np.float32).reshape(dim), 1e-6)
        self.register_buffer("mean", torch.as_tensor(mean_a))
        self.register_buffer("inv_std", torch.as_tensor(1.0 / std_a))
        self.clip = float(clip)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        x = (observations.float() - self.mean) * self.inv_std
        return torch.clamp(x, -self.clip, self.clip)


class BarrierNetActorCritic(ActorCriticPolicy):
    """SB3 ``ActorCriticPolicy`` with the BarrierNet actor (see the module docstring).

    Extra keyword arguments: ``obs_mean``/``obs_std`` (lists, the normalisation),
    ``fixed_std`` (the exploration noise std on the pre-QP unit action, one value or
    [v, omega, gains]; not learned).
    """

    def __init__(self, *args: Any, obs_mean: list[float], obs_std: list[float],
                 fixed_std: float | list[float] = 0.3, **kwargs: Any) -> None:
        kwargs["features_extractor_class"] = NormalizeExtractor
        kwargs["features_extractor_kwargs"] = {"mean": list(obs_mean), "std": list(obs_std)}
        kwargs["log_std_init"] = 0.0
        kwargs.setdefault("squash_output", False)
        self.fixed_std = fixed_std if isinstance(fixed_std, int | float) else [float(x) for x in fixed_std]
        super().__init__(*args, **kwargs)
        self.set_fixed_std(self.fixed_std)

    def set_fixed_std(self, fixed_std: float | list[float]) -> None:
        """Set the (not learned) exploration std: one value or [v, omega, gains]."""
        std = std_vector(fixed_std, self.log_std.shape[0] - 2)
        with torch.no_grad():
            self.log_std.copy_(torch.as_tensor(np.log(std), dtype=self.log_std.dtype))
        self.log_std.requires_grad_(False)
        self.fixed_std = fixed_std

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        # The mean is HEAD_SCALE * tanh(linear): the optimiser built by super() already holds
        # the linear layer's parameters (the same objects), tanh and the scale have none.
        self.action_net = nn.Sequential(self.action_net, nn.Tanh(), Scale(HEAD_SCALE))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        fe = self.features_extractor
        data.pop("features_extractor_class", None)
        data.pop("features_extractor_kwargs", None)
        data.pop("log_std_init", None)
        data.update(obs_mean=(fe.mean.cpu().numpy().tolist()),
                    obs_std=(1.0 / fe.inv_std.cpu().numpy()).tolist(), fixed_std=self.fixed_std)
        return data

    def actor_unit(self, obs: torch.Tensor) -> torch.Tensor:
        """The actor's mean (B, 2 + G) in (-HEAD_SCALE, HEAD_SCALE) for raw observations; the
        deterministic unit action is this clipped to [-1, 1]."""
        features = self.extract_features(obs, self.pi_features_extractor)
        latent = self.mlp_extractor.forward_actor(features)
        return self.action_net(latent)

    def actor_parameters(self) -> list[nn.Parameter]:
        """The parameters of the actor path (MLP + head), without the critic."""
        return list(self.mlp_extractor.policy_net.parameters()) + list(self.action_net.parameters())


def make_policy(
    obs_dim: int,
    layout: GainLayout,
    obs_mean: np.ndarray,
    obs_std: np.ndarray,
    net_arch: list[int],
    activation: str = "tanh",
    fixed_std: float | list[float] = 0.3,
    learning_rate: float = 3e-4,
) -> BarrierNetActorCritic:
    """A stand-alone policy (the imitation model; PPO builds the same class itself)."""
    obs_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (2 + layout.size,), np.float32)
    return BarrierNetActorCritic(
        obs_space, act_space, lambda _: learning_rate, net_arch=policy_net_arch(net_arch),
        activation_fn=ACTIVATIONS[activation], obs_mean=list(map(float, obs_mean)),
        obs_std=list(map(float, obs_std)), fixed_std=fixed_std)


def policy_net_arch(net_arch: list[int]) -> dict[str, list[int]]:
    return {"pi": list(net_arch), "vf": list(net_arch)}


class UnitToPhysical(nn.Module):
    """a (B, 2 + G) in [-1, 1] -> (u_ref (B, 2) in [lo, hi], gains (B, G) in [gain_min, gain_max])."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, layout: GainLayout) -> None:
        super().__init__()
        lo = np.asarray(lo, dtype=np.float32)
        self.register_buffer("lo", torch.as_tensor(lo))
        self.register_buffer("span", torch.as_tensor(np.asarray(hi, dtype=np.float32) - lo))
        self.log_gmin = math.log(layout.gain_min)
        self.log_ratio = math.log(layout.gain_max / layout.gain_min)

    def forward(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.clamp(a, -1.0, 1.0)
        u = self.lo.to(a.dtype) + 0.5 * (a[:, :2] + 1.0) * self.span.to(a.dtype)
        gains = torch.exp(self.log_gmin + 0.5 * (a[:, 2:] + 1.0) * self.log_ratio)
        return u, gains


class ExportedBarrierNet(nn.Module):
    """What goes to ONNX: raw observations -> (action (B, 2) in [-1, 1], u_ref (B, 2), gains (B, G))."""

    def __init__(self, policy: BarrierNetActorCritic, to_physical: UnitToPhysical) -> None:
        super().__init__()
        self.features_extractor = policy.pi_features_extractor
        self.mlp_extractor = policy.mlp_extractor
        self.action_net = policy.action_net
        self.to_physical = to_physical

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latent = self.mlp_extractor.forward_actor(self.features_extractor(obs))
        a = torch.clamp(self.action_net(latent), -1.0, 1.0)
        u, gains = self.to_physical(a)
        return a[:, :2], u, gains


__all__ = ["HEAD_SCALE", "BarrierNetActorCritic", "ExportedBarrierNet", "NormalizeExtractor",
           "Scale", "UnitToPhysical", "make_policy", "policy_net_arch", "std_vector"]
