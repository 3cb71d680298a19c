"""Which inputs the safety-filter node filters together, and when it must stop instead.

The node (:mod:`pe_ros.filter_node`) hands every incoming message and every
watchdog tick to a gate and publishes what the gate decides; the gate never
touches ROS. Times come in as arguments: ``now`` is the node's ROS time in
integer nanoseconds (``None`` while sim time is on and no ``/clock`` has
arrived) and ``wall`` a monotonic clock in seconds (liveness). Both gates
return :class:`Decision` lists:

* :class:`Filter`: run the VCP-CBF filter on this nominal command with this
  state, obstacles and teammates, and publish the result with ``stamp``;
* :class:`Stop`: publish (0, 0) with ``stamp`` and ``reason``;
* :class:`Repeat`: publish again the answer already given to ``stamp``.

Two pairings, chosen by the node's ``pairing`` parameter:

:class:`LatestGate` (``latest``, real time; what a robot needs)
    Every nominal command is answered once, at once, with the newest state
    received (by arrival, so one odd stamp cannot shadow the states after it);
    its age is ``now`` minus its stamp. Older than ``max_state_age``, stamped
    more than ``future_tolerance`` ahead of ``now``, missing, or any teammate
    state likewise: a stop with that reason. The command's own stamp is not used
    for pairing (zero stamps and "now" stamps are fine). Nothing is ever
    replayed. Without nominal commands for ``nominal_timeout`` (wall) the
    watchdog publishes a stop every ``nominal_timeout`` (``nominal_timeout``).

:class:`StampGate` (``stamp``, lockstep evaluation; reproducible)
    A nominal command stamped ``s`` answers the state of stamp ``s``: it is
    filtered with the odometry of stamp ``s`` of this robot and its teammates
    and the obstacle set valid at ``s``; it waits for them, and with sim time for
    the first ``/clock`` (best effort: it may come after the first state), up to
    ``nominal_timeout`` (``pending``). Each state is answered once; a command for a state
    already answered gets that answer again (the sim resent the state because a
    command was lost) unless the state has meanwhile grown older than
    ``max_state_age``, which gives a stop. A state left unanswered for
    ``nominal_timeout`` gets a stop, and the node stays stopped until commands
    return; with no input at all it publishes a stop stamped ``now`` every
    ``nominal_timeout`` (``no_input``), never with a state's stamp.

Both gates refuse obstacles whose frame differs from the odometry's
(``frame_mismatch``) and, with sim time and no clock, everything (``no_clock``;
the stamp gate after waiting ``nominal_timeout`` for it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pe_ros.state import EpisodeBook, RobotState, StateTable

NS_PER_S = 1_000_000_000
PAIRINGS = ("latest", "stamp")

#: Why a stop was published instead of a filtered command (besides the filter's own
#: backup reasons, e.g. ``nonfinite_command``).
STOP_REASONS = {
    "no_clock": "use_sim_time is on and no /clock has arrived: ROS time is unknown",
    "missing_state": "no odometry of this robot (or of a teammate) has arrived",
    "stale_state": "the newest odometry is older than max_state_age",
    "future_state": "the odometry is stamped ahead of the node's clock by more than future_tolerance",
    "stale_teammate": "a teammate's newest odometry is older than max_state_age",
    "missing_obstacles": "no obstacle set valid at the state's stamp",
    "frame_mismatch": "obstacles and odometry are in different frames",
    "nominal_timeout": "no nominal command for nominal_timeout",
    "no_input": "neither states nor nominal commands for nominal_timeout",
}


@dataclass(frozen=True)
class Filter:
    """Filter ``u_nom`` with ``state`` (x, y, theta, v, omega), ``obstacles`` (n, 3) and
    teammates' states; publish with ``stamp``. ``age_s``: the state's age (s)."""

    stamp: int
    u_nom: tuple[float, float]
    state: RobotState
    obstacles: np.ndarray
    teammates: tuple[RobotState, ...]
    age_s: float


@dataclass(frozen=True)
class Stop:
    """Publish (0, 0) with ``stamp`` because of ``reason``; ``u_nom`` if a command was
    stopped; ``answers``: it answers the state (or command) of ``stamp``."""

    stamp: int
    reason: str
    u_nom: tuple[float, float] | None = None
    answers: bool = True
    age_s: float = math.nan


@dataclass(frozen=True)
class Repeat:
    """Publish again the answer given to ``stamp``."""

    stamp: int


Decision = Filter | Stop | Repeat


@dataclass(frozen=True)
class GateLimits:
    """Input limits of a gate (seconds)."""

    max_state_age: float
    nominal_timeout: float
    future_tolerance: float = 0.05

    def __post_init__(self) -> None:
        for name in ("max_state_age", "nominal_timeout", "future_tolerance"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")


class _Obstacles:
    """The obstacle sets and the frame they came in."""

    def __init__(self) -> None:
        self.book = EpisodeBook()
        self.frame: str | None = None

    def add(self, stamp: int | None, obstacles: np.ndarray, lifetime_ns: int, frame: str) -> None:
        self.book.add_obstacles(stamp, obstacles, lifetime_ns)
        self.frame = frame


class LatestGate:
    """Real-time pairing (see the module docstring)."""

    def __init__(self, robot: int, teammates: Sequence[int], limits: GateLimits) -> None:
        self.robot = robot
        self.teammates = tuple(teammates)
        self.limits = limits
        self._states: dict[int, tuple[int, RobotState]] = {}
        self._state_frame: str | None = None
        self._obstacles = _Obstacles()
        self._last_nominal_wall: float | None = None
        self._last_watchdog_stop = -math.inf
        self._watch_start: float | None = None

    # -- inputs -------------------------------------------------------------------------------
    def on_state(self, robot: int, stamp: int, state: RobotState, frame: str, now: int | None,
                 wall: float) -> list[Decision]:
        self._states[robot] = (stamp, state)
        if robot == self.robot:
            self._state_frame = frame
        return []

    def on_obstacles(self, stamp: int | None, obstacles: np.ndarray, lifetime_ns: int, frame: str,
                     now: int | None, wall: float) -> list[Decision]:
        # Real time: a set is valid from its arrival (its stamp may be the episode's).
        self._obstacles.add(None, obstacles, 0, frame)
        return []

    def on_nominal(self, stamp: int, v: float, omega: float, now: int | None,
                   wall: float) -> list[Decision]:
        self._last_nominal_wall = wall
        u_nom = (v, omega)
        if now is None:
            return [Stop(0, "no_clock", u_nom)]
        own = self._states.get(self.robot)
        if own is None:
            return [Stop(now, "missing_state", u_nom)]
        state_stamp, state = own
        age_s = (now - state_stamp) / NS_PER_S
        problem = self._age_problem(age_s, "stale_state")
        if problem:
            return [Stop(state_stamp if problem == "stale_state" else now, problem, u_nom, age_s=age_s)]
        mates = []
        for j in self.teammates:
            mate = self._states.get(j)
            if mate is None:
                return [Stop(state_stamp, "missing_state", u_nom, age_s=age_s)]
            problem = self._age_problem((now - mate[0]) / NS_PER_S, "stale_teammate")
            if problem:
                return [Stop(state_stamp, problem, u_nom, age_s=age_s)]
            mates.append(mate[1])
        obstacles = self._obstacles.book.obstacles_at(state_stamp)
        if obstacles is None:
            return [Stop(state_stamp, "missing_obstacles", u_nom, age_s=age_s)]
        if self._obstacles.frame is not None and self._obstacles.frame != self._state_frame:
            return [Stop(state_stamp, "frame_mismatch", u_nom, age_s=age_s)]
        # A state up to future_tolerance ahead of the clock counts as fresh (age 0).
        return [Filter(state_stamp, u_nom, state, obstacles, tuple(mates), max(age_s, 0.0))]

    def _age_problem(self, age_s: float, stale_reason: str) -> str | None:
        if age_s > self.limits.max_state_age:
            return stale_reason
        if age_s < -self.limits.future_tolerance:
            return "future_state"
        return None

    def on_tick(self, now: int | None, wall: float) -> list[Decision]:
        """Watchdog: a stop every ``nominal_timeout`` while nominal commands are missing."""
        if self._watch_start is None:
            self._watch_start = wall          # the first tick: the policy gets a timeout to start
        last_nominal = self._last_nominal_wall if self._last_nominal_wall is not None else self._watch_start
        if wall - max(last_nominal, self._last_watchdog_stop) <= self.limits.nominal_timeout:
            return []
        self._last_watchdog_stop = wall
        return [Stop(now or 0, "nominal_timeout" if now is not None else "no_clock", answers=False)]


class StampGate:
    """Lockstep pairing by stamp (see the module docstring)."""

    def __init__(self, robot: int, teammates: Sequence[int], n_robots: int, limits: GateLimits) -> None:
        self.robot = robot
        self.teammates = tuple(teammates)
        self.needed = [robot, *self.teammates]
        self.limits = limits
        self.states = StateTable(n_robots)
        self._obstacles = _Obstacles()
        self._state_frame: str | None = None
        self._received_wall: dict[int, float] = {}   # own state stamp -> wall receipt time
        self.answered = -1                            # newest own-state stamp answered
        self.last_published_stamp = -1
        self.last_published_wall = -math.inf
        self.last_input_wall = -math.inf
        self.dead = False                              # the policy timed out
        self.pending: tuple[int, float, float, float] | None = None  # stamp, v, omega, wall

    # -- bookkeeping of what was published -----------------------------------------------------
    def _emit(self, decisions: list[Decision], wall: float) -> list[Decision]:
        for d in decisions:
            if not isinstance(d, Repeat):
                if getattr(d, "answers", True) and d.stamp > self.answered:
                    self.answered = d.stamp
                self.last_published_stamp = max(self.last_published_stamp, d.stamp)
            self.last_published_wall = wall
        return decisions

    # -- inputs -------------------------------------------------------------------------------
    def on_obstacles(self, stamp: int | None, obstacles: np.ndarray, lifetime_ns: int, frame: str,
                     now: int | None, wall: float) -> list[Decision]:
        self._obstacles.add(stamp, obstacles, lifetime_ns, frame)
        return self._emit(self._resolve_pending(now), wall)

    def on_state(self, robot: int, stamp: int, state: RobotState, frame: str, now: int | None,
                 wall: float) -> list[Decision]:
        self.states.put(robot, stamp, state)
        if robot == self.robot:
            self._state_frame = frame
            if stamp == self.answered:
                return self._emit(self._repeat(stamp, now), wall)
            self._received_wall[stamp] = self.last_input_wall = wall
            if len(self._received_wall) > 32:
                del self._received_wall[min(self._received_wall)]
            if self.dead and stamp > self.answered:
                return self._emit([Stop(stamp, "nominal_timeout")], wall)
        return self._emit(self._resolve_pending(now), wall)

    def on_nominal(self, stamp: int, v: float, omega: float, now: int | None,
                   wall: float) -> list[Decision]:
        self.last_input_wall = wall
        self.dead = False
        if stamp <= self.answered:
            return self._emit(self._repeat(stamp, now) if stamp == self.answered else [], wall)
        if now is not None and (self._ready(stamp) or self._newer_state(stamp)):
            return self._emit([self._decide(stamp, v, omega, now)], wall)
        self.pending = (stamp, v, omega, wall)
        return []

    def on_tick(self, now: int | None, wall: float) -> list[Decision]:
        timeout = self.limits.nominal_timeout
        out: list[Decision] = self._resolve_pending(now)     # the clock may have come since
        if self.pending is not None and wall - self.pending[3] > timeout:
            stamp, v, omega, _ = self.pending
            self.pending = None
            out.append(self._decide(stamp, v, omega, now))
        latest = self.states.latest(self.robot)
        if latest is not None and latest[0] > max(self.answered, *(d.stamp for d in out), -1):
            waiting = [t for s, t in self._received_wall.items() if s > self.answered]
            if waiting and wall - min(waiting) > timeout:
                self.dead = True
                out.append(Stop(latest[0], "nominal_timeout"))
                return self._emit(out, wall)
        quiet = wall - max(self.last_input_wall, self.last_published_wall)
        if not out and quiet > timeout and now is not None:
            newest = latest[0] if latest is not None else -1
            if now > max(self.last_published_stamp, newest):
                out.append(Stop(now, "no_input", answers=False))
        return self._emit(out, wall)

    # -- pairing ------------------------------------------------------------------------------
    def _ready(self, stamp: int) -> bool:
        return self.states.has_all(stamp, self.needed) and \
            self._obstacles.book.obstacles_at(stamp) is not None

    def _newer_state(self, stamp: int) -> bool:
        latest = self.states.latest(self.robot)
        return latest is not None and latest[0] > stamp

    def _resolve_pending(self, now: int | None) -> list[Decision]:
        if self.pending is None or now is None or not self._ready(self.pending[0]):
            return []
        stamp, v, omega, _ = self.pending
        self.pending = None
        return [self._decide(stamp, v, omega, now)]

    def _age(self, stamp: int, now: int | None) -> float:
        return max(0, (now or 0) - stamp) / NS_PER_S

    def _repeat(self, stamp: int, now: int | None) -> list[Decision]:
        age_s = self._age(stamp, now)
        if now is None:
            return [Stop(stamp, "no_clock", age_s=age_s)]
        if age_s > self.limits.max_state_age:
            return [Stop(stamp, "stale_state", age_s=age_s)]
        return [Repeat(stamp)]

    def _decide(self, stamp: int, v: float, omega: float, now: int | None) -> Decision:
        """The command stamped ``stamp``: with that state, or this robot's newest state if
        the command is late and its state is gone."""
        u_nom = (v, omega)
        if now is None:
            return Stop(stamp, "no_clock", u_nom)
        state_stamp, own = stamp, self.states.get(self.robot, stamp)
        if own is None:
            latest = self.states.latest(self.robot)
            if latest is None or latest[0] < stamp:
                return Stop(stamp, "missing_state", u_nom)
            state_stamp, own = latest
        age_s = self._age(state_stamp, now)
        obstacles = self._obstacles.book.obstacles_at(state_stamp)
        if obstacles is None:
            return Stop(stamp, "missing_obstacles", u_nom, age_s=age_s)
        if self._obstacles.frame is not None and self._obstacles.frame != self._state_frame:
            return Stop(stamp, "frame_mismatch", u_nom, age_s=age_s)
        if age_s > self.limits.max_state_age:
            return Stop(stamp, "stale_state", u_nom, age_s=age_s)
        mates = []
        for j in self.teammates:
            mate = self.states.get(j, state_stamp)
            if mate is None:
                latest = self.states.latest(j)
                mate = latest[1] if latest is not None else (math.nan,) * 5
            mates.append(mate)
        return Filter(stamp, u_nom, own, obstacles, tuple(mates), age_s)


def make_gate(pairing: str, robot: int, teammates: Sequence[int], n_robots: int,
              limits: GateLimits) -> LatestGate | StampGate:
    """The gate of ``pairing`` (one of :data:`PAIRINGS`)."""
    if pairing == "latest":
        return LatestGate(robot, teammates, limits)
    if pairing == "stamp":
        return StampGate(robot, teammates, n_robots, limits)
    raise ValueError(f"pairing must be one of {list(PAIRINGS)}, got {pairing!r}")
