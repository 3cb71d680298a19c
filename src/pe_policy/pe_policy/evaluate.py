"""The one evaluation API: policies by source, optionally behind the safety filter,
played headless on held-out seeds, records and summary returned.

``pe-eval``, training's final evaluation, the report and the ROS bringup all
call :func:`evaluate` (or its two helpers that name robots), so they agree on
what a source, a filter selection and a seed range mean::

    from pe_policy.evaluate import evaluate
    result = evaluate("bench_1v1_flee", {"pursuer": "pursuer_bench_flee_filter",
                                         "evader": "scripted:flee"}, episodes=200, filter="all")
    result.summary["capture_rate"], result.records[0].steps
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pe_policy.policy import SCRIPTED_PREFIX, load_policy, resolve_source
from pe_sim.cli import UserError
from pe_sim.evaluation import EVAL_SEED_BASE, run_episodes
from pe_sim.metrics import EpisodeRecord, summarize
from pe_sim.scenario import Scenario, load_scenario


def policy_sources(scenario: Scenario, by_role: Mapping[str, str],
                   overrides: Sequence[str] = ()) -> list[str]:
    """The policy source of each robot: its role's (``by_role``) unless a ``NAME=SOURCE``
    item of ``overrides`` names it."""
    sources = [by_role[robot.role] for robot in scenario.robots]
    for item in overrides:
        name, _, source = item.partition("=")
        if not source:
            raise UserError(f"a robot override must be NAME=SOURCE, got {item!r}")
        sources[scenario.robot_index(name)] = source
    return sources


def filtered_robot_indices(scenario: Scenario, which: str) -> list[int]:
    """Robots behind the filter: ``none``, ``all``, a role, or comma-separated robot names."""
    if which == "none":
        return []
    if which == "all":
        return list(range(scenario.num_robots))
    if which in ("pursuer", "evader"):
        return list(scenario.indices(which))
    names = [r.name for r in scenario.robots]
    for name in which.split(","):
        if name not in names:
            from pe_sim.config_schema import closest

            raise UserError(f"filter selection {which!r}: no robot {name!r}"
                            f"{closest(name, ['none', 'all', 'pursuer', 'evader', *names])}; use none, "
                            f"all, pursuer, evader or robot names of '{scenario.name}' ({', '.join(names)})")
    return [scenario.robot_index(name) for name in which.split(",")]


def check_envelopes(scenario: Scenario, policies: Sequence[Any], strict: bool) -> None:
    """Warn (or, ``strict``, refuse) when ``scenario`` leaves a policy's operating envelope
    (policies exported before envelopes only have their observation's obstacle slots
    checked; scripted ones nothing)."""
    for policy in policies:
        envelope = getattr(getattr(policy, "metadata", None), "envelope", None)
        problems = envelope.departures(scenario) if envelope is not None else []
        spec = getattr(policy, "spec", None)
        if spec is not None and scenario.obstacles.max_count > spec.k_obstacles:
            problems.append(f"up to {scenario.obstacles.max_count} obstacles, its observation holds "
                            f"the nearest {spec.k_obstacles}")
        if not problems:
            continue
        message = (f"policy {policy.name} runs outside what it was trained for on scenario "
                   f"'{scenario.name}': {'; '.join(problems)}")
        if strict:
            raise UserError(message + " (--strict)")
        warnings.warn(message, stacklevel=3)


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(scenario: Scenario, sources: Sequence[str]) -> dict[str, Any]:
    """What identifies a run besides names: the scenario's content hash and, per robot,
    its policy source and (for files) the SHA-256 of the file."""
    policies = {}
    for robot, source in zip(scenario.robots, sources, strict=True):
        entry: dict[str, Any] = {"source": source}
        if not source.startswith(SCRIPTED_PREFIX):
            path = resolve_source(source)
            entry.update(file=str(path), sha256=file_sha256(path))
        policies[robot.name] = entry
    return {"scenario_hash": scenario.content_hash(), "scenario_file": scenario.source,
            "policy_files": policies}


@dataclass(frozen=True)
class Players:
    """The robots of a scenario ready to play: one actor per robot, and the filter.

    ``action_filter(pose, u_nom, obstacles, n_obstacles[, gains=])`` returns the
    filtered commands (B, N, 2) and stats with (B, N) ``intervened``,
    ``correction_size`` and ``backup``; it is None when no robot is filtered."""

    policies: list[Any]
    filtered: list[int]
    action_filter: Callable[..., tuple[Any, Any]] | None
    filter_gains: Callable[[Any], Any] | None

    @property
    def actors(self) -> list[Callable[[Any], Any]]:
        return [p.act for p in self.policies]

    @property
    def names(self) -> list[str]:
        """Policy name of each robot, with `` +filter`` for the filtered ones."""
        return [p.name + (" +filter" if i in self.filtered else "") for i, p in enumerate(self.policies)]


def build_players(scenario: Scenario, by_role: Mapping[str, str], *, robots: Sequence[str] = (),
                  filter: str = "all", filter_config: str = "vcp_cbf", strict: bool = False) -> Players:
    """Load each robot's policy (see :func:`evaluate` for the sources; envelopes checked as
    there) and the VCP-CBF filter of ``filter_config`` for the robots named by ``filter``."""
    sources = policy_sources(scenario, by_role, robots)
    policies = [load_policy(src, scenario, i) for i, src in enumerate(sources)]
    check_envelopes(scenario, policies, strict)
    filtered = filtered_robot_indices(scenario, filter)
    if not filtered:
        return Players(policies, filtered, None, None)
    from pe_policy.barriernet_policy import gains_source
    from pe_safety_filter.config import load_filter_config
    from pe_safety_filter.filter import BatchSafetyFilter

    batch_filter = BatchSafetyFilter(load_filter_config(filter_config), scenario)

    def action_filter(pose, u_nom, obstacles, n_obstacles, gains=None):
        return batch_filter.filter(pose, u_nom, obstacles, n_obstacles, gains=gains, robots=filtered)

    # Policies with per-constraint class-K gains (BarrierNet) hand them to the filter's QP.
    return Players(policies, filtered, action_filter, gains_source(batch_filter, policies, filtered))


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` played: records in seed order (variant by variant) and their
    summary."""

    scenario: Scenario
    records: list[EpisodeRecord]
    summary: dict[str, Any]
    policy_names: list[str]


