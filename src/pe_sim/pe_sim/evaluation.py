"""Headless batch evaluation: play episodes with given seeds and record them.

Episodes are identified by their seed (see :mod:`pe_sim.counter_rng`), so an
evaluation over seeds ``[seed, seed + episodes)`` plays exactly those episodes
whatever the batch size. Training draws its episodes from seeds below
:data:`EVAL_SEED_BASE`; evaluations default to seeds from it (held out).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pe_sim.batch import BatchSim
from pe_sim.metrics import EpisodeAccumulator, EpisodeRecord, FilterStepStats
from pe_sim.scenario import Scenario
from pe_sim.scripted import WorldView

#: First seed of held-out evaluation episodes; training uses seeds below it.
EVAL_SEED_BASE = 1_000_000_000

Actor = Callable[[WorldView], np.ndarray]
"""Commands (B, 2) for one robot from the batch world state."""

ActionFilter = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, Any]]
"""(pose, u_nom (B, N, 2), obstacles, n_obstacles) -> (u_safe (B, N, 2), stats with
(B, N) arrays ``intervened``, ``correction_size``, ``backup``)."""


def run_episodes(
    scenario: Scenario,
    actors: Sequence[Actor],
    episodes: int,
    seed: int = EVAL_SEED_BASE,
    num_envs: int = 256,
    action_filter: ActionFilter | None = None,
    filtered_robots: Sequence[int] = (),
    policy_names: Sequence[str] = (),
    filter_gains: Callable[[WorldView], np.ndarray] | None = None,
    on_record: Callable[[EpisodeRecord], None] | None = None,
) -> list[EpisodeRecord]:
    """Play the episodes with seeds ``seed .. seed + episodes - 1`` and return their
    records in seed order. ``actors[i]`` drives robot i; ``action_filter`` (if any)
    is applied to the commands of ``filtered_robots`` before each step. With
    ``filter_gains`` (view -> per-constraint class-K gains (B, N, G), e.g. from a
    BarrierNet policy), the filter is called with ``gains=filter_gains(view)``, after
    the actors. ``on_record`` is called with each record as its episode finishes."""
    if len(actors) != scenario.num_robots:
        raise ValueError(f"need {scenario.num_robots} actors, got {len(actors)}")
    num_envs = max(1, min(num_envs, episodes))
    sim = BatchSim(scenario, num_envs, seed=seed)
    view = WorldView.of(sim)
    accumulator = EpisodeAccumulator(scenario, num_envs, policy_names)
    filtered = np.zeros((num_envs, scenario.num_robots), dtype=bool)
    filtered[:, list(filtered_robots)] = True
    records: dict[int, EpisodeRecord] = {}
    end = seed + episodes
    while len(records) < episodes:
        commands = np.stack([actor(view) for actor in actors], axis=1)
        stats = None
        if action_filter is not None and len(filtered_robots):
            if filter_gains is None:
                safe, raw = action_filter(sim.pose, commands, sim.obstacles, sim.n_obstacles)
            else:
                safe, raw = action_filter(sim.pose, commands, sim.obstacles, sim.n_obstacles,
                                          gains=filter_gains(view))
            commands = np.where(filtered[..., None], safe, commands)
            stats = FilterStepStats(filtered=filtered, intervened=np.asarray(raw.intervened),
                                    correction_size=np.asarray(raw.correction_size),
                                    backup=np.asarray(raw.backup))
        result = sim.step(commands)
        for record in accumulator.add_step(result, stats):
            if seed <= record.seed < end and record.seed not in records:
                records[record.seed] = record
                if on_record is not None:
                    on_record(record)
    return [records[s] for s in sorted(records)]
