"""Replay one episode from its seed, step by step, with the same policies and filter.

An :class:`~pe_sim.metrics.EpisodeRecord` holds an episode's totals, not its
trajectory. Episodes are pure functions of their seed (:mod:`pe_sim.counter_rng`)
and the policies and filter are deterministic, so playing the seed again in a
one-environment batch gives the poses, the nominal and filtered commands and the
filter's corrections of that episode: an :class:`~pe_sim.episode_log.EpisodeLog`
for plots, animations and recordings. :func:`check_replay` compares a replay with
the record it came from.

    log = replay_episode("bench_1v1_flee", {"pursuer": "pursuer_bench_flee_filter",
                                            "evader": "scripted:flee"}, seed=1_000_000_003)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pe_policy.evaluate import Players, build_players
from pe_policy.policy import SCRIPTED_PREFIX, shipped_policies
from pe_sim.batch import BatchSim
from pe_sim.episode_log import EpisodeLog, EpisodeRecorder
from pe_sim.metrics import EpisodeRecord
from pe_sim.scenario import Scenario, load_scenario
from pe_sim.scripted import WorldView

FILTER_SUFFIX = " +filter"


def replay_episode(scenario: Scenario | str, by_role: Mapping[str, str], seed: int, *,
                   robots: Sequence[str] = (), filter: str = "all",
                   filter_config: str = "vcp_cbf") -> EpisodeLog:
    """Play episode ``seed`` of ``scenario`` as :func:`pe_policy.evaluate.evaluate` does
    (same sources, ``robots`` overrides and ``filter`` selection) and return its
    recording, nominal commands and filter corrections included."""
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    players = build_players(scenario, by_role, robots=robots, filter=filter, filter_config=filter_config)
    return play_recorded(scenario, players, seed)


def play_recorded(scenario: Scenario, players: Players, seed: int) -> EpisodeLog:
    """One episode of ``players`` in a one-environment batch, recorded step by step."""
    sim = BatchSim(scenario, 1, seed=seed)
    view = WorldView.of(sim)
    names = dict(zip([r.name for r in scenario.robots], players.names, strict=True))
    recorder = EpisodeRecorder(sim, [0], names)
    recorder.begin()
    n = scenario.num_robots
    filtered = np.zeros(n, dtype=bool)
    filtered[players.filtered] = True
    nominal, correction, intervened = [], [], []
    while not recorder.finished:
        commands = np.stack([actor(view) for actor in players.actors], axis=1)
        nominal.append(commands[0].copy())
        size = np.zeros(n)
        if players.action_filter is not None:
            if players.filter_gains is None:
                safe, raw = players.action_filter(sim.pose, commands, sim.obstacles, sim.n_obstacles)
            else:
                safe, raw = players.action_filter(sim.pose, commands, sim.obstacles, sim.n_obstacles,
                                                  gains=players.filter_gains(view))
            commands = np.where(filtered[None, :, None], safe, commands)
            size = np.where(filtered, np.asarray(raw.correction_size)[0], 0.0)
            intervened.append(filtered & np.asarray(raw.intervened)[0])
        else:
            intervened.append(np.zeros(n, dtype=bool))
        correction.append(size)
        recorder.record(sim.step(commands))
    log = recorder.records[0]
    log.nominal_command = np.array(nominal, dtype=np.float64).reshape(-1, n, 2)
    log.correction = np.array(correction, dtype=np.float64).reshape(-1, n)
    log.intervened = np.array(intervened, dtype=bool).reshape(-1, n)
    return log


def source_of_policy_name(name: str) -> tuple[str, bool]:
    """(policy source, filtered) for a policy name as written in episode records, e.g.
    ``pursuer_bench_flee_filter.onnx +filter`` -> (``pursuer_bench_flee_filter``, True); an
    existing ``.onnx`` path is its own source.
    Raises ValueError for a learned policy that is not shipped (give its path instead)."""
    filtered = name.endswith(FILTER_SUFFIX)
    base = name[: -len(FILTER_SUFFIX)] if filtered else name
    if base.startswith(SCRIPTED_PREFIX):
        return base, filtered
    if base.endswith(".onnx") and Path(base).is_file():
        return base, filtered                        # a path, as the ROS graph's records name them
    stem = Path(base).stem if base.endswith(".onnx") else base
    if stem in shipped_policies():
        return stem, filtered
    raise ValueError(f"policy {base!r} of the record is not a shipped policy: name its .onnx file "
                     "with --robot NAME=PATH")


def replay_record(record: EpisodeRecord, *, scenario: Scenario | str | None = None,
                  overrides: Mapping[str, str] | None = None,
                  filter_config: str = "vcp_cbf") -> EpisodeLog:
    """Replay the episode of ``record`` with the policies and filter its robots name
    (``overrides`` maps robot names to sources for policies that are not shipped)."""
    scenario = load_scenario(scenario or record.scenario) if not isinstance(scenario, Scenario) else scenario
    overrides = dict(overrides or {})
    items, filtered = [], []
    for robot in record.robots:
        source, is_filtered = source_of_policy_name(robot.policy) if robot.name not in overrides \
            else (overrides[robot.name], robot.policy.endswith(FILTER_SUFFIX))
        items.append(f"{robot.name}={source}")
        if is_filtered:
            filtered.append(robot.name)
    by_role = {r.role: "scripted:flee" for r in scenario.robots}   # every robot is overridden below
    return replay_episode(scenario, by_role, record.seed, robots=items,
                          filter=",".join(filtered) if filtered else "none", filter_config=filter_config)


def check_replay(log: EpisodeLog, record: EpisodeRecord) -> list[str]:
    """Differences between a replay and the record of the same episode (empty: equal):
    outcome, steps, and per robot violation steps and filter interventions."""
    problems = []
    if log.seed != record.seed:
        problems.append(f"seed {log.seed} != {record.seed}")
    if log.captured != record.captured or log.steps != record.steps:
        problems.append(f"outcome: replay captured={log.captured} in {log.steps} steps, record "
                        f"captured={record.captured} in {record.steps} steps")
    for i, robot in enumerate(record.robots):
        violations = int(log.violation[:, i].sum())
        if violations != robot.violation_steps:
            problems.append(f"{robot.name}: {violations} violation steps, record {robot.violation_steps}")
        interventions = int(log.intervened[:, i].sum()) if log.intervened is not None else 0
        if interventions != robot.interventions:
            problems.append(f"{robot.name}: {interventions} interventions, record {robot.interventions}")
    return problems
