"""One SB3 VecEnv made of several: the envs of each part side by side, in part order.

Training over a scenario's variants (:meth:`pe_sim.scenario.Scenario.variants_of`:
evader speeds, arena sizes) runs one :class:`~pe_sim.envs.vec_env.BatchVecEnv` per
variant, each possibly under its own reward-shaping wrappers, and shows SB3 a single
VecEnv of all their envs. The parts must observe alike (one observation spec: the
variants share the base scenario's length scale), so one policy learns from them all.

Episode seeds: part ``k`` plays seeds from ``seed + k * seed_stride`` on, so the parts
never share an episode as long as each plays fewer than ``seed_stride`` episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

#: Episode seeds between the first seeds of two consecutive parts.
DEFAULT_SEED_STRIDE = 1_000_000


class ConcatVecEnv(VecEnv):
    """The envs of ``parts`` (VecEnvs with equal observation specs and action spaces) as
    one VecEnv; env ``i`` is env ``i - offset[k]`` of the part ``k`` holding it."""

    def __init__(self, parts: Sequence[VecEnv], seed_stride: int = DEFAULT_SEED_STRIDE) -> None:
        if not parts:
            raise ValueError("need at least one part")
        self.parts = list(parts)
        specs = {getattr(p, "observation_spec", None) for p in self.parts}
        if len(specs) != 1:
            raise ValueError(f"the parts observe differently: {sorted(map(str, specs))}")
        self.seed_stride = int(seed_stride)
        sizes = [p.num_envs for p in self.parts]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        first = self.parts[0]
        bound = max(float(np.max(np.abs(p.observation_space.high))) for p in self.parts)
        shape = first.observation_space.shape
        super().__init__(int(self.offsets[-1]), spaces.Box(-bound, bound, shape, np.float32),
                         first.action_space)

    @property
    def observation_spec(self) -> Any:
        """The parts' common observation spec."""
        return self.parts[0].observation_spec

    @property
    def next_seed(self) -> int:
        """A seed from which :meth:`seed` gives every part episodes it has not played yet."""
        return max(int(p.next_seed) - k * self.seed_stride for k, p in enumerate(self.parts))

    def _split(self, array: np.ndarray) -> list[np.ndarray]:
        return [array[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)]

    # -- VecEnv API ----------------------------------------------------------------------
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Part ``k`` starts at ``seed + k * seed_stride`` (each draws at random when None)."""
        out: list[int | None] = []
        for k, part in enumerate(self.parts):
            out += list(part.seed(None if seed is None else seed + k * self.seed_stride))
        return out

    def reset(self) -> np.ndarray:
        obs = [p.reset() for p in self.parts]
        self.reset_infos = [info for p in self.parts for info in p.reset_infos]
        return np.concatenate(obs)

    def step_async(self, actions: np.ndarray) -> None:
        for part, a in zip(self.parts, self._split(np.asarray(actions)), strict=True):
            part.step_async(a)

    def step_wait(self) -> VecEnvStepReturn:
        results = [p.step_wait() for p in self.parts]
        obs, rewards, dones, infos = zip(*results, strict=True)
        return (np.concatenate(obs), np.concatenate(rewards), np.concatenate(dones),
                [info for part_infos in infos for info in part_infos])

    def close(self) -> None:
        for p in self.parts:
            p.close()

    def _by_part(self, indices: VecEnvIndices) -> list[tuple[VecEnv, list[int]]]:
        """(part, its local indices) for the parts holding some of ``indices``, in order."""
        idx = np.asarray(list(self._get_indices(indices)), dtype=np.int64)
        part_of = np.searchsorted(self.offsets, idx, side="right") - 1
        return [(self.parts[k], (idx[part_of == k] - self.offsets[k]).tolist())
                for k in range(len(self.parts)) if (part_of == k).any()]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [v for part, local in self._by_part(indices) for v in part.get_attr(attr_name, local)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for part, local in self._by_part(indices):
            part.set_attr(attr_name, value, local)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None,
                   **method_kwargs) -> list[Any]:
        return [v for part, local in self._by_part(indices)
                for v in part.env_method(method_name, *method_args, indices=local, **method_kwargs)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [v for part, local in self._by_part(indices)
                for v in part.env_is_wrapped(wrapper_class, local)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [img for p in self.parts for img in p.get_images()]


__all__ = ["DEFAULT_SEED_STRIDE", "ConcatVecEnv"]
