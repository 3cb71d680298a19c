"""The evaluation matrix: methods x opponents x scenarios (shipped and robustness variants).

A *row* of the report is one method (a pursuer policy source and which robots are
behind the filter) against one opponent (an evader policy source) on one scenario,
played on the same held-out seeds as every other row of that scenario, so rows
can be compared pairwise episode by episode.

Learned policies only run on the scenario family they were trained for (their
observation spec depends on the arena and team sizes), so the matrix is a list of
:class:`Block`s, each a scenario family with its methods and opponents. Shipped
policies that are not named here are added as they land, from their model cards:
a pursuer becomes a method of its scenario's block, an evader an opponent.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from pe_policy.policy import DEFAULT_PURSUER, shipped_policies
from pe_sim.package_data import data_path
from pe_sim.scenario import Scenario, load_scenario


@dataclass(frozen=True)
class Method:
    """A pursuer: policy source and the robots behind the filter (``all``, ``evader``...)."""

    key: str
    label: str
    source: str
    filter: str = "all"


@dataclass(frozen=True)
class Opponent:
    """An evader policy source."""

    key: str
    label: str
    source: str


@dataclass(frozen=True)
class ScenarioCase:
    """A shipped scenario, or a robustness variant of it (``changes`` applied)."""

    key: str
    label: str
    base: str
    changes: tuple[tuple[str, Any], ...] = ()

    def build(self) -> Scenario:
        """The scenario this case plays (name = ``key``)."""
        scenario = load_scenario(self.base)
        for what, value in self.changes:
            scenario = apply_change(scenario, what, value)
        return dataclasses.replace(scenario, name=self.key) if self.changes else scenario


def apply_change(scenario: Scenario, what: str, value: Any) -> Scenario:
    """One robustness change: ``obstacle_count`` (min, max), ``obstacle_radius`` (min, max) m,
    or ``speed_ratio`` (every evader's v_max = ratio x the first pursuer's v_max)."""
    if what == "obstacle_count":
        return dataclasses.replace(scenario, obstacles=dataclasses.replace(
            scenario.obstacles, count=(int(value[0]), int(value[1]))))
    if what == "obstacle_radius":
        return dataclasses.replace(scenario, obstacles=dataclasses.replace(
            scenario.obstacles, radius=(float(value[0]), float(value[1]))))
    if what == "speed_ratio":
        v_pursuer = scenario.robots[scenario.indices("pursuer")[0]].v_max
        robots = tuple(dataclasses.replace(r, v_max=float(value) * v_pursuer) if r.role == "evader" else r
                       for r in scenario.robots)
        return dataclasses.replace(scenario, robots=robots)
    raise ValueError(f"unknown scenario change {what!r}")


@dataclass(frozen=True)
class Block:
    """A scenario family: its cases, the methods and the opponents played on each."""

    family: str
    scenarios: tuple[ScenarioCase, ...]
    methods: tuple[Method, ...]
    opponents: tuple[Opponent, ...]


@dataclass(frozen=True)
class Row:
    """One cell of the matrix, played on seeds ``seed .. seed + episodes - 1``."""

    block: str
    method: Method
    opponent: Opponent
    scenario: ScenarioCase
    episodes: int
    seed: int

    @property
    def label(self) -> str:
        return f"{self.scenario.key} | {self.method.label} vs {self.opponent.label}"


@dataclass(frozen=True)
class Matrix:
    blocks: tuple[Block, ...]
    episodes: int
    seed: int
    rows: tuple[Row, ...] = field(default=())

    @classmethod
    def of(cls, blocks: tuple[Block, ...], episodes: int, seed: int) -> Matrix:
        rows = tuple(Row(b.family, m, o, s, episodes, seed)
                     for b in blocks for s in b.scenarios for o in b.opponents for m in b.methods)
        return cls(blocks, episodes, seed, rows)


FLEE = Opponent("flee", "scripted flee", "scripted:flee")
RANDOM = Opponent("random", "scripted random", "scripted:random")
PP = Method("pp", "scripted pure pursuit", "scripted:pure_pursuit")
PN = Method("pn", "scripted proportional navigation", "scripted:proportional_navigation")


def bench_block(variants: bool = True, opponents: tuple[Opponent, ...] = (FLEE, RANDOM)) -> Block:
    """The benchmark family: every pursuer method of the comparison, the shipped default
    pursuer among them (whichever scenario it was trained on)."""
    cases = [ScenarioCase("bench_1v1_flee", "benchmark", "bench_1v1_flee")]
    if variants:
        cases += [
            ScenarioCase("bench_more_obstacles", "4-6 obstacles", "bench_1v1_flee",
                         (("obstacle_count", (4, 6)),)),
            ScenarioCase("bench_large_obstacles", "obstacle radius 0.8-1.5 m", "bench_1v1_flee",
                         (("obstacle_radius", (0.8, 1.5)),)),
            ScenarioCase("bench_fast_evader", "evader speed 0.98 x pursuer", "bench_1v1_flee",
                         (("speed_ratio", 0.98),)),
            ScenarioCase("bench_slow_evader", "evader speed 0.90 x pursuer", "bench_1v1_flee",
                         (("speed_ratio", 0.90),)),
        ]
    methods = (
        PP, PN,
        Method("ppo", "PPO, unconstrained, no filter", "pursuer_bench_flee", "evader"),
        Method("ppo_posthoc", "PPO, unconstrained + post-hoc filter", "pursuer_bench_flee"),
        Method("ppo_in_loop", "PPO, filter in the loop", "pursuer_bench_flee_filter"),
        Method("bn_imitation", "BarrierNet, imitation of PN", "barriernet_imitation_bench"),
        Method("bn_ppo", "BarrierNet, PPO", "barriernet_ppo_bench_long"),
        Method("default", f"{DEFAULT_PURSUER} (default pursuer, + filter)", DEFAULT_PURSUER),
    )
    return Block("bench_1v1_flee", tuple(cases), methods, opponents)


def seed_block() -> Block:
    """The prototype's scenario against the random evader."""
    methods = (PN, Method("ppo_seed", "PPO, unconstrained + post-hoc filter", "pursuer_seed_random"),
               Method("bn_imitation_seed", "BarrierNet, imitation of PN", "barriernet_imitation_seed"))
    return Block("seed_1v1_2obs", (ScenarioCase("seed_1v1_2obs", "prototype", "seed_1v1_2obs"),),
                 methods, (RANDOM,))


