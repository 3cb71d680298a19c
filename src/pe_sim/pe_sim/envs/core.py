"""What every environment here shares: a :class:`~pe_sim.batch.BatchSim` whose
*learning* robots take normalised actions and whose other robots are driven by
controllers, with an optional action filter in the loop.

The Gymnasium env (B = 1, one learner), the SB3 VecEnv (B envs, one learner)
and the PettingZoo env (B = 1, every robot learns) are thin adapters over
:class:`LearnerBatch`, so a batch of B environments plays exactly the B single
episodes with the same seeds.

A *controller* is any ``callable(WorldView) -> (B, 2)`` returning physical
commands (v m/s, omega rad/s) for one robot for the whole batch: a scripted
kind (:mod:`pe_sim.scripted`), a learned policy wrapped by
:class:`PolicyController`, or anything else vectorised over the batch. It is
called once per step, before the step, on views of the simulator's live arrays
(no copies: it must not write to them).

An *action filter* is any ``callable(pose (B,N,3), u_nom (B,N,2), obstacles
(B,M,3), n_obstacles (B,)) -> (u_safe (B,N,2), stats)`` (the signature of
``pe_safety_filter.filter.BatchSafetyFilter.filter``; it gets the live pose and
obstacle arrays, read-only by contract, and its own copy of ``u_nom``, the
learners' part clipped to their bounds); its correction of each
learner is measured as ``|(u_safe - u_nom) / scale|`` (Euclidean norm of the
difference with each component divided by its bound, see
:attr:`CommandBounds.scale`) and ``correction_penalty`` times it is subtracted
from that learner's reward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

from pe_sim.batch import BatchSim, StepResult
from pe_sim.envs.actions import CommandBounds, to_command
from pe_sim.observation import ObservationBuilder, ObservationSpec
from pe_sim.scenario import Scenario, load_scenario, parse_scenario
from pe_sim.scripted import DEFAULT_KIND, WorldView, make_scripted

#: A non-learning robot's policy: commands (B, 2) for a batch of world states. A controller
#: may also have ``gains(view) -> (B, G) | None``: the class-K gains (1/s, the filter's
#: constraint order, NaN where the filter's default applies) its robot's filter is to use,
#: as a BarrierNet policy has.
Controller = Callable[[WorldView], np.ndarray]
#: ``(pose, u_nom, obstacles, n_obstacles) -> (u_safe, stats)``; called with
#: ``robot_gains={robot index: gains (B, G)}`` when some controller has gains.
ActionFilter = Callable[..., tuple[np.ndarray, Any]]
ControllerSpec = str | Controller | Mapping[str, str | Controller] | None
ScenarioLike = str | Path | Scenario | Mapping[str, Any]

#: |u_safe - u_nom| (scaled) above this counts as an intervention (docs/metrics.md).
INTERVENTION_THRESHOLD = 1e-3
FILTER_SCOPES = ("all", "learners")


def resolve_scenario(scenario: ScenarioLike) -> Scenario:
    """A :class:`Scenario` from itself, a config name/path, or a plain mapping."""
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, Mapping):
        return parse_scenario(dict(scenario))
    return load_scenario(scenario)


def resolve_learner(scenario: Scenario, role: str | None = None, robot: str | None = None) -> int:
    """Index of the learning robot: by name, else the first robot of ``role``."""
    if robot is not None:
        index = scenario.robot_index(robot)
        if role is not None and scenario.robots[index].role != role:
            raise ValueError(f"robot {robot!r} is a {scenario.robots[index].role}, not a {role}")
        return index
    role = role or "pursuer"
    candidates = scenario.indices(role)
    if not candidates:
        raise ValueError(f"scenario '{scenario.name}' has no robot with role {role!r}")
    return candidates[0]


def _controller_for(value: str | Controller, scenario: Scenario, index: int) -> Controller:
    return make_scripted(value, scenario, index) if isinstance(value, str) else value


def resolve_controllers(
    scenario: Scenario,
    learners: Sequence[int],
    opponent: ControllerSpec = None,
    teammate: ControllerSpec = None,
) -> dict[int, Controller]:
    """Controllers of every non-learning robot, by robot index.

    Opponents are the robots whose role differs from the (first) learner's,
    teammates the other robots of its role. Each of ``opponent``/``teammate``
    is ``None`` (each robot runs :data:`DEFAULT_KIND` of its role), a scripted
    kind, one controller (only when exactly one robot is in that group), or a
    mapping robot name -> kind or controller (unnamed robots get the default).
    """
    learners = list(learners)
    if not learners:
        raise ValueError("need at least one learning robot")
    role = scenario.robots[learners[0]].role
    groups: dict[str, list[int]] = {"opponent": [], "teammate": []}
    for i, r in enumerate(scenario.robots):
        if i not in learners:
            groups["opponent" if r.role != role else "teammate"].append(i)
    out: dict[int, Controller] = {}
    for group, spec in (("opponent", opponent), ("teammate", teammate)):
        members = groups[group]
        if isinstance(spec, Mapping):
            names = {scenario.robots[i].name for i in members}
            unknown = set(spec) - names
            if unknown:
                raise ValueError(f"{group} controllers for unknown or learning robots {sorted(unknown)}; "
                                 f"{group}s: {sorted(names)}")
        elif callable(spec) and len(members) > 1:
            names = [scenario.robots[i].name for i in members]
            raise ValueError(f"one {group} controller given for {len(members)} robots {names}; "
                             "pass a mapping name -> controller")
        for i in members:
            robot = scenario.robots[i]
            if spec is None:
                value: str | Controller = DEFAULT_KIND[robot.role]
            elif isinstance(spec, Mapping):
                value = spec.get(robot.name, DEFAULT_KIND[robot.role])
            else:
                value = spec
            out[i] = _controller_for(value, scenario, i)
    return out


class PolicyController:
    """A learned policy as a controller for robot ``robot_index``: builds that robot's
    observations for the whole batch, calls ``policy(obs (B, dim) float32) -> actions
    (B, 2)`` in the normalised convention once, and maps them to commands.

    ``spec``, when given (the spec the policy was trained with), must equal the spec
    built here, else :class:`~pe_sim.observation.ObservationSpecMismatch`. For an SB3
    model: ``PolicyController(lambda o: model.predict(o, deterministic=True)[0], ...)``.
    """

    def __init__(
        self,
        policy: Callable[[np.ndarray], np.ndarray],
        scenario: Scenario,
        robot_index: int,
        *,
        k_obstacles: int = 4,
        spec: ObservationSpec | None = None,
    ) -> None:
        self.policy = policy
        self.robot_index = robot_index
        self.builder = ObservationBuilder(scenario, robot_index, k_obstacles)
        if spec is not None:
            spec.check_compatible(self.builder.spec)
        self.bounds = CommandBounds.of(scenario.robots[robot_index])

    def __call__(self, view: WorldView) -> np.ndarray:
        obs = self.builder.build(view.pose, view.velocity, view.obstacles, view.n_obstacles)
        return to_command(np.asarray(self.policy(obs)).reshape(len(obs), 2), self.bounds)


def observation_bound(scenario: Scenario) -> float:
    """A bound on |every observation component|: lengths are at most the diagonal of
    the box holding the arena and the fixed obstacles, divided by the length scale;
    the unitless parts are within [-1, 1]. Used for the Box observation spaces."""
    ext_x, ext_y = scenario.half_width, scenario.half_height
    for x, y, r in scenario.obstacles.fixed:
        ext_x, ext_y = max(ext_x, abs(x) + r), max(ext_y, abs(y) + r)
    length_scale = scenario.observation_length_scale
    return float(math.ceil(2.0 * math.hypot(ext_x, ext_y) / length_scale + 1.0))


@dataclass
class BatchStep:
    """One step of a :class:`LearnerBatch` (B envs, L learners)."""

    result: StepResult               # the simulator's report (final_* of finished episodes)
    reward: np.ndarray               # (B, L) float64: sim reward - correction_penalty * correction
    correction: np.ndarray | None    # (B, L) float64 scaled |u_safe - u_nom|, None without filter
    filter_stats: Any = None         # what the action filter returned next to u_safe


@numba.njit(cache=True)
def _learner_commands(actions, learners, low, high, cmd):
    """``cmd[:, learners[l]]`` = :func:`~pe_sim.envs.actions.to_command` of ``actions[:, l]``
    (clipped to [-1, 1], mapped linearly onto [low[l], high[l]]) in one pass."""
    for b in range(actions.shape[0]):
        for j in range(learners.shape[0]):
            for d in range(2):
                a = float(actions[b, j, d])
                if a > 1.0:  # as np.clip: NaN passes through (the simulator stops on it)
                    a = 1.0
                elif a < -1.0:
                    a = -1.0
                cmd[b, learners[j], d] = low[j, d] + 0.5 * (a + 1.0) * (high[j, d] - low[j, d])


class LearnerBatch:
    """B episodes of ``scenario`` where robots ``learners`` take normalised actions and
    the others are driven by ``controllers`` (index -> controller).

    ``filter_robots`` chooses whose commands the action filter may change: ``"all"``
    (every robot's, the default) or ``"learners"`` (the filter sees every robot but
    only the learners' filtered commands are used)."""

    def __init__(
        self,
        scenario: Scenario,
        learners: Sequence[int],
        controllers: Mapping[int, Controller],
        *,
        num_envs: int = 1,
        seed: int = 0,
        k_obstacles: int = 4,
        action_filter: ActionFilter | None = None,
        filter_robots: str = "all",
        correction_penalty: float = 0.0,
    ) -> None:
        if filter_robots not in FILTER_SCOPES:
            raise ValueError(f"filter_robots must be one of {FILTER_SCOPES}, got {filter_robots!r}")
        missing = set(range(scenario.num_robots)) - set(learners) - set(controllers)
        if missing:
            raise ValueError(f"robots {sorted(missing)} have neither a learner nor a controller")
        if set(learners) & set(controllers):
            raise ValueError(f"robots {sorted(set(learners) & set(controllers))} are learners and have "
                             "a controller")
        self.scenario = scenario
        self.learners = np.array(learners, dtype=np.int64)
        self.controllers = dict(controllers)
        self.sim = BatchSim(scenario, num_envs, seed)
        self.view = WorldView.of(self.sim)
        self.builders = [ObservationBuilder(scenario, int(i), k_obstacles) for i in self.learners]
        self.learner_bounds = CommandBounds.of([scenario.robots[i] for i in self.learners])
        self._learner_scale = self.learner_bounds.scale                     # (L, 2)
        self.action_filter = action_filter
        self.filter_robots = filter_robots
        self.correction_penalty = float(correction_penalty)
        self._commands = np.zeros((num_envs, scenario.num_robots, 2))

    @property
    def num_envs(self) -> int:
        return self.sim.num_envs

    def reset(self, seed: int | None = None) -> None:
        """Episodes ``seed .. seed + B - 1`` (next unused seeds when None)."""
        self.sim.reset(seed)

    def set_opponent(self, opponent: ControllerSpec) -> None:
        """Replace the opponents' controllers (as ``opponent=`` of :func:`resolve_controllers`);
        e.g. swap in a frozen policy from a self-play pool between rollouts."""
        self._replace_group(opponent, teammates=False)

    def set_teammate(self, teammate: ControllerSpec) -> None:
        """Replace the non-learning teammates' controllers (as ``teammate=`` of
        :func:`resolve_controllers`); e.g. the learner's own latest snapshot in self-play."""
        self._replace_group(teammate, teammates=True)

    def _replace_group(self, spec: ControllerSpec, teammates: bool) -> None:
        role = self.scenario.robots[int(self.learners[0])].role
        opponent, teammate = (None, spec) if teammates else (spec, None)
        new = resolve_controllers(self.scenario, self.learners.tolist(), opponent, teammate)
        for i, controller in new.items():
            if (self.scenario.robots[i].role == role) == teammates:
                self.controllers[i] = controller

    def observe(self, learner: int = 0, out: np.ndarray | None = None) -> np.ndarray:
        """Observations (B, dim) float32 of learner ``learner`` (position in ``learners``)."""
        s = self.sim
        return self.builders[learner].build(s.pose, s.velocity, s.obstacles, s.n_obstacles, out)

    def observe_final(self, result: StepResult, learner: int = 0) -> np.ndarray:
        """Observations (D, dim) of learner ``learner`` in the final states of the
        episodes that ended in ``result`` (rows in ``np.flatnonzero(result.done)`` order)."""
        return self.builders[learner].build(result.final_pose, result.final_velocity,
                                            result.final_obstacles, result.final_n_obstacles)

    def nominal_commands(self, actions: np.ndarray) -> np.ndarray:
        """Commands (B, N, 2) before filtering: learners' actions (B, L, 2) mapped to
        physical units, every other robot's from its controller (one call each)."""
        cmd = self._commands
        actions = np.asarray(actions)
        if actions.dtype.kind != "f":
            actions = actions.astype(np.float64)
        _learner_commands(actions.reshape(cmd.shape[0], len(self.learners), 2), self.learners,
                          self.learner_bounds.low, self.learner_bounds.high, cmd)
        for i, controller in self.controllers.items():
            cmd[:, i] = controller(self.view)
        return cmd

    def controller_gains(self) -> dict[int, np.ndarray]:
        """The filter gains of the controllers that choose their own (robot index -> (B, G))."""
        out = {}
        for i, controller in self.controllers.items():
            gains = getattr(controller, "gains", None)
            g = gains(self.view) if callable(gains) else None
            if g is not None:
                out[i] = g
        return out

    def step(self, actions: np.ndarray, auto_reset: bool = True) -> BatchStep:
        """Advance all B episodes with the learners' normalised actions (B, L, 2)."""
        u_nom = self.nominal_commands(actions)
        correction, stats = None, None
        if self.action_filter is not None:
            s = self.sim
            robot_gains = self.controller_gains()
            extra = {"robot_gains": robot_gains} if robot_gains else {}
            u_safe, stats = self.action_filter(s.pose, u_nom.copy(), s.obstacles, s.n_obstacles, **extra)
            u_safe = np.asarray(u_safe, dtype=np.float64)
            diff = (u_safe[:, self.learners] - u_nom[:, self.learners]) / self._learner_scale
            correction = np.sqrt(np.einsum("bld,bld->bl", diff, diff))
            if self.filter_robots == "all":
                u_nom = u_safe
            else:
                u_nom = u_nom.copy()
                u_nom[:, self.learners] = u_safe[:, self.learners]
        result = self.sim.step(u_nom, auto_reset=auto_reset)
        reward = result.reward[:, self.learners]
        if correction is not None and self.correction_penalty:
            reward = reward - self.correction_penalty * correction
        return BatchStep(result=result, reward=reward, correction=correction, filter_stats=stats)


__all__ = [
    "DEFAULT_KIND", "INTERVENTION_THRESHOLD", "ActionFilter", "BatchStep", "Controller",
    "ControllerSpec", "LearnerBatch", "PolicyController", "ScenarioLike", "observation_bound",
    "resolve_controllers", "resolve_learner", "resolve_scenario",
]
