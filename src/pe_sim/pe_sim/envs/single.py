"""The Gymnasium environment: one learning robot against scripted (or any
controller-driven) opponents and teammates.

It is :class:`~pe_sim.envs.core.LearnerBatch` with B = 1, so an episode here is
identical to the same-seed episode of the batch VecEnv. Observations are the
learner's ego observation (:mod:`pe_sim.observation`), actions the normalised
convention of :mod:`pe_sim.envs.actions`, rewards the simulator's for the
learner (zero-sum game terms + its contact penalty, minus any filter correction
penalty). Episodes end by capture (``terminated``) or the scenario's time limit
(``truncated``; no extra ``TimeLimit`` wrapper is needed).

Seeding: ``reset(seed=s)`` plays episode ``s`` (a pure function of ``s``); later
``reset()`` calls play ``s + 1, s + 2, ...``. The first unseeded reset draws
its episode seed from the env's ``np_random``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pe_sim.envs.actions import ACTION_HIGH, ACTION_LOW
from pe_sim.envs.core import (
    INTERVENTION_THRESHOLD,
    ActionFilter,
    ControllerSpec,
    LearnerBatch,
    ScenarioLike,
    observation_bound,
    resolve_controllers,
    resolve_learner,
    resolve_scenario,
)
from pe_sim.envs.render import render_frame
from pe_sim.observation import ObservationSpec


class PursuitEvasionEnv(gym.Env[np.ndarray, np.ndarray]):
    """One learning robot (``role=`` picks the first robot of that role, ``robot=`` one by
    name) vs controller-driven others (``opponent=``/``teammate=``: a scripted kind, a
    controller ``callable(WorldView) -> (1, 2)`` commands, or a mapping robot name -> either;
    default :data:`~pe_sim.envs.core.DEFAULT_KIND` by role).

    ``info`` of every step: ``captured`` (bool), ``violation``/``contact`` (robot name ->
    bool), ``clearance`` (robot name -> least body clearance this step, m),
    ``pursuer_distance`` (m), ``episode_seed``, ``step``; with an action filter also
    ``correction`` (the learner's scaled |u_safe - u_nom|), ``intervened`` and
    ``filter_stats``; on the last step ``is_success`` (capture for a pursuer, no capture for
    an evader). ``reset`` returns ``episode_seed`` in its info.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        scenario: ScenarioLike = "seed_1v1_2obs",
        *,
        role: str | None = None,
        robot: str | None = None,
        opponent: ControllerSpec = None,
        teammate: ControllerSpec = None,
        k_obstacles: int = 4,
        action_filter: ActionFilter | None = None,
        filter_robots: str = "all",
        correction_penalty: float = 0.0,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            modes = self.metadata["render_modes"]
            raise ValueError(f"render_mode must be one of {modes}, got {render_mode!r}")
        self.scenario = resolve_scenario(scenario)
        self.learner_index = resolve_learner(self.scenario, role, robot)
        self.robot = self.scenario.robots[self.learner_index]
        controllers = resolve_controllers(self.scenario, [self.learner_index], opponent, teammate)
        self.core = LearnerBatch(
            self.scenario, [self.learner_index], controllers, num_envs=1, seed=0,
            k_obstacles=k_obstacles, action_filter=action_filter, filter_robots=filter_robots,
            correction_penalty=correction_penalty)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.scenario.dt)}
        bound = observation_bound(self.scenario)
        dim = self.observation_spec.dim
        self.observation_space = spaces.Box(-bound, bound, (dim,), np.float32)
        self.action_space = spaces.Box(ACTION_LOW, ACTION_HIGH, (2,), np.float32)
        self._names = [r.name for r in self.scenario.robots]
        self._seeded = False

    @property
    def observation_spec(self) -> ObservationSpec:
        """The spec of this env's observations (carry it with a trained policy)."""
        return self.core.builders[0].spec

    @property
    def sim(self):
        """The underlying :class:`~pe_sim.batch.BatchSim` (B = 1)."""
        return self.core.sim

    def set_opponent(self, opponent: ControllerSpec) -> None:
        """Replace the opponents' controllers (kind, controller or name -> either)."""
        self.core.set_opponent(opponent)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and not self._seeded:
            seed = int(self.np_random.integers(0, 2**31 - 1))
        self._seeded = True
        self.core.reset(seed)
        return self.core.observe()[0], {"episode_seed": int(self.sim.episode_seed[0])}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        out = self.core.step(np.asarray(action).reshape(1, 1, 2), auto_reset=False)
        r = out.result
        terminated, truncated = bool(r.terminated[0]), bool(r.truncated[0])
        names = self._names
        info: dict[str, Any] = {
            "captured": terminated,
            "violation": dict(zip(names, r.violation[0].tolist(), strict=True)),
            "contact": dict(zip(names, r.contact[0].tolist(), strict=True)),
            "clearance": dict(zip(names, r.clearance[0].tolist(), strict=True)),
            "pursuer_distance": float(r.pursuer_distance[0]),
            "episode_seed": int(self.sim.episode_seed[0]),
            "step": int(self.sim.step_count[0]),
        }
        if out.correction is not None:
            correction = float(out.correction[0, 0])
            info["correction"] = correction
            info["intervened"] = correction > INTERVENTION_THRESHOLD
            info["filter_stats"] = out.filter_stats
        if terminated or truncated:
            info["is_success"] = terminated if self.robot.role == "pursuer" else not terminated
        return self.core.observe()[0], float(out.reward[0, 0]), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        s = self.sim
        return render_frame(self.scenario, s.pose[0], s.obstacles[0], int(s.n_obstacles[0]))
