"""The reckless evaluation: a deliberately unsafe nominal policy through the filter.

Pursuers drive pure pursuit (straight at the nearest evader, ignoring
obstacles); evaders flee. Every robot's command goes through
:class:`~pe_safety_filter.filter.BatchSafetyFilter` (``--no-filter``: straight to
the simulator) and the batch simulation measures safety from true geometry
(its violation flags, independent of the barriers: an overlap at any time within
a step counts, not only at its end). Metrics per robot role, plus the worst
depth (the least clearance seen, negative = overlap) and how many steps ended
in an overlap that was pushed out (end-of-step contacts). Each of the N environments plays exactly one episode
(seeds ``seed .. seed + N - 1``).

    pe-filter-eval --episodes 1000                 # every default scenario, filtered
    pe-filter-eval --scenario seed_1v1_2obs --no-filter
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np

from pe_safety_filter.config import FilterConfig, load_filter_config
from pe_safety_filter.filter import BatchSafetyFilter
from pe_sim.batch import BatchSim
from pe_sim.scenario import Scenario, load_scenario, shipped_scenarios
from pe_sim.scripted import WorldView, make_scripted

DEFAULT_SCENARIOS = ("seed_1v1_2obs", "bench_1v1_flee", "open_1v1", "pursuit_2v1")


@dataclass
class RoleStats:
    """Counts for one robot role."""

    robot_steps: int = 0
    violation_steps: int = 0
    violation_episodes: int = 0
    robot_episodes: int = 0
    calls: int = 0
    interventions: int = 0
    correction_sum: float = 0.0
    backups: int = 0
    end_contacts: int = 0
    min_clearance: float = float("inf")


@dataclass
class EvalResult:
    """Outcome of :func:`evaluate` for one scenario."""

    scenario: str
    filtered: bool
    episodes: int
    captures: int
    capture_steps: list[int]
    dt: float
    roles: dict[str, RoleStats] = field(default_factory=dict)
    wall_time_s: float = 0.0

    @property
    def capture_rate(self) -> float:
        return self.captures / self.episodes

    @property
    def total_violation_steps(self) -> int:
        return sum(r.violation_steps for r in self.roles.values())

    def report(self) -> str:
        """The printed summary."""
        head = (f"scenario {self.scenario} | filter {'on' if self.filtered else 'OFF'} | "
                f"{self.episodes} episodes | pursuers pure_pursuit (ignores obstacles) vs evaders flee "
                f"| {self.wall_time_s:.1f} s")
        t = np.array(self.capture_steps, dtype=float) * self.dt
        cap = (f"capture rate {self.capture_rate:.3f} ({self.captures}/{self.episodes}); time to capture "
               + (f"mean {t.mean():.2f} s, median {np.median(t):.2f} s" if t.size else "n/a"))
        lines = [head, "  " + cap,
                 "  role     robot-steps  violating steps (rate)  violating episodes (rate)"
                 "  end contacts  worst depth (m)  least clearance (m)"
                 + ("  intervention rate  mean size (intervened)  backup rate" if self.filtered else "")]
        for role, r in self.roles.items():
            depth = max(0.0, -r.min_clearance)
            line = (f"  {role:<8} {r.robot_steps:>11d}  {r.violation_steps:>8d} "
                    f"({r.violation_steps / max(r.robot_steps, 1):.6f})"
                    f"  {r.violation_episodes:>10d} ({r.violation_episodes / max(r.robot_episodes, 1):.4f})"
                    f"  {r.end_contacts:>12d}  {depth:>15.3e}  {r.min_clearance:>19.3e}")
            if self.filtered:
                line += (f"  {r.interventions / max(r.calls, 1):>17.4f}"
                         f"  {r.correction_sum / max(r.interventions, 1):>22.4f}"
                         f"  {r.backups / max(r.calls, 1):>11.5f}")
            lines.append(line)
        return "\n".join(lines)


def evaluate(
    scenario: Scenario,
    episodes: int,
    config: FilterConfig | None,
    seed: int = 0,
) -> EvalResult:
    """Play ``episodes`` episodes (one per environment) with every robot filtered by
    ``config`` (None: unfiltered)."""
    t0 = time.perf_counter()
    sim = BatchSim(scenario, num_envs=episodes, seed=seed)
    view = WorldView.of(sim)
    policies = [make_scripted("pure_pursuit" if r.role == "pursuer" else "flee", scenario, i)
                for i, r in enumerate(scenario.robots)]
    bf = BatchSafetyFilter(config, scenario) if config is not None else None
    roles = [r.role for r in scenario.robots]
    role_names = list(dict.fromkeys(roles))
    masks = {role: np.array([x == role for x in roles]) for role in role_names}
    stats = {role: RoleStats(robot_episodes=episodes * int(masks[role].sum())) for role in role_names}
    live = np.ones(episodes, dtype=bool)
    violated = np.zeros((episodes, len(roles)), dtype=bool)
    captures, capture_steps = 0, []
    while live.any():
        actions = np.stack([p(view) for p in policies], axis=1)
        if bf is not None:
            actions, fs = bf.filter(sim.pose, actions, sim.obstacles, sim.n_obstacles)
        res = sim.step(actions)
        for role in role_names:
            m = masks[role]
            s = stats[role]
            s.robot_steps += int(live.sum()) * int(m.sum())
            s.violation_steps += int(res.violation[live][:, m].sum())
            s.end_contacts += int(res.contact[live][:, m].sum())
            if live.any():
                s.min_clearance = min(s.min_clearance, float(res.clearance[live][:, m].min()))
            if bf is not None:
                s.calls += int(live.sum()) * int(m.sum())
                s.interventions += int(fs.intervened[live][:, m].sum())
                s.correction_sum += float(fs.correction_size[live][:, m][fs.intervened[live][:, m]].sum())
                s.backups += int(fs.backup[live][:, m].sum())
        violated[live] |= res.violation[live]
        done = np.flatnonzero(res.done)
        for k, env in enumerate(done):
            if not live[env]:
                continue
            live[env] = False
            if res.terminated[env]:
                captures += 1
                capture_steps.append(int(res.final_steps[k]))
    for role in role_names:
        stats[role].violation_episodes = int(violated[:, masks[role]].sum())
    return EvalResult(scenario=scenario.name, filtered=bf is not None, episodes=episodes,
                      captures=captures, capture_steps=capture_steps, dt=scenario.dt, roles=stats,
                      wall_time_s=time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", help="scenario name or path (repeatable); "
                        f"default: those of {list(DEFAULT_SCENARIOS)} that exist")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--config", default="vcp_cbf", help="filter config name or path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-filter", action="store_true", help="send the nominal commands unfiltered")
    args = parser.parse_args(argv)
    names = args.scenario or [n for n in DEFAULT_SCENARIOS if n in shipped_scenarios()]
    config = None if args.no_filter else load_filter_config(args.config)
    for name in names:
        result = evaluate(load_scenario(name), args.episodes, config, seed=args.seed)
        print(result.report(), flush=True)


if __name__ == "__main__":
    main()