def evaluate(
    scenario: Scenario | str,
    by_role: Mapping[str, str],
    episodes: int,
    *,
    seed: int = EVAL_SEED_BASE,
    robots: Sequence[str] = (),
    filter: str = "all",
    filter_config: str = "vcp_cbf",
    num_envs: int = 256,
    on_record: Callable[[EpisodeRecord], None] | None = None,
    strict: bool = False,
) -> Evaluation:
    """Play seeds ``seed .. seed + episodes - 1`` of ``scenario`` with each role's policy
    source (``scripted:<kind>``, a shipped policy's name or an ``.onnx`` path;
    ``robots`` overrides single robots as ``NAME=SOURCE``), the robots named by
    ``filter`` behind the VCP-CBF filter of ``filter_config``. ``on_record`` is called
    with each record as its episode finishes (completion order). A learned policy whose
    operating envelope ``scenario`` leaves is a warning, or a :class:`UserError` when
    ``strict``. A scenario with variants (evader speeds, arena sizes) plays the same seeds
    in every variant, one after another; the summary adds each variant's under ``variants``."""
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    variants = scenario.variants_of()
    records: list[EpisodeRecord] = []
    for variant in variants:
        players = build_players(variant, by_role, robots=robots, filter=filter,
                                filter_config=filter_config, strict=strict)
        names = players.names
        records += run_episodes(variant, players.actors, episodes, seed=seed, num_envs=num_envs,
                                action_filter=players.action_filter, filtered_robots=players.filtered,
                                policy_names=names, filter_gains=players.filter_gains, on_record=on_record)
    sources = policy_sources(scenario, by_role, robots)
    summary = summarize(records)
    if len(variants) > 1:
        summary["variants"] = {v.name: summarize([r for r in records if r.scenario == v.name])
                               for v in variants}
    summary.update(scenario=scenario.name, seed=seed, policies=dict(
        zip([r.name for r in scenario.robots], names, strict=True)), **provenance(scenario, sources))
    return Evaluation(scenario, records, summary, names)
