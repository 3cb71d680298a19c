#!/usr/bin/env python3
"""Tune the benchmark's evader/pursuer speed ratio against scripted pursuers.

Plays the first ``--episodes`` seeds of a scenario with every evader's v_max set
to ``ratio * (the pursuers' v_max)`` for each ratio of ``--ratios``, and prints
the capture rate of pure pursuit and of proportional navigation against the
scripted evader(s) (``flee`` by default), plus the median time to capture (ttc) and
the episode rate of safety violations of each role (P pursuers, E evaders). Without ``--ratios`` the
scenario is played as configured. Episodes are pure functions of their seeds,
so a run is reproducible to the last digit.

    .venv/bin/python scripts/tune_benchmark.py --scenario bench_1v1_flee \
        --ratios 0.85,0.9,0.95,1.0 --episodes 1000
    .venv/bin/python scripts/tune_benchmark.py --scenario bench_1v1_flee --evaders flee,random

The benchmark target: the better of the two pursuers captures the ``flee``
evader in 30-70 % of episodes (aim: 50 %).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time

from pe_sim.evaluation import EVAL_SEED_BASE, run_episodes
from pe_sim.metrics import summarize
from pe_sim.scenario import Scenario, load_scenario
from pe_sim.scripted import make_scripted

PURSUERS = ("pure_pursuit", "proportional_navigation")


def with_speed_ratio(scenario: Scenario, ratio: float) -> Scenario:
    """``scenario`` with every evader's v_max = ratio * the fastest pursuer's v_max."""
    v_p = max(r.v_max for r in scenario.robots if r.role == "pursuer")
    robots = tuple(dataclasses.replace(r, v_max=ratio * v_p) if r.role == "evader" else r
                   for r in scenario.robots)
    return dataclasses.replace(scenario, robots=robots)


def play(scenario: Scenario, pursuer: str, evader: str, episodes: int, seed: int = 0,
         batch: int = 1000) -> dict:
    """Metrics (:func:`pe_sim.metrics.summarize`) of the episodes with seeds ``seed ..
    seed + episodes - 1``, every pursuer and every evader driven by the given kinds."""
    kinds = [pursuer if r.role == "pursuer" else evader for r in scenario.robots]
    actors = [make_scripted(k, scenario, i) for i, k in enumerate(kinds)]
    records = run_episodes(scenario, actors, episodes, seed=seed, num_envs=batch, policy_names=kinds)
    return summarize(records)


def describe(summary: dict) -> str:
    ttc = summary["capture_time_median_s"]
    viol = {role: 100 * m["violation_episode_rate"] for role, m in summary["roles"].items()}
    return (f"{100 * summary['capture_rate']:5.1f} % (median ttc "
            f"{'  -  ' if math.isnan(ttc) else f'{ttc:5.1f}'} s; episodes with a violation: "
            f"P {viol.get('pursuer', math.nan):4.1f} % E {viol.get('evader', math.nan):4.1f} %)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="bench_1v1_flee", help="scenario name or YAML path")
    parser.add_argument("--ratios", help="comma-separated evader/pursuer speed ratios to sweep "
                        "(default: the scenario as configured)")
    parser.add_argument("--evaders", default="flee", help="comma-separated scripted evader kinds")
    parser.add_argument("--pursuers", default=",".join(PURSUERS),
                        help="comma-separated scripted pursuer kinds")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0,
                        help=f"first episode seed (0: training range; pe-eval uses {EVAL_SEED_BASE})")
    parser.add_argument("--batch", type=int, default=1000, help="environments stepped together")
    args = parser.parse_args(argv)

    base = load_scenario(args.scenario)
    pursuers = [p for p in args.pursuers.split(",") if p]
    evaders = [e for e in args.evaders.split(",") if e]
    v_p = max(r.v_max for r in base.robots if r.role == "pursuer")
    configured = [r.v_max / v_p for r in base.robots if r.role == "evader"]
    ratios = ([float(r) for r in args.ratios.split(",")] if args.ratios else [None])
    print(f"scenario {base.name} ({base.source}); {args.episodes} episodes from seed {args.seed}; "
          f"configured evader/pursuer speed ratio {', '.join(f'{c:.3f}' for c in configured)}")
    for evader in evaders:
        for ratio in ratios:
            scenario = base if ratio is None else with_speed_ratio(base, ratio)
            label = "as configured" if ratio is None else f"ratio {ratio:.3f}"
            rates = {}
            for pursuer in pursuers:
                t0 = time.perf_counter()
                summary = play(scenario, pursuer, evader, args.episodes, args.seed, args.batch)
                rates[pursuer] = summary["capture_rate"]
                print(f"  {label:14s} {pursuer:24s} vs {evader:7s}: {describe(summary)}"
                      f"  [{time.perf_counter() - t0:4.1f} s]", flush=True)
            if len(rates) > 1:
                best = max(rates, key=rates.get)
                print(f"  {label:14s} better pursuer: {best} {100 * rates[best]:.1f} %", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
