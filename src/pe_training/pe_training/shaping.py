"""Training-only reward shaping on top of the environment's reward.

:class:`ClearancePenalty` subtracts ``weight * (1 - clearance / margin)`` from the
learner's reward on every step where its least body clearance (to obstacles and walls,
as the simulator measures it: :attr:`BatchVecEnv.last_step`) is below ``margin`` metres.

Why: a policy trained without the safety filter is deployed behind it. The filter keeps
the body about ``lookahead`` (0.15 m) plus a margin away from obstacles and walls; a
policy that never learned to keep that distance drives into the filter's boundary, and
when the target is behind an obstacle it can hold a command the filter can only answer
with "stop" (a deadlock until the time limit; seen in about 0.5 % of the seed-scenario
episodes without this term). The penalty teaches the margin without a filter in the loop.
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from pe_sim.envs.vec_env import BatchVecEnv


class ClearancePenalty(VecEnvWrapper):
    """``reward -= weight * clip(1 - clearance / margin, 0, 1)`` for the learning robot."""

    def __init__(self, venv: BatchVecEnv, margin: float, weight: float) -> None:
        if not isinstance(venv, BatchVecEnv):
            raise TypeError(f"ClearancePenalty wraps a BatchVecEnv, got {type(venv).__name__}")
        if margin <= 0.0:
            raise ValueError(f"margin must be > 0, got {margin}")
        super().__init__(venv)
        self.margin = float(margin)
        self.weight = float(weight)

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, reward, dones, infos = self.venv.step_wait()
        step = self.venv.last_step
        clearance = step.result.clearance[:, self.venv.learner_index]
        penalty = self.weight * np.clip(1.0 - clearance / self.margin, 0.0, 1.0)
        return obs, (reward - penalty).astype(np.float32), dones, infos


__all__ = ["ClearancePenalty"]
