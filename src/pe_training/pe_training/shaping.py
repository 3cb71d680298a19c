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

:class:`CommandRatePenalty` subtracts ``weight * |(u_t - u_{t-1}) / u_max|^2`` per step,
where ``u = (v, omega)`` is the learner's applied command (the "action rate" term of
robot-learning rewards). The previous command is in the observation (``self`` block),
so the term is a function of the observed state and the action.

Both act on the reward PPO learns from; the episode returns that ``BatchVecEnv``
reports in ``info["episode"]`` (SB3's ``ep_rew_mean``) are the unshaped ones.

Why: with the entropy bonus that lifts the benchmark pursuers' capture, the policy's
mean omega flips between its bounds from step to step (2.7 rad/s per step on average,
``scripts/command_rate.py``) and the post-hoc filter intervenes on more than 5 % of its
steps; weight 0.01 keeps the steering smooth (0.07 rad/s) and the intervention under 5 %
for the shipped seed, while 0.05 and more cost capture (docs/training.md, training
notes).
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from pe_sim.envs.vec_env import BatchVecEnv


def _batch_vec_env(venv: VecEnv, wrapper: str) -> BatchVecEnv:
    inner = venv.unwrapped
    if not isinstance(inner, BatchVecEnv):
        raise TypeError(f"{wrapper} wraps a BatchVecEnv, got {type(inner).__name__}")
    return inner


class ClearancePenalty(VecEnvWrapper):
    """``reward -= weight * clip(1 - clearance / margin, 0, 1)`` for the learning robot."""

    def __init__(self, venv: VecEnv, margin: float, weight: float) -> None:
        self.batch = _batch_vec_env(venv, "ClearancePenalty")
        if margin <= 0.0:
            raise ValueError(f"margin must be > 0, got {margin}")
        super().__init__(venv)
        self.margin = float(margin)
        self.weight = float(weight)

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, reward, dones, infos = self.venv.step_wait()
        clearance = self.batch.last_step.result.clearance[:, self.batch.learner_index]
        penalty = self.weight * np.clip(1.0 - clearance / self.margin, 0.0, 1.0)
        return obs, (reward - penalty).astype(np.float32), dones, infos


class CommandRatePenalty(VecEnvWrapper):
    """``reward -= weight * sum_k ((u_k(t) - u_k(t-1)) / u_max_k)^2`` for the learning
    robot, ``u`` its applied (v m/s, omega rad/s) after any filter, ``u_max`` its bounds
    (max |v|, omega_max); ``weight`` in reward units per step. An episode starts from
    rest (``u = 0``), as the simulator's state does."""

    def __init__(self, venv: VecEnv, weight: float) -> None:
        self.batch = _batch_vec_env(venv, "CommandRatePenalty")
        super().__init__(venv)
        self.weight = float(weight)
        self._scale = self.batch.core.learner_bounds.scale[0]  # (2,): max |v| m/s, omega_max rad/s
        if not np.all(self._scale > 0.0):
            raise ValueError(f"CommandRatePenalty needs non-zero command bounds, got {self._scale}")

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        sim, li = self.batch.sim, self.batch.learner_index
        previous = sim.velocity[:, li].copy()
        obs, reward, dones, infos = self.venv.step_wait()
        result = self.batch.last_step.result
        applied = sim.velocity[:, li].copy()
        applied[result.done] = result.final_velocity[:, li]  # finished episodes were reset
        change = (applied - previous) / self._scale
        penalty = self.weight * np.einsum("bk,bk->b", change, change)
        return obs, (reward - penalty).astype(np.float32), dones, infos


__all__ = ["ClearancePenalty", "CommandRatePenalty"]
