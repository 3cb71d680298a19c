"""Episode recordings: the poses of one episode step by step, for plots and replays.

A recording holds, for one episode of a scenario: the robots (names, roles,
radii), the obstacles of that episode, the poses before the first step and
after every step, the applied commands, the per-step safety-violation flags of
each robot, and how it ended (capture step or time limit). It is saved as a
compressed ``.npz`` file (arrays plus one JSON string of metadata):

* ``pose``        (T + 1, N, 3) float64: x, y, theta; row 0 is the start state.
* ``command``     (T, N, 2) float64: the (v, omega) applied in each step.
* ``violation``   (T, N) bool: robot's body overlapped an obstacle/teammate or
  left the arena at some time within step t (step t is the move from row t to
  row t + 1).
* ``contact_pose`` (T, N, 3) float64 (optional; recordings made before it was
  added lack it): the pose at the least clearance within step t, on the
  commanded arc before any push-out -- where an overlap is visible even when the
  recorded end pose was pushed back to touching.
* ``obstacles``   (M, 3) float64: centre x, y and radius of the episode's obstacles.
* ``nominal_command`` (T, N, 2) float64, optional: the policies' commands before the
  safety filter (equal to ``command`` for unfiltered robots).
* ``correction``  (T, N) float64, optional: the filter's correction size in step t
  (inf-norm of (dv / v_max, domega / omega_max); 0 for unfiltered robots).
* ``intervened``  (T, N) bool, optional: the filter changed the command in step t
  (correction > 1e-3, as in :mod:`pe_sim.metrics`).
* ``meta``        JSON: format, scenario name and ``Scenario.to_dict()``, seed,
  robot names/roles/radii, policy names, ``capture_step`` (1-based number of the
  step after which capture held, or null) and ``steps``.

:class:`EpisodeRecorder` records chosen environments of a running
:class:`~pe_sim.batch.BatchSim` (one episode each, the one playing when
recording begins); :func:`simulate_episode` plays one seeded episode with
scripted robots and returns its recording.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pe_sim.scenario import Scenario

FORMAT = "pe_sim.episode/1"


@dataclass
class EpisodeLog:
    """One recorded episode (see the module docstring for the array layout)."""

    scenario_name: str
    seed: int
    robot_names: list[str]
    robot_roles: list[str]
    robot_radii: list[float]
    arena: tuple[float, float]          # width, height (m), centred at the origin
    dt: float
    capture_radius: float
    obstacles: np.ndarray               # (M, 3)
    pose: np.ndarray                    # (T + 1, N, 3)
    command: np.ndarray                 # (T, N, 2)
    violation: np.ndarray               # (T, N) bool
    capture_step: int | None = None
    contact_pose: np.ndarray | None = None  # (T, N, 3), see the module docstring
    policies: dict[str, str] = field(default_factory=dict)
    scenario: dict[str, Any] = field(default_factory=dict)
    nominal_command: np.ndarray | None = None   # (T, N, 2), before the filter
    correction: np.ndarray | None = None        # (T, N)
    intervened: np.ndarray | None = None        # (T, N) bool

    @property
    def filter_recorded(self) -> bool:
        """Whether the filter's nominal commands and corrections are in this recording."""
        return self.intervened is not None

    def intervention_steps(self, robot: int) -> np.ndarray:
        """1-based step numbers in which the filter corrected ``robot``'s command."""
        if self.intervened is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.intervened[:, robot]) + 1

    @property
    def steps(self) -> int:
        return int(self.command.shape[0])

    @property
    def captured(self) -> bool:
        return self.capture_step is not None

    def violation_steps(self, robot: int) -> np.ndarray:
        """1-based step numbers after which ``robot`` was in violation."""
        return np.flatnonzero(self.violation[:, robot]) + 1

    def meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "scenario_name": self.scenario_name, "seed": self.seed,
            "robot_names": self.robot_names, "robot_roles": self.robot_roles,
            "robot_radii": self.robot_radii, "arena": list(self.arena), "dt": self.dt,
            "capture_radius": self.capture_radius, "capture_step": self.capture_step,
            "steps": self.steps, "policies": self.policies, "scenario": self.scenario,
        }

    def save(self, path: str | Path) -> Path:
        """Write the recording as a compressed ``.npz`` (suffix added if missing)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        optional = {key: value for key, value in (
            ("contact_pose", self.contact_pose), ("nominal_command", self.nominal_command),
            ("correction", self.correction), ("intervened", self.intervened)) if value is not None}
        np.savez_compressed(path, pose=self.pose, command=self.command,
                            violation=self.violation, obstacles=self.obstacles,
                            meta=np.array(json.dumps(self.meta())), **optional)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EpisodeLog:
        with np.load(path, allow_pickle=False) as data:
            def optional(key: str, dtype) -> np.ndarray | None:
                return np.array(data[key], dtype=dtype) if key in data.files else None

            meta = json.loads(str(data["meta"]))
            if meta.get("format") != FORMAT:
                raise ValueError(f"{path}: not an episode recording of format {FORMAT!r} "
                                 f"(found {meta.get('format')!r})")
            return cls(
                scenario_name=meta["scenario_name"], seed=int(meta["seed"]),
                robot_names=list(meta["robot_names"]), robot_roles=list(meta["robot_roles"]),
                robot_radii=[float(r) for r in meta["robot_radii"]],
                arena=(float(meta["arena"][0]), float(meta["arena"][1])), dt=float(meta["dt"]),
                capture_radius=float(meta["capture_radius"]),
                obstacles=np.array(data["obstacles"], dtype=np.float64).reshape(-1, 3),
                pose=np.array(data["pose"], dtype=np.float64),
                command=np.array(data["command"], dtype=np.float64),
                violation=np.array(data["violation"], dtype=bool),
                capture_step=meta["capture_step"], policies=dict(meta.get("policies", {})),
                scenario=dict(meta.get("scenario", {})),
                contact_pose=optional("contact_pose", np.float64),
                nominal_command=optional("nominal_command", np.float64),
                correction=optional("correction", np.float64), intervened=optional("intervened", bool),
            )


class EpisodeRecorder:
    """Records the current episode of chosen environments of a ``BatchSim``.

    Call :meth:`begin` once the episodes to record are in place (after a reset),
    then :meth:`record` with every ``StepResult``; an environment's recording
    closes when its episode ends (the auto-reset episode after it is not
    recorded). ``finished`` is true once every recording is closed::

        rec = EpisodeRecorder(sim, envs=[0, 5])
        rec.begin()
        while not rec.finished:
            rec.record(sim.step(actions(sim)))
        rec.records[0].save("episode.npz")
    """

    def __init__(self, sim, envs=(0,), policies: dict[str, str] | None = None) -> None:
        self.sim = sim
        self.envs = [int(e) for e in envs]
        if not self.envs:
            raise ValueError("no environments to record")
        for e in self.envs:
            if not 0 <= e < sim.num_envs:
                raise ValueError(f"env index {e} outside 0..{sim.num_envs - 1}")
        self.policies = dict(policies or {})
        self._open: dict[int, dict[str, Any]] = {}
        self._done: dict[int, EpisodeLog] = {}

    def begin(self) -> None:
        """Start recording the episode now playing in each chosen environment."""
        sim = self.sim
        self._done.clear()
        self._open = {
            e: {"seed": int(sim.episode_seed[e]),
                "obstacles": sim.obstacles[e, : sim.n_obstacles[e]].copy(),
                "pose": [sim.pose[e].copy()], "command": [], "violation": [], "contact_pose": []}
            for e in self.envs
        }

    @property
    def finished(self) -> bool:
        return not self._open

    def record(self, result) -> None:
        """Append one step (``result`` is the ``StepResult`` of ``sim.step``)."""
        sim = self.sim
        done_rows = {int(b): k for k, b in enumerate(np.flatnonzero(result.done))}
        for e in list(self._open):
            rec = self._open[e]
            if e in done_rows:
                k = done_rows[e]
                rec["pose"].append(result.final_pose[k].copy())
                rec["command"].append(result.final_velocity[k].copy())
            else:
                rec["pose"].append(sim.pose[e].copy())
                rec["command"].append(sim.velocity[e].copy())
            rec["violation"].append(result.violation[e].copy())
            if result.contact_pose is not None:
                rec["contact_pose"].append(result.contact_pose[e].copy())
            if e in done_rows:
                steps = len(rec["command"])
                capture = steps if bool(result.terminated[e]) else None
                self._done[e] = self._close(rec, capture)
                del self._open[e]

    def close(self) -> None:
        """Close the still-open recordings as they stand (no capture)."""
        for e in list(self._open):
            self._done[e] = self._close(self._open.pop(e), None)

    @property
    def records(self) -> list[EpisodeLog]:
        """Closed recordings, in the order of ``envs``."""
        return [self._done[e] for e in self.envs if e in self._done]

    def _close(self, rec: dict[str, Any], capture_step: int | None) -> EpisodeLog:
        sc: Scenario = self.sim.scenario
        n = sc.num_robots
        return EpisodeLog(
            scenario_name=sc.name, seed=rec["seed"],
            robot_names=[r.name for r in sc.robots], robot_roles=[r.role for r in sc.robots],
            robot_radii=[float(r.radius) for r in sc.robots],
            arena=(float(sc.arena_width), float(sc.arena_height)), dt=float(sc.dt),
            capture_radius=float(sc.capture_radius), obstacles=rec["obstacles"],
            pose=np.array(rec["pose"], dtype=np.float64).reshape(-1, n, 3),
            command=np.array(rec["command"], dtype=np.float64).reshape(-1, n, 2),
            violation=np.array(rec["violation"], dtype=bool).reshape(-1, n),
            capture_step=capture_step, policies=dict(self.policies), scenario=sc.to_dict(),
            contact_pose=(np.array(rec["contact_pose"], dtype=np.float64).reshape(-1, n, 3)
                          if len(rec["contact_pose"]) == len(rec["command"]) else None),
        )


def simulate_episode(scenario: Scenario, seed: int, pursuer: str = "pure_pursuit",
                     evader: str = "flee") -> EpisodeLog:
    """Play episode ``seed`` of ``scenario`` with scripted robots (``pursuer`` kind for
    every pursuer, ``evader`` kind for every evader) and return its recording."""
    from pe_sim.batch import BatchSim
    from pe_sim.scripted import WorldView, make_scripted

    sim = BatchSim(scenario, 1, seed=seed)
    kinds = [pursuer if r.role == "pursuer" else evader for r in scenario.robots]
    policies = [make_scripted(k, scenario, i) for i, k in enumerate(kinds)]
    rec = EpisodeRecorder(sim, [0], {r.name: k for r, k in zip(scenario.robots, kinds, strict=True)})
    rec.begin()
    while not rec.finished:
        view = WorldView.of(sim)
        actions = np.stack([p(view) for p in policies], axis=1)
        rec.record(sim.step(actions))
    return rec.records[0]


__all__ = ["FORMAT", "EpisodeLog", "EpisodeRecorder", "simulate_episode"]
