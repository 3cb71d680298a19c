"""One pursuer source against one evader source on held-out episodes, every robot behind
the safety filter as deployed: the capture count with its 95 % Wilson interval and the
safety figures. Exploitability checks, cross-play matrices and self-play generations all
measure through :func:`play`, which goes through :func:`pe_policy.evaluate.evaluate`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pe_policy.evaluate import evaluate
from pe_sim.evaluation import EVAL_SEED_BASE
from pe_sim.intervals import wilson_interval
from pe_sim.scenario import Scenario, load_scenario


@dataclass(frozen=True)
class MatchResult:
    """Outcome of ``episodes`` episodes of ``pursuer`` vs ``evader`` (rates are fractions)."""

    pursuer: str
    evader: str
    scenario: str
    episodes: int
    seed: int
    filter: str
    captures: int
    capture_rate: float
    capture_low: float
    capture_high: float
    violation_episodes: int
    pursuer_intervention_rate: float
    evader_intervention_rate: float

    def win_rate(self, role: str) -> float:
        """The rate at which ``role`` wins: capture for the pursuer, escape for the evader."""
        return self.capture_rate if role == "pursuer" else 1.0 - self.capture_rate

    def win_interval(self, role: str) -> tuple[float, float]:
        if role == "pursuer":
            return self.capture_low, self.capture_high
        return 1.0 - self.capture_high, 1.0 - self.capture_low

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def episodes_per_variant(scenario: Scenario | str, episodes: int) -> int:
    """How many episodes :func:`play` plays in each variant of ``scenario`` for ``episodes``
    in all (``pe-eval --episodes`` of the same evaluation)."""
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    return -(-episodes // len(scenario.variants_of()))


def play(scenario: Scenario | str, pursuer: str, evader: str, episodes: int, *,
         seed: int = EVAL_SEED_BASE, filter: str = "all", num_envs: int = 250) -> MatchResult:
    """Play seeds ``seed .. seed + episodes - 1`` (default: pe-eval's held-out test seeds)
    of ``pursuer`` (every pursuer robot) against ``evader`` (every evader robot). A
    scenario with variants spreads the episodes over them: the first ``ceil(episodes /
    variants)`` seeds in each (so a few more episodes in all when they do not divide)."""
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    each = episodes_per_variant(scenario, episodes)
    result = evaluate(scenario, {"pursuer": pursuer, "evader": evader}, each, seed=seed,
                      filter=filter, num_envs=min(num_envs, each))
    episodes = len(result.records)
    captures = sum(1 for r in result.records if r.captured)
    low, high = wilson_interval(captures, episodes)
    violations = sum(1 for r in result.records if any(x.violation_steps for x in r.robots))
    roles = result.summary["roles"]

    def intervention(role: str) -> float:
        return float(roles[role]["intervention_rate"]) if roles.get(role, {}).get("filter_calls") else 0.0

    return MatchResult(pursuer, evader, result.scenario.name, episodes, seed, filter, captures,
                       captures / episodes, low, high, violations, intervention("pursuer"),
                       intervention("evader"))


__all__ = ["MatchResult", "episodes_per_variant", "play"]
