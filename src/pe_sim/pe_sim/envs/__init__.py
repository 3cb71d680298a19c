"""RL environments over the batch simulator (all of them are ``BatchSim`` underneath).

* :class:`PursuitEvasionEnv` (Gymnasium, one learner, B = 1), registered as
  the ids in :data:`ENV_IDS` (``gymnasium.make("PursuitEvasion-v0")``).
* :class:`~pe_sim.envs.vec_env.BatchVecEnv` (SB3 VecEnv, one learner, B envs in
  one batched call per step).
* :class:`~pe_sim.envs.parallel.PursuitEvasionParallelEnv` (PettingZoo, every
  robot an agent, B = 1).
* :mod:`pe_sim.envs.actions`: the normalised action convention.

``BatchVecEnv`` (imports SB3/torch) and ``PursuitEvasionParallelEnv`` are
imported lazily on first access.
"""

from __future__ import annotations

from typing import Any

import gymnasium

from pe_sim.envs.actions import CommandBounds, to_action, to_command
from pe_sim.envs.core import LearnerBatch, PolicyController, resolve_controllers
from pe_sim.envs.single import PursuitEvasionEnv

#: Registered Gymnasium ids -> constructor kwargs (the scenario is loaded at ``make`` time).
ENV_IDS: dict[str, dict[str, Any]] = {
    # The research prototype's setup: pursuer vs the random evader.
    "PursuitEvasion-v0": {"scenario": "seed_1v1_2obs", "role": "pursuer", "opponent": "random"},
    # The benchmark: pursuer vs the fleeing evader, and an evader vs pure pursuit.
    "PursuitEvasion-Flee-v0": {"scenario": "bench_1v1_flee", "role": "pursuer", "opponent": "flee"},
    "PursuitEvasion-Evader-v0": {"scenario": "bench_1v1_flee", "role": "evader",
                                 "opponent": "pure_pursuit"},
    # Two pursuers (one learning, one pure pursuit) vs a fleeing evader.
    "PursuitEvasion-2v1-v0": {"scenario": "pursuit_2v1", "role": "pursuer", "opponent": "flee",
                              "teammate": "pure_pursuit"},
}

for _id, _kwargs in ENV_IDS.items():
    if _id not in gymnasium.registry:
        gymnasium.register(id=_id, entry_point="pe_sim.envs.single:PursuitEvasionEnv", kwargs=_kwargs)


def __getattr__(name: str) -> Any:
    if name == "BatchVecEnv":
        from pe_sim.envs.vec_env import BatchVecEnv

        return BatchVecEnv
    if name == "PursuitEvasionParallelEnv":
        from pe_sim.envs.parallel import PursuitEvasionParallelEnv

        return PursuitEvasionParallelEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENV_IDS", "BatchVecEnv", "CommandBounds", "LearnerBatch", "PolicyController",
    "PursuitEvasionEnv", "PursuitEvasionParallelEnv", "resolve_controllers", "to_action", "to_command",
]
