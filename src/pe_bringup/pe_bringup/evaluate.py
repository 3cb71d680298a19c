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

from pe_policy.evaluate import evaluate
from pe_sim.evaluation import EVAL_SEED_BASE
from pe_sim.metrics import format_summary, write_jsonl


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
    start = time.perf_counter()
    result = evaluate(args.scenario, {"pursuer": args.pursuer, "evader": args.evader}, args.episodes,
                      seed=args.seed, robots=args.robot, filter=args.filter,
                      filter_config=args.filter_config, num_envs=args.num_envs)
    wall = time.perf_counter() - start
    summary = dict(result.summary, wall_time_s=wall)
    out = Path(args.out or f"results/eval-{time.strftime('%Y%m%d-%H%M%S')}")
    write_jsonl(result.records, out / "episodes.jsonl")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    last_seed = args.seed + args.episodes - 1
    print(format_summary(summary, f"scenario {result.scenario.name}, seeds {args.seed}..{last_seed}"))
    steps = sum(r.steps for r in result.records)
    print(f"\n{len(result.records)} episodes, {steps} steps in {wall:.1f} s; records in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