def model_card(name: str) -> dict[str, Any]:
    """A shipped policy's model card (empty when it has none)."""
    path = data_path("pe_policy", "models") / f"{name}.model_card.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def with_new_policies(block: Block) -> Block:
    """``block`` plus the shipped policies of its scenario it does not name yet: pursuers
    as methods (every robot filtered), evaders as opponents."""
    named = {m.source for m in block.methods} | {o.source for o in block.opponents}
    methods, opponents = list(block.methods), list(block.opponents)
    for name in shipped_policies():
        card = model_card(name)
        if name in named or card.get("scenario") != block.family:
            continue
        if card.get("role") == "pursuer":
            methods.append(Method(name, f"{name} (+ filter)", name))
        elif card.get("role") == "evader":
            opponents.append(Opponent(name, f"learned evader {name}", name))
    return dataclasses.replace(block, methods=tuple(methods), opponents=tuple(opponents))


def default_matrix(episodes: int, seed: int, variants: bool = True) -> Matrix:
    """The full comparison (``variants``: the benchmark's robustness variants too)."""
    blocks = (with_new_policies(bench_block(variants)), with_new_policies(seed_block()))
    return Matrix.of(blocks, episodes, seed)


def small_matrix(episodes: int, seed: int) -> Matrix:
    """A quick matrix (tests, smoke runs): PN, PPO with and without the filter and
    BarrierNet PPO on the benchmark and one variant, against the flee evader."""
    full = bench_block(variants=True, opponents=(FLEE,))
    keep = {"pn", "ppo", "ppo_posthoc", "bn_ppo"}
    block = dataclasses.replace(full, scenarios=full.scenarios[:2],
                                methods=tuple(m for m in full.methods if m.key in keep))
    return Matrix.of((block,), episodes, seed)


MATRICES = {"default": default_matrix, "small": small_matrix}
