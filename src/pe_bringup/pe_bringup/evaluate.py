"""``pe-eval``: headless evaluation of any policies, with or without the safety filter.

Plays ``--episodes`` held-out episodes of a scenario in the batch simulator,
prints the metrics table of BRIEF.md and writes one JSON line per episode
(``episodes.jsonl``) and the summary (``summary.json``) to ``--out``.

    pe-eval --scenario bench_1v1_flee --episodes 1000 \\
        --pursuer scripted:proportional_navigation --evader scripted:flee --filter all
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pe_policy.policy import load_policy
from pe_sim.evaluation import EVAL_SEED_BASE, run_episodes
from pe_sim.metrics import format_summary, summarize, write_jsonl
from pe_sim.scenario import Scenario, load_scenario


def policy_sources(scenario: Scenario, by_role: dict[str, str], overrides: list[str]) -> list[str]:
    """The policy source of each robot: its role's default unless ``name=source`` overrides it."""
    sources = [by_role[robot.role] for robot in scenario.robots]
    for item in overrides:
        name, _, source = item.partition("=")
        if not source:
            raise SystemExit(f"--robot expects NAME=SOURCE, got {item!r}")
        sources[scenario.robot_index(name)] = source
    return sources


def filtered_robot_indices(scenario: Scenario, which: str) -> list[int]:
    """Robots named by ``--filter``: none, all, a role, or comma-separated robot names."""
    if which == "none":
        return []
    if which == "all":
        return list(range(scenario.num_robots))
    if which in ("pursuer", "evader"):
        return list(scenario.indices(which))
    return [scenario.robot_index(name) for name in which.split(",")]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pe-eval", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--scenario", default="bench_1v1_flee", help="scenario name or YAML path")
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--seed", type=int, default=EVAL_SEED_BASE, help="first episode seed (held out)")
    p.add_argument("--pursuer", default="scripted:proportional_navigation",
                   help="policy of every pursuer: scripted:<kind> or a .onnx file")
    p.add_argument("--evader", default="scripted:flee", help="policy of every evader")
    p.add_argument("--robot", action="append", default=[], metavar="NAME=SOURCE",
                   help="policy of one robot, overriding its role's")
    p.add_argument("--filter", default="none",
                   help="robots behind the VCP-CBF filter: none, all, pursuer, evader or names")
    p.add_argument("--filter-config", default="vcp_cbf", help="filter config name or YAML path")
    p.add_argument("--num-envs", type=int, default=256, help="episodes simulated in parallel")
    p.add_argument("--out", default=None, help="results folder (default results/eval-<time>)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    scenario = load_scenario(args.scenario)
    sources = policy_sources(scenario, {"pursuer": args.pursuer, "evader": args.evader}, args.robot)
    policies = [load_policy(src, scenario, i) for i, src in enumerate(sources)]
    filtered = filtered_robot_indices(scenario, args.filter)
    action_filter = None
    if filtered:
        from pe_safety_filter.config import load_filter_config
        from pe_safety_filter.filter import BatchSafetyFilter

        batch_filter = BatchSafetyFilter(load_filter_config(args.filter_config), scenario)

        def action_filter(pose, u_nom, obstacles, n_obstacles, gains=None):
            return batch_filter.filter(pose, u_nom, obstacles, n_obstacles, gains=gains, robots=filtered)

    # Policies with per-constraint class-K gains (BarrierNet) hand them to the filter's QP.
    from pe_policy.barriernet_policy import gains_source

    filter_gains = gains_source(batch_filter, policies, filtered) if filtered else None
    names = [p.name + (" +filter" if i in filtered else "") for i, p in enumerate(policies)]
    start = time.perf_counter()
    records = run_episodes(scenario, [p.act for p in policies], args.episodes, seed=args.seed,
                           num_envs=args.num_envs, action_filter=action_filter,
                           filtered_robots=filtered, policy_names=names, filter_gains=filter_gains)
    wall = time.perf_counter() - start
    summary = summarize(records)
    summary.update(scenario=scenario.name, seed=args.seed, policies=dict(
        zip([r.name for r in scenario.robots], names, strict=True)), wall_time_s=wall)
    out = Path(args.out or f"results/eval-{time.strftime('%Y%m%d-%H%M%S')}")
    write_jsonl(records, out / "episodes.jsonl")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    last_seed = args.seed + args.episodes - 1
    print(format_summary(summary, f"scenario {scenario.name}, seeds {args.seed}..{last_seed}"))
    steps = sum(r.steps for r in records)
    print(f"\n{len(records)} episodes, {steps} steps in {wall:.1f} s; records in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
