"""Pure bookkeeping of the policy and filter nodes: which robot states, episodes and
obstacle sets have arrived, keyed by stamp (integer nanoseconds).

Messages on different topics arrive in no guaranteed order, so a node never
assumes "the latest of everything belongs together": it answers the state of
stamp ``s`` with the odometry of stamp ``s`` of every robot it needs, the
episode whose first state is the latest one at or before ``s`` and the obstacle
set stamped likewise -- provided ``s`` lies within that episode's slot of sim
time (``stride``, lockstep; see :mod:`pe_sim.sim_runner`). A state beyond it
belongs to an episode not heard of yet, and waits.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

RobotState = tuple[float, float, float, float, float]
"""x, y, theta, v, omega of one robot."""


class StateTable:
    """The latest states of N robots, grouped by stamp (the last ``keep`` stamps)."""

    def __init__(self, n_robots: int, keep: int = 16) -> None:
        self.n_robots = n_robots
        self.keep = keep
        self._by_stamp: OrderedDict[int, list[RobotState | None]] = OrderedDict()
        self._latest: list[tuple[int, RobotState] | None] = [None] * n_robots

    def put(self, robot: int, stamp: int, state: RobotState) -> None:
        row = self._by_stamp.get(stamp)
        if row is None:
            row = [None] * self.n_robots
            self._by_stamp[stamp] = row
            if len(self._by_stamp) > self.keep:
                self._by_stamp.popitem(last=False)
        row[robot] = state
        latest = self._latest[robot]
        if latest is None or stamp >= latest[0]:
            self._latest[robot] = (stamp, state)

    def get(self, robot: int, stamp: int) -> RobotState | None:
        row = self._by_stamp.get(stamp)
        return None if row is None else row[robot]

    def has_all(self, stamp: int, robots: range | list[int] | tuple[int, ...]) -> bool:
        row = self._by_stamp.get(stamp)
        return row is not None and all(row[i] is not None for i in robots)

    def latest(self, robot: int) -> tuple[int, RobotState] | None:
        """(stamp, state) of the newest state of ``robot``."""
        return self._latest[robot]

    def discard_through(self, stamp: int) -> None:
        """Forget every stamp at or before ``stamp`` (answered or superseded)."""
        while self._by_stamp:
            first = next(iter(self._by_stamp))
            if first > stamp:
                break
            self._by_stamp.popitem(last=False)

    def stamps(self) -> list[int]:
        return list(self._by_stamp)


@dataclass(frozen=True)
class Episode:
    index: int
    seed: int
    start_ns: int
    stride_ns: int = 0  # 0: open-ended


class _Stamped:
    """Items keyed by a start stamp; lookup of the latest at or before a stamp."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._stamps: list[int] = []
        self._items: list[Any] = []

    def add(self, stamp: int, item: Any, valid_ns: int = 0) -> None:
        item = (item, valid_ns)
        i = bisect.bisect_right(self._stamps, stamp)
        if i and self._stamps[i - 1] == stamp:
            self._items[i - 1] = item
        else:
            self._stamps.insert(i, stamp)
            self._items.insert(i, item)
        if len(self._stamps) > self.keep:
            del self._stamps[0], self._items[0]

    def at(self, stamp: int) -> Any | None:
        """The item valid at ``stamp``: the latest added at or before it, if ``stamp`` is
        within its validity (``valid_ns`` 0: open-ended)."""
        i = bisect.bisect_right(self._stamps, stamp)
        if not i:
            return None
        item, valid_ns = self._items[i - 1]
        if valid_ns and stamp - self._stamps[i - 1] >= valid_ns:
            return None
        return item

    def __len__(self) -> int:
        return len(self._stamps)


class EpisodeBook:
    """Known episodes and obstacle sets, by the stamp from which each holds."""

    def __init__(self, keep: int = 8) -> None:
        self._episodes = _Stamped(keep)
        self._obstacles = _Stamped(keep)

    def add_episode(self, episode: Episode) -> None:
        self._episodes.add(episode.start_ns, episode, episode.stride_ns)

    def add_obstacles(self, stamp: int | None, obstacles: np.ndarray, valid_ns: int = 0) -> None:
        """An obstacle set valid from ``stamp`` (None: from the beginning of time) for
        ``valid_ns`` (0: until replaced)."""
        self._obstacles.add(0 if stamp is None else stamp, np.asarray(obstacles, dtype=np.float64),
                            valid_ns)

    def episode_at(self, stamp: int) -> Episode | None:
        return self._episodes.at(stamp)

    def obstacles_at(self, stamp: int) -> np.ndarray | None:
        return self._obstacles.at(stamp)

    @property
    def has_obstacles(self) -> bool:
        return len(self._obstacles) > 0


def step_index(stamp: int, start: int, dt_ns: int) -> int:
    """Steps since an episode's first state: round((stamp - start) / dt)."""
    return (stamp - start + dt_ns // 2) // dt_ns
