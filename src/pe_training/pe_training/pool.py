"""An opponent pool inside the batch VecEnv, sampled by prioritised fictitious self-play.

Each env plays each episode against one pool member (a frozen ONNX snapshot or a scripted
policy), drawn when the episode starts from the PFSP distribution (AlphaStar, Vinyals et al.
2019): with x the learner's win rate against a member,

* ``hard``: f(x) = (1 - x)^p  (most weight on the members the learner loses to);
* ``var``:  f(x) = x (1 - x)  (most weight on the even matches);
* ``uniform``: f(x) = 1 (plain fictitious self-play),

normalised over the pool. Each step every member that drives at least one env is called
once on the batch of its envs (:class:`PoolSeat`): no Python loop over envs, one ONNX
call per member. :class:`PoolStats` counts the learner's wins per member from the
VecEnv's episode infos.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from pe_sim.scripted import WorldView

WEIGHTINGS = ("hard", "var", "uniform")

Controller = Callable[[WorldView], np.ndarray]


def pfsp_weights(win_rates: Sequence[float], weighting: str = "hard", exponent: float = 2.0) -> np.ndarray:
    """Sampling probabilities over the pool from the learner's win rates (fractions);
    uniform when every weight is 0 (the learner beats the whole pool)."""
    x = np.clip(np.asarray(win_rates, dtype=float), 0.0, 1.0)
    if weighting == "hard":
        f = (1.0 - x) ** exponent
    elif weighting == "var":
        f = x * (1.0 - x)
    elif weighting == "uniform":
        f = np.ones_like(x)
    else:
        raise ValueError(f"unknown PFSP weighting {weighting!r}; choose from {list(WEIGHTINGS)}")
    total = f.sum()
    return f / total if total > 0 else np.full(len(x), 1.0 / len(x))


def slice_view(view: WorldView, rows: np.ndarray) -> WorldView:
    """The world state of the envs ``rows`` only."""
    return WorldView(view.pose[rows], view.velocity[rows], view.obstacles[rows], view.n_obstacles[rows],
                     view.step_count[rows], view.episode_seed[rows])


class OpponentPool:
    """Pool members by name, each a mapping opponent robot index -> controller, and which
    member each of ``num_envs`` envs plays in its current episode."""

    def __init__(self, num_envs: int, seed: int) -> None:
        self.names: list[str] = []
        self.members: list[Mapping[int, Controller]] = []
        self.probabilities = np.zeros(0)
        self.assignment = np.zeros(num_envs, dtype=np.int64)
        self.episode_member: dict[int, int] = {}
        self._seen = np.full(num_envs, -1, dtype=np.int64)
        self._rng = np.random.default_rng(seed)

    def set_members(self, names: Sequence[str], members: Sequence[Mapping[int, Controller]],
                    probabilities: Sequence[float]) -> None:
        """Replace the pool; envs keep their member until their episode ends (a member that
        left the pool is replaced at once)."""
        p = np.asarray(probabilities, dtype=float)
        if len(names) != len(members) or len(members) != len(p) or not len(p):
            raise ValueError("need one probability per member and at least one member")
        if not np.isclose(p.sum(), 1.0) or (p < 0).any():
            raise ValueError(f"probabilities must be >= 0 and sum to 1, got {p.tolist()}")
        old = list(self.names)
        self.names, self.members, self.probabilities = list(names), list(members), p
        remap = np.array([self.names.index(n) if n in self.names else -1 for n in old] or [-1])
        if old:
            self.assignment = remap[self.assignment]
            lost = self.assignment < 0
            self.assignment[lost] = self._draw(int(lost.sum()))
        self.episode_member = {s: int(remap[m]) for s, m in self.episode_member.items() if remap[m] >= 0}

    def _draw(self, n: int) -> np.ndarray:
        return self._rng.choice(len(self.members), size=n, p=self.probabilities)

    def update(self, episode_seed: np.ndarray) -> None:
        """Draw a member for every env whose episode is new since the last call."""
        new = episode_seed != self._seen
        if new.any():
            rows = np.flatnonzero(new)
            self.assignment[rows] = self._draw(rows.size)
            self._seen[rows] = episode_seed[rows]
            for s, m in zip(episode_seed[rows].tolist(), self.assignment[rows].tolist(), strict=True):
                self.episode_member[s] = m

    def act(self, robot: int, view: WorldView) -> np.ndarray:
        """Commands (B, 2) of opponent robot ``robot``: each member on its own envs."""
        self.update(view.episode_seed)
        out = np.empty((view.pose.shape[0], 2))
        for m in np.unique(self.assignment).tolist():
            rows = np.flatnonzero(self.assignment == m)
            sub = view if rows.size == out.shape[0] else slice_view(view, rows)
            out[rows] = self.members[m][robot](sub)
        return out

    def gains(self, robot: int, view: WorldView) -> np.ndarray | None:
        """Filter gains (B, G) of opponent robot ``robot`` from the members that choose their
        own (NaN rows for the others), or None when no member in play does."""
        out = None
        for m in np.unique(self.assignment).tolist():
            gains = getattr(self.members[m][robot], "gains", None)
            if not callable(gains):
                continue
            rows = np.flatnonzero(self.assignment == m)
            g = gains(view if rows.size == view.pose.shape[0] else slice_view(view, rows))
            if out is None:
                out = np.full((view.pose.shape[0], g.shape[1]), np.nan)
            out[rows] = g
        return out

    def seat(self, robot: int) -> PoolSeat:
        return PoolSeat(self, robot)


class PoolSeat:
    """The controller of one opponent robot, driven by the pool's current members."""

    def __init__(self, pool: OpponentPool, robot: int) -> None:
        self.pool = pool
        self.robot = robot

    def __call__(self, view: WorldView) -> np.ndarray:
        return self.pool.act(self.robot, view)

    def gains(self, view: WorldView) -> np.ndarray | None:
        return self.pool.gains(self.robot, view)


class PoolStats(BaseCallback):
    """The learner's wins and games per pool member (by name), from finished episodes'
    ``episode_seed`` and ``is_success`` infos; ``pools`` (one per batch of the learner's
    env, with the same members) play distinct episode seeds."""

    def __init__(self, pools: Sequence[OpponentPool]) -> None:
        super().__init__()
        self.pools = list(pools)
        self.wins: dict[str, int] = {}
        self.games: dict[str, int] = {}

    def _on_step(self) -> bool:
        infos: list[dict[str, Any]] = self.locals.get("infos", [])
        for info in infos:
            if "episode_seed" not in info or "is_success" not in info:
                continue
            seed = int(info["episode_seed"])
            pool = next((p for p in self.pools if seed in p.episode_member), None)
            if pool is None:
                continue
            name = pool.names[pool.episode_member.pop(seed)]
            self.games[name] = self.games.get(name, 0) + 1
            self.wins[name] = self.wins.get(name, 0) + int(bool(info["is_success"]))
        return True

    def win_rates(self) -> dict[str, float]:
        return {n: self.wins[n] / g for n, g in self.games.items() if g}


__all__ = ["WEIGHTINGS", "OpponentPool", "PoolSeat", "PoolStats", "pfsp_weights", "slice_view"]
