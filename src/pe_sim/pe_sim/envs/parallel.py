"""The PettingZoo parallel environment: every robot is an agent (named as in the
scenario), each with its own ego observation and normalised action.

It is :class:`~pe_sim.envs.core.LearnerBatch` with B = 1 and every robot a
learner, so it plays the same episodes (per seed) as the other environments.
Rewards are the simulator's per robot (zero-sum game terms, per-robot contact
penalty, minus any filter correction penalty). All agents finish together,
at capture (terminations) or at the time limit (truncations).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from pe_sim.envs.actions import ACTION_HIGH, ACTION_LOW
from pe_sim.envs.core import (
    INTERVENTION_THRESHOLD,
    ActionFilter,
    LearnerBatch,
    ScenarioLike,
    observation_bound,
    resolve_scenario,
)
from pe_sim.envs.render import render_frame
from pe_sim.observation import ObservationSpec


class PursuitEvasionParallelEnv(ParallelEnv):
    """All robots of ``scenario`` as agents. ``infos[agent]`` of every step: ``captured``,
    ``violation``, ``contact``, ``clearance`` (m) of that robot, ``episode_seed``, ``step``;
    with an action filter ``correction``/``intervened``; on the last step ``is_success``
    (capture for pursuers, no capture for evaders). ``reset(seed=s)`` plays episode ``s``;
    later unseeded resets ``s + 1, ...``; the first unseeded one draws a random seed."""

    metadata: ClassVar[dict[str, Any]] = {
        "name": "pursuit_evasion_v0", "render_modes": ["rgb_array"], "render_fps": 20,
        "is_parallelizable": True,
    }

    def __init__(
        self,
        scenario: ScenarioLike = "seed_1v1_2obs",
        *,
        k_obstacles: int = 4,
        action_filter: ActionFilter | None = None,
        correction_penalty: float = 0.0,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            modes = self.metadata["render_modes"]
            raise ValueError(f"render_mode must be one of {modes}, got {render_mode!r}")
        self.scenario = resolve_scenario(scenario)
        n = self.scenario.num_robots
        self.core = LearnerBatch(self.scenario, list(range(n)), {}, num_envs=1, seed=0,
                                 k_obstacles=k_obstacles, action_filter=action_filter,
                                 correction_penalty=correction_penalty)
        self.possible_agents = [r.name for r in self.scenario.robots]
        self.agents: list[str] = []
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.scenario.dt)}
        self._index = {name: i for i, name in enumerate(self.possible_agents)}
        bound = observation_bound(self.scenario)
        # Built once: PettingZoo wants the same space object per agent (for seeding).
        self._observation_spaces = {
            a: spaces.Box(-bound, bound, (self.observation_spec(a).dim,), np.float32)
            for a in self.possible_agents}
        self._action_spaces = {
            a: spaces.Box(ACTION_LOW, ACTION_HIGH, (2,), np.float32) for a in self.possible_agents}
        self._actions = np.zeros((1, n, 2))
        self._rng = np.random.default_rng()
        self._seeded = False

    def observation_spec(self, agent: str) -> ObservationSpec:
        return self.core.builders[self._index[agent]].spec

    def observation_space(self, agent: str) -> spaces.Box:
        """The agent's Box(dim,) float32 (the same object on every call)."""
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        """Box(-1, 1, (2,), float32), normalised (v, omega) (the same object on every call)."""
        return self._action_spaces[agent]

    @property
    def sim(self):
        """The underlying :class:`~pe_sim.batch.BatchSim` (B = 1)."""
        return self.core.sim

    def _observations(self) -> dict[str, np.ndarray]:
        return {a: self.core.observe(i)[0] for i, a in enumerate(self.possible_agents)}

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        if seed is None and not self._seeded:
            seed = int(self._rng.integers(0, 2**31 - 1))
        self._seeded = True
        self.core.reset(seed)
        self.agents = list(self.possible_agents)
        episode_seed = int(self.sim.episode_seed[0])
        return self._observations(), {a: {"episode_seed": episode_seed} for a in self.agents}

    def step(self, actions: dict[str, np.ndarray]) -> tuple[
        dict[str, np.ndarray], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]
    ]:
        missing = set(self.agents) - set(actions)
        if missing:
            raise KeyError(f"no action for agents {sorted(missing)}")
        for agent, action in actions.items():
            self._actions[0, self._index[agent]] = np.asarray(action).reshape(2)
        out = self.core.step(self._actions, auto_reset=False)
        r = out.result
        terminated, truncated = bool(r.terminated[0]), bool(r.truncated[0])
        episode_seed, step = int(self.sim.episode_seed[0]), int(self.sim.step_count[0])
        rewards, infos = {}, {}
        for i, agent in enumerate(self.possible_agents):
            rewards[agent] = float(out.reward[0, i])
            info: dict[str, Any] = {
                "captured": terminated, "violation": bool(r.violation[0, i]),
                "contact": bool(r.contact[0, i]), "clearance": float(r.clearance[0, i]),
                "episode_seed": episode_seed, "step": step,
            }
            if out.correction is not None:
                info["correction"] = float(out.correction[0, i])
                info["intervened"] = info["correction"] > INTERVENTION_THRESHOLD
            if terminated or truncated:
                pursuer = self.scenario.robots[i].role == "pursuer"
                info["is_success"] = terminated if pursuer else not terminated
            infos[agent] = info
        observations = self._observations()
        terminations = dict.fromkeys(self.possible_agents, terminated)
        truncations = dict.fromkeys(self.possible_agents, truncated)
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        s = self.sim
        return render_frame(self.scenario, s.pose[0], s.obstacles[0], int(s.n_obstacles[0]))

    def state(self) -> np.ndarray:
        """The global state, float64: poses (N, 3), last commands (N, 2) and the
        obstacle rows (M, 3), flattened in that order (world frame, SI units)."""
        s = self.sim
        return np.concatenate([s.pose[0].ravel(), s.velocity[0].ravel(), s.obstacles[0].ravel()])

    def close(self) -> None:
        pass
