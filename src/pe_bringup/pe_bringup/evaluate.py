"""``pe-eval``: headless evaluation of any policies, with or without the safety filter.

Plays ``--episodes`` held-out episodes of a scenario in the batch simulator,
prints the metrics table and writes one JSON line per episode
(``episodes.jsonl``, streamed as each episode finishes and sorted by seed at the
end) and the summary (``summary.json``, with the scenario's content hash and each
policy file's SHA-256) to ``--out``. The folder is checked writable before any
episode is played; Ctrl-C keeps the finished episodes and writes their summary.
A scenario with variants (evader speeds, arena sizes) plays ``--episodes`` in each.

    pe-eval --scenario bench_1v1_flee --episodes 1000 \\
        --pursuer scripted:proportional_navigation --evader scripted:flee --filter all
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from pe_policy.evaluate import evaluate, filtered_robot_indices, policy_sources, provenance
from pe_policy.policy import DEFAULT_SOURCES
from pe_sim.cli import (
    EXIT_INTERRUPTED,
    check_seed_range,
    console_main,
    positive_int,
    progress_bar,
    seed_int,
    writable_dir,
)
from pe_sim.evaluation import EVAL_SEED_BASE
from pe_sim.metrics import EpisodeRecord, format_summary, summarize, write_jsonl
from pe_sim.scenario import load_scenario


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pe-eval", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--scenario", default="bench_1v1_flee", help="scenario name or YAML path")
    p.add_argument("--episodes", type=positive_int, default=200)
    p.add_argument("--seed", type=seed_int, default=EVAL_SEED_BASE, help="first episode seed (held out)")
    p.add_argument("--pursuer", default=DEFAULT_SOURCES["pursuer"],
                   help="policy of every pursuer: scripted:<kind>, a shipped policy or a .onnx file")
    p.add_argument("--evader", default=DEFAULT_SOURCES["evader"], help="policy of every evader")
    p.add_argument("--robot", action="append", default=[], metavar="NAME=SOURCE",
                   help="policy of one robot, overriding its role's")
    p.add_argument("--filter", default="all",
                   help="robots behind the VCP-CBF filter: none, all, pursuer, evader or names")
    p.add_argument("--filter-config", default="vcp_cbf", help="filter config name or YAML path")
    p.add_argument("--num-envs", type=positive_int, default=256, help="episodes simulated in parallel")
    p.add_argument("--out", default=None, help="results folder (default results/eval-<time>)")
    p.add_argument("--strict", action="store_true",
                   help="refuse, instead of warning about, a policy whose operating envelope the "
                        "scenario leaves")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


@console_main("pe-eval")
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_seed_range(parser, args.seed, args.episodes)
    scenario = load_scenario(args.scenario)
    by_role = {"pursuer": args.pursuer, "evader": args.evader}
    sources = policy_sources(scenario, by_role, args.robot)
    filtered_robot_indices(scenario, args.filter)
    identity = provenance(scenario, sources)
    out = writable_dir(args.out or f"results/eval-{time.strftime('%Y%m%d-%H%M%S')}")
    start = time.perf_counter()
    title = f"scenario {scenario.name} ({identity['scenario_hash']})"
    stream = RecordStream(out / "episodes.jsonl")
    kept = stream.records
    total = args.episodes * len(scenario.variants_of())
    with stream, progress_bar(total, "pe-eval", disable=True if args.no_progress else None) as bar:

        def on_record(record: EpisodeRecord) -> None:
            stream.write(record)
            bar.update(1)

        try:
            result = evaluate(scenario, by_role, args.episodes, seed=args.seed, robots=args.robot,
                              filter=args.filter, filter_config=args.filter_config,
                              num_envs=args.num_envs, on_record=on_record, strict=args.strict)
        except KeyboardInterrupt:
            bar.close()
            summary = dict(summarize(kept), scenario=scenario.name, seed=args.seed, interrupted=True,
                           episodes_requested=args.episodes, **identity)
            _write_summary(out, summary, time.perf_counter() - start)
            print(f"pe-eval: interrupted: kept {len(kept)} of {args.episodes} finished episodes "
                  f"in {out}/", file=sys.stderr)
            return EXIT_INTERRUPTED
    _sort_by_seed(result.records, out / "episodes.jsonl")
    summary = _write_summary(out, result.summary, time.perf_counter() - start)
    last_seed = args.seed + args.episodes - 1
    print(format_summary(summary, f"{title}, seeds {args.seed}..{last_seed}"))
    for name, part in summary.get("variants", {}).items():
        print(f"  {name:<36} capture {100 * part['capture_rate']:5.1f} %")
    steps = sum(r.steps for r in result.records)
    print(f"\n{len(result.records)} episodes, {steps} steps in {summary['wall_time_s']:.1f} s; "
          f"records in {out}/")
    return 0


class RecordStream:
    """``episodes.jsonl``, one line per record written and flushed as each episode
    finishes; the file is opened with the first record (or on close), so an evaluation
    refused before it plays leaves no empty file behind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[EpisodeRecord] = []
        self._file: IO[str] | None = None

    def write(self, record: EpisodeRecord) -> None:
        if self._file is None:
            self._file = self.path.open("w")
        self._file.write(record.to_json() + "\n")
        self._file.flush()
        self.records.append(record)

    def __enter__(self) -> RecordStream:
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        if self._file is None and kind is None:  # finished (or interrupted) before any record
            self._file = self.path.open("w")
        if self._file is not None:
            self._file.close()


def _write_summary(out: Path, summary: dict[str, Any], wall: float) -> dict[str, Any]:
    summary = dict(summary, wall_time_s=wall)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def _sort_by_seed(records: list[EpisodeRecord], path: Path) -> None:
    """Rewrite the streamed (completion-order) records in seed order, atomically."""
    partial = path.with_suffix(".jsonl.sorting")
    write_jsonl(records, partial)
    os.replace(partial, path)


if __name__ == "__main__":
    sys.exit(main())
