"""The simulation node's logic, without ROS: episodes, stamps, gathering the robots'
commands and stepping the batch core with B = 1.

The ROS node (``pe_ros.sim_node``, executable ``pe_sim_node``) only
converts messages and calls a :class:`SimRunner`; everything that decides what
happens lives here, where a unit test can drive it.

Time and stamps. The state at ``tick`` has stamp ``t0_ns + tick * dt_ns``
(integer nanoseconds), so a stamp identifies a state. Episode ``k`` of a run
plays seed ``first_seed + k`` (``BatchSim.reset(seed)``, exactly as the
headless evaluation does). An episode's terminal state is not published (no
command answers it).

* lockstep (``episode_stride``): episode ``k`` starts at tick
  ``k * (max_steps + 1)``, so sim time jumps between episodes and a stamp alone
  tells its episode and step. Messages on different topics arrive in no
  guaranteed order; with this layout a node that sees the first state of an
  episode before its episode/obstacle messages knows it must wait for them
  (each carries ``stride_ns``, the episode's slot of sim time).
* real time: the next episode starts the tick after the terminal state (sim
  time is wall time); its start and obstacles are published a tick before
  its first state.

Stepping. Each robot's command for the current state is the latest command
received whose stamp equals the current state's stamp:

* lockstep: :meth:`SimRunner.ready` says when every robot's command (and every
  filtered robot's filter status) for the current stamp has arrived; after a
  timeout the node calls :meth:`SimRunner.step` anyway and robots without a
  command hold still (0, 0): a *miss*, counted per robot;
* real time: the node steps every dt with each robot's latest command,
  whatever state it answered (a command that does not answer the current state
  is a miss; one older than ``command_timeout`` is replaced by a stop).

Records. Each finished episode gives an :class:`~pe_sim.metrics.EpisodeRecord`
from the same :class:`~pe_sim.metrics.EpisodeAccumulator` as the headless
evaluation, fed with the filter statistics the filter nodes reported for each
step (robots whose status for a step did not arrive count no filter call).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pe_sim.batch import BatchSim, StepResult
from pe_sim.metrics import EpisodeAccumulator, EpisodeRecord, FilterStepStats
from pe_sim.scenario import Scenario

MODES = ("lockstep", "realtime")


@dataclass(frozen=True)
class EpisodeStart:
    index: int
    seed: int
    start_ns: int
    obstacles: np.ndarray  # (n, 3)
    stride_ns: int = 0     # the episode's slot of sim time (lockstep), 0: open-ended


@dataclass(frozen=True)
class EpisodeEnd:
    index: int
    seed: int
    end_ns: int
    record: EpisodeRecord
    final_pose: np.ndarray      # (N, 3)
    final_velocity: np.ndarray  # (N, 2)
    missed: np.ndarray          # (N,) commands missed in this episode


@dataclass(frozen=True)
class StepOutcome:
    result: StepResult
    missed: tuple[int, ...]          # robots that had no command for the state
    ended: EpisodeEnd | None = None
    started: EpisodeStart | None = None


class SimRunner:
    """Episodes ``first_seed .. first_seed + episodes - 1`` (``episodes`` 0: no end)
    of ``scenario``, one at a time."""

    def __init__(
        self,
        scenario: Scenario,
        first_seed: int,
        episodes: int = 0,
        filtered: Sequence[int] = (),
        policy_names: Sequence[str] = (),
        t0_ns: int = 0,
        command_timeout_s: float = 0.5,
        episode_stride: bool = False,
    ) -> None:
        if first_seed < 0 or episodes < 0:
            raise ValueError("first_seed and episodes must be >= 0")
        self.scenario = scenario
        self.n_robots = scenario.num_robots
        self.dt_ns = round(scenario.dt * 1e9)
        self.first_seed = int(first_seed)
        self.episodes = int(episodes)
        self.filtered = np.zeros(self.n_robots, dtype=bool)
        self.filtered[list(filtered)] = True
        self.command_timeout_ns = round(command_timeout_s * 1e9)
        self.sim = BatchSim(scenario, 1, seed=self.first_seed)
        self.accumulator = EpisodeAccumulator(scenario, 1, policy_names)
        self.t0_ns = int(t0_ns)
        self.stride_ticks = scenario.max_steps + 1 if episode_stride else 0
        self.tick = 0
        self.episode_index = 0
        self.episode_start_tick = 0
        self.finished = False
        self.steps_total = 0
        n = self.n_robots
        self._cmd = np.zeros((n, 2))
        self._cmd_stamp = np.full(n, -1, dtype=np.int64)
        self._status = np.zeros((n, 3))            # intervened, correction_size, backup
        self._status_stamp = np.full(n, -1, dtype=np.int64)
        self._actions = np.zeros((1, n, 2))
        self.missed_episode = np.zeros(n, dtype=np.int64)
        self.missed_total = np.zeros(n, dtype=np.int64)

    # -- the current state -----------------------------------------------------------------
    @property
    def stamp_ns(self) -> int:
        """Stamp of the current state."""
        return self.t0_ns + self.tick * self.dt_ns

    @property
    def pose(self) -> np.ndarray:
        """(N, 3) poses of the current state (a view)."""
        return self.sim.pose[0]

    @property
    def velocity(self) -> np.ndarray:
        """(N, 2) commands applied in the step that led to the current state (a view)."""
        return self.sim.velocity[0]

    @property
    def seed(self) -> int:
        return int(self.sim.episode_seed[0])

    def current_episode(self) -> EpisodeStart:
        n = int(self.sim.n_obstacles[0])
        return EpisodeStart(self.episode_index, self.seed, self.t0_ns + self.episode_start_tick * self.dt_ns,
                            self.sim.obstacles[0, :n].copy(), self.stride_ticks * self.dt_ns)

    # -- inputs ----------------------------------------------------------------------------
    def offer_command(self, robot: int, stamp_ns: int, v: float, omega: float) -> bool:
        """Take robot ``robot``'s command answering the state of ``stamp_ns``; returns True
        if it answers the current state. Commands older than the latest one are ignored."""
        if stamp_ns < self._cmd_stamp[robot]:
            return False
        self._cmd[robot, 0] = v
        self._cmd[robot, 1] = omega
        self._cmd_stamp[robot] = stamp_ns
        return stamp_ns == self.stamp_ns

    def offer_status(self, robot: int, stamp_ns: int, intervened: bool, correction_size: float,
                     backup: bool) -> bool:
        """Take robot ``robot``'s filter statistics for the command of ``stamp_ns``."""
        if stamp_ns < self._status_stamp[robot]:
            return False
        self._status[robot] = (float(intervened), correction_size, float(backup))
        self._status_stamp[robot] = stamp_ns
        return stamp_ns == self.stamp_ns

    def has_command(self, robot: int) -> bool:
        return self._cmd_stamp[robot] == self.stamp_ns

    def ready(self) -> bool:
        """Lockstep: every command and every filtered robot's status for the current state is in."""
        now = self.stamp_ns
        if not np.all(self._cmd_stamp == now):
            return False
        return bool(np.all((self._status_stamp == now) | ~self.filtered))

    def waiting_for(self) -> list[int]:
        now = self.stamp_ns
        return [i for i in range(self.n_robots)
                if self._cmd_stamp[i] != now or (self.filtered[i] and self._status_stamp[i] != now)]

    # -- stepping --------------------------------------------------------------------------
    def step(self, hold_missing: bool = True) -> StepOutcome:
        """Advance one step. Robots without a command for the current state hold still
        (``hold_missing``, lockstep) or keep their latest command unless it is older than
        the command timeout (real time); either way it counts as a miss."""
        if self.finished:
            raise RuntimeError("all episodes are done")
        now = self.stamp_ns
        answered = self._cmd_stamp == now
        missed = tuple(int(i) for i in np.flatnonzero(~answered))
        actions = self._actions[0]
        actions[:] = self._cmd
        for i in missed:
            if hold_missing or self._cmd_stamp[i] < 0 or now - self._cmd_stamp[i] > self.command_timeout_ns:
                actions[i] = 0.0
        self.missed_episode[list(missed)] += 1
        self.missed_total[list(missed)] += 1
        stats = None
        if self.filtered.any():
            got = self.filtered & (self._status_stamp == now)
            stats = FilterStepStats(filtered=got[None, :], intervened=(self._status[:, 0] > 0.5)[None, :],
                                    correction_size=self._status[:, 1][None, :].copy(),
                                    backup=(self._status[:, 2] > 0.5)[None, :])
        result = self.sim.step(self._actions, auto_reset=False)
        records = self.accumulator.add_step(result, stats)
        self.tick += 1
        self.steps_total += 1
        if not result.done[0]:
            return StepOutcome(result, missed)
        ended = EpisodeEnd(self.episode_index, int(result.final_seed[0]), self.stamp_ns, records[0],
                           result.final_pose[0].copy(), result.final_velocity[0].copy(),
                           self.missed_episode.copy())
        self.episode_index += 1
        self.missed_episode[:] = 0
        if self.episodes and self.episode_index >= self.episodes:
            self.finished = True
            return StepOutcome(result, missed, ended=ended)
        self.sim.reset(self.first_seed + self.episode_index)
        if self.stride_ticks:
            self.tick = self.episode_index * self.stride_ticks
        else:
            self.tick += 1  # the terminal state had its own tick
        self.episode_start_tick = self.tick
        return StepOutcome(result, missed, ended=ended, started=self.current_episode())

    def realtime_ticks_due(self, now_ns: int) -> int:
        """Real time: how many steps are due at ``now_ns`` (0 if early; > 1 after overruns)."""
        due = (now_ns - self.t0_ns + self.dt_ns // 2) // self.dt_ns
        return max(0, int(due - self.tick))


__all__ = ["MODES", "EpisodeEnd", "EpisodeStart", "SimRunner", "StepOutcome"]
