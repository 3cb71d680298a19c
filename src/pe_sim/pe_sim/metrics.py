"""Episode records and the metrics of the project's brief.

Every evaluation path (headless batch, ROS graph) produces one
:class:`EpisodeRecord` per finished episode, written as a JSON line, and the
summary table is computed from those records only. Definitions (docs/metrics.md):

* capture rate: captured episodes / episodes; time to capture over captured ones.
* safety violation: a robot-step where the body overlaps an obstacle, leaves the
  arena or overlaps a teammate; step rate = violating robot-steps / robot-steps,
  episode rate = episodes with any violation / episodes (per role).
* intervention: a filter call whose correction (each component divided by its
  bound, inf-norm) exceeds 1e-3; rate over filter calls, and the mean size.
* backup: a filter call where the QP result was not used and the backup acted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pe_sim.batch import StepResult
from pe_sim.scenario import Scenario


@dataclass
class RobotRecord:
    """Per-robot totals of one episode."""

    name: str
    role: str
    policy: str = ""
    steps: int = 0
    violation_steps: int = 0
    contact_steps: int = 0
    min_clearance: float = math.inf
    filter_calls: int = 0
    interventions: int = 0
    correction_size_sum: float = 0.0
    backups: int = 0


@dataclass
class EpisodeRecord:
    """One finished episode."""

    scenario: str
    seed: int
    captured: bool
    steps: int
    duration_s: float
    capture_time_s: float | None
    robots: list[RobotRecord] = field(default_factory=list)

    def to_json(self) -> str:
        data = asdict(self)
        for robot in data["robots"]:
            if math.isinf(robot["min_clearance"]):
                robot["min_clearance"] = None
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> EpisodeRecord:
        data = json.loads(line)
        robots = []
        for r in data.pop("robots"):
            if r.get("min_clearance") is None:
                r["min_clearance"] = math.inf
            robots.append(RobotRecord(**r))
        return cls(robots=robots, **data)


@dataclass
class FilterStepStats:
    """What a safety filter reports for one batch step, (B, N) arrays; robots that
    are not filtered have ``filtered`` False."""

    filtered: np.ndarray
    intervened: np.ndarray
    correction_size: np.ndarray
    backup: np.ndarray


class EpisodeAccumulator:
    """Accumulates per-step events of a batch run into :class:`EpisodeRecord`s.

    Call :meth:`add_step` after every ``BatchSim.step`` with its result (and the
    filter's stats, if any); it returns the records of the episodes that ended.
    Vectorised: per-step work is a handful of numpy operations on (B, N) arrays.
    """

    def __init__(self, scenario: Scenario, num_envs: int, policy_names: Sequence[str] = ()) -> None:
        self.scenario = scenario
        self.policy_names = list(policy_names) or [""] * scenario.num_robots
        n = scenario.num_robots
        self._violations = np.zeros((num_envs, n), dtype=np.int64)
        self._contacts = np.zeros((num_envs, n), dtype=np.int64)
        self._min_clearance = np.full((num_envs, n), np.inf)
        self._filter_calls = np.zeros((num_envs, n), dtype=np.int64)
        self._interventions = np.zeros((num_envs, n), dtype=np.int64)
        self._correction = np.zeros((num_envs, n))
        self._backups = np.zeros((num_envs, n), dtype=np.int64)

    def add_step(
        self, result: StepResult, filter_stats: FilterStepStats | None = None
    ) -> list[EpisodeRecord]:
        self._violations += result.violation
        self._contacts += result.contact
        np.minimum(self._min_clearance, result.clearance, out=self._min_clearance)
        if filter_stats is not None:
            self._filter_calls += filter_stats.filtered
            self._interventions += filter_stats.intervened & filter_stats.filtered
            self._correction += np.where(filter_stats.filtered, filter_stats.correction_size, 0.0)
            self._backups += filter_stats.backup & filter_stats.filtered
        done = np.flatnonzero(result.done)
        records = [self._record(b, k, result) for k, b in enumerate(done)]
        for array, fill in ((self._violations, 0), (self._contacts, 0), (self._min_clearance, np.inf),
                            (self._filter_calls, 0), (self._interventions, 0), (self._correction, 0.0),
                            (self._backups, 0)):
            array[done] = fill
        return records

    def _record(self, b: int, k: int, result: StepResult) -> EpisodeRecord:
        sc = self.scenario
        steps = int(result.final_steps[k])
        captured = bool(result.terminated[b])
        robots = [
            RobotRecord(
                name=spec.name, role=spec.role, policy=self.policy_names[i], steps=steps,
                violation_steps=int(self._violations[b, i]), contact_steps=int(self._contacts[b, i]),
                min_clearance=float(self._min_clearance[b, i]),
                filter_calls=int(self._filter_calls[b, i]),
                interventions=int(self._interventions[b, i]),
                correction_size_sum=float(self._correction[b, i]), backups=int(self._backups[b, i]),
            )
            for i, spec in enumerate(sc.robots)
        ]
        return EpisodeRecord(
            scenario=sc.name, seed=int(result.final_seed[k]), captured=captured, steps=steps,
            duration_s=steps * sc.dt, capture_time_s=steps * sc.dt if captured else None, robots=robots,
        )


# --------------------------------------------------------------------------- summaries


def _rate(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def summarize(records: Sequence[EpisodeRecord]) -> dict[str, Any]:
    """The brief's metrics over ``records``: episode-level and per role."""
    episodes = len(records)
    captured = [r for r in records if r.captured]
    times = np.array([r.capture_time_s for r in captured], dtype=float)
    out: dict[str, Any] = {
        "episodes": episodes,
        "capture_rate": _rate(len(captured), episodes),
        "capture_time_mean_s": float(times.mean()) if times.size else math.nan,
        "capture_time_median_s": float(np.median(times)) if times.size else math.nan,
        "roles": {},
    }
    roles = sorted({robot.role for r in records for robot in r.robots})
    for role in roles:
        robots = [robot for r in records for robot in r.robots if robot.role == role]
        episode_violation = [any(x.violation_steps for x in r.robots if x.role == role) for r in records]
        steps = sum(x.steps for x in robots)
        calls = sum(x.filter_calls for x in robots)
        interventions = sum(x.interventions for x in robots)
        out["roles"][role] = {
            "policies": sorted({x.policy for x in robots}),
            "robot_steps": steps,
            "violation_step_rate": _rate(sum(x.violation_steps for x in robots), steps),
            "violation_episode_rate": _rate(sum(episode_violation), episodes),
            "min_clearance_m": min((x.min_clearance for x in robots), default=math.nan),
            "filter_calls": calls,
            "intervention_rate": _rate(interventions, calls),
            "intervention_mean_size": _rate(sum(x.correction_size_sum for x in robots), calls),
            "backup_rate": _rate(sum(x.backups for x in robots), calls),
        }
    return out


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100.0 * x:.2f} %"


def format_summary(summary: dict[str, Any], title: str = "") -> str:
    """The metrics table as text."""
    lines = [title] if title else []
    lines += [
        f"episodes                 {summary['episodes']}",
        f"capture rate             {_pct(summary['capture_rate'])}",
        f"time to capture          mean {summary['capture_time_mean_s']:.2f} s, "
        f"median {summary['capture_time_median_s']:.2f} s",
    ]
    policies = {role: ",".join(m["policies"]) for role, m in summary["roles"].items()}
    width = max([34, *(len(text) + 2 for text in policies.values())])
    header = f"{'role':<9}{'policy':<{width}}{'viol/step':>11}{'viol/ep':>10}{'min clr m':>11}" \
             f"{'interv.':>10}{'mean size':>11}{'backup':>9}"
    lines += ["", header, "-" * len(header)]
    for role, m in summary["roles"].items():
        calls = m["filter_calls"]
        lines.append(
            f"{role:<9}{policies[role]:<{width}}{_pct(m['violation_step_rate']):>11}"
            f"{_pct(m['violation_episode_rate']):>10}{m['min_clearance_m']:>11.3f}"
            f"{(_pct(m['intervention_rate']) if calls else 'no filter'):>10}"
            f"{(format(m['intervention_mean_size'], '.4f') if calls else '-'):>11}"
            f"{(_pct(m['backup_rate']) if calls else '-'):>9}"
        )
    return "\n".join(lines)


def write_jsonl(records: Iterable[EpisodeRecord], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for record in records:
            f.write(record.to_json() + "\n")


def read_jsonl(path: str | Path) -> list[EpisodeRecord]:
    return [EpisodeRecord.from_json(line) for line in Path(path).read_text().splitlines() if line.strip()]
