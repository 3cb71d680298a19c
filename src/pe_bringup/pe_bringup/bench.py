"""``pe-ros-bench``: the ROS 2 graph's performance on this machine, with the real nodes.

1. Real time: 1v1 at 1/dt with the safety filter on both robots for
   ``--duration`` seconds of sim time (default 60; the README's 10-minute figure
   is ``--duration 600``). Reports missed steps (commands that had not arrived
   when the sim stepped, and late sim ticks), the end-to-end loop latency
   (state published -> its command received at the sim) p50/p99 per robot, and
   each node's callback compute time p50/p99, wall clock and CPU time (the
   difference is time the process was preempted: on a shared machine, the
   neighbours).
2. Lockstep: ``--lockstep-episodes`` episodes, throughput in steps/s.

Targets: 0 missed steps; loop latency p50 <= 2 ms, p99 <= 5 ms;
filter and policy compute p99 <= 0.3 ms; lockstep >= 300 steps/s.

    pe-ros-bench                                  # 60 s real time + 20 lockstep episodes
    pe-ros-bench --duration 600                   # the 10-minute figure
    pe-ros-bench --executor single_threaded       # compare executors
    pe-ros-bench --launch-prefix "chrt -b 0"      # every node under SCHED_BATCH
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pe_bringup.graph import EvalOptions, eval_graph
from pe_bringup.launcher import Launcher
from pe_sim.cli import console_main

TARGETS = {"loop_p50_ms": 2.0, "loop_p99_ms": 5.0, "filter_p99_ms": 0.3, "policy_p99_ms": 0.3,
           "lockstep_steps_per_s": 300.0}


def run_graph(options: EvalOptions, domain: int, log: Path, timeout: float) -> dict[str, Any]:
    """Run the graph to its end; return the timing files' contents by node."""
    out = Path(options.out)
    for stale in (out / "timing").glob("*.json"):
        stale.unlink()
    with log.open("w") as sink:
        launcher = Launcher(eval_graph(options), {**os.environ, "ROS_DOMAIN_ID": str(domain)}, output=sink)
        try:
            launcher.start()
            ok, reason = launcher.wait("sim", timeout=timeout)
        except KeyboardInterrupt:
            ok, reason = False, "interrupted"
        finally:
            launcher.stop()
    if not ok:
        raise SystemExit(f"pe-ros-bench: graph failed: {reason} (log: {log})")
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "timing").glob("*.json"))}


def summarize_run(timing: dict[str, Any]) -> dict[str, Any]:
    sim = timing["sim"]
    out: dict[str, Any] = {
        "steps": sim["steps"], "wall_time_s": sim["wall_time_s"], "steps_per_s": sim["steps_per_s"],
        "missed_commands": sum(sim["missed_commands"].values()),
        "late_ticks": sim["counters"].get("late_ticks", 0),
        "loop_latency": {k.split("/", 1)[1]: {"p50_ms": v["p50_ms"], "p99_ms": v["p99_ms"],
                                              "max_ms": v["max_ms"]}
                         for k, v in sim["series"].items() if k.startswith("loop_latency/")},
        "compute": {},
    }
    for tag, data in timing.items():
        c = data["series"]["compute_time"]
        cpu = data["series"].get("compute_cpu_time", {})
        out["compute"][tag] = {"p50_ms": c["p50_ms"], "p99_ms": c["p99_ms"], "max_ms": c["max_ms"],
                               "count": c["count"], "cpu_p50_ms": cpu.get("p50_ms"),
                               "cpu_p99_ms": cpu.get("p99_ms")}
    return out


def format_run(title: str, s: dict[str, Any], realtime: bool) -> str:
    lines = [title, "-" * len(title)]
    lines.append(f"steps {s['steps']} in {s['wall_time_s']:.1f} s ({s['steps_per_s']:.1f} steps/s)")
    if realtime:
        lines.append(f"missed steps: {s['missed_commands']} commands not in time, "
                     f"{s['late_ticks']} late sim ticks")
    for robot, v in s["loop_latency"].items():
        lines.append(f"loop latency {robot:<10} p50 {v['p50_ms']:.3f} ms  p99 {v['p99_ms']:.3f} ms  "
                     f"max {v['max_ms']:.3f} ms")
    for tag, v in s["compute"].items():
        lines.append(f"compute {tag:<22} wall p50 {v['p50_ms']:.3f} p99 {v['p99_ms']:.3f} max "
                     f"{v['max_ms']:.3f} ms | cpu p50 {v['cpu_p50_ms']:.3f} p99 {v['cpu_p99_ms']:.3f} ms "
                     f"({v['count']} steps)")
    return "\n".join(lines)


def check_targets(rt: dict[str, Any] | None, ls: dict[str, Any] | None) -> list[str]:
    lines = []

    def mark(ok: bool) -> str:
        return "ok  " if ok else "MISS"

    if rt is not None:
        missed = rt["missed_commands"] + rt["late_ticks"]
        lines.append(f"{mark(missed == 0)} missed steps {missed} (target 0)")
        for robot, v in rt["loop_latency"].items():
            lines.append(f"{mark(v['p50_ms'] <= TARGETS['loop_p50_ms'])} loop latency {robot} p50 "
                         f"{v['p50_ms']:.3f} ms (target <= {TARGETS['loop_p50_ms']})")
            lines.append(f"{mark(v['p99_ms'] <= TARGETS['loop_p99_ms'])} loop latency {robot} p99 "
                         f"{v['p99_ms']:.3f} ms (target <= {TARGETS['loop_p99_ms']})")
        for tag, v in rt["compute"].items():
            kind = tag.rsplit(".", 1)[-1]
            key = {"policy": "policy_p99_ms", "safety_filter": "filter_p99_ms"}.get(kind)
            if key:
                lines.append(f"{mark(v['p99_ms'] <= TARGETS[key])} {tag} compute p99 {v['p99_ms']:.3f} ms "
                             f"wall (target <= {TARGETS[key]})")
                lines.append(f"{mark(v['cpu_p99_ms'] <= TARGETS[key])} {tag} compute p99 "
                             f"{v['cpu_p99_ms']:.3f} ms CPU (target <= {TARGETS[key]})")
    if ls is not None:
        rate = ls["steps_per_s"]
        lines.append(f"{mark(rate >= TARGETS['lockstep_steps_per_s'])} lockstep {rate:.0f} steps/s "
                     f"(target >= {TARGETS['lockstep_steps_per_s']:.0f})")
    return lines


@console_main("pe-ros-bench")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pe-ros-bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--duration", type=float, default=60.0, help="real-time run, seconds of sim time")
    p.add_argument("--lockstep-episodes", type=int, default=20, help="episodes of the lockstep run")
    p.add_argument("--scenario", default="bench_1v1_flee")
    p.add_argument("--pursuer", default=EvalOptions.pursuer)
    p.add_argument("--evader", default=EvalOptions.evader)
    p.add_argument("--executor", default="events", choices=("events", "single_threaded"))
    p.add_argument("--launch-prefix", default="", metavar="CMD",
                   help="command every node runs under, e.g. 'chrt -b 0' (SCHED_BATCH)")
    p.add_argument("--skip-realtime", action="store_true")
    p.add_argument("--skip-lockstep", action="store_true")
    p.add_argument("--domain-id", type=int, default=None,
                   help="ROS_DOMAIN_ID (default: a free domain, claimed for the run)")
    p.add_argument("--out", default=None, help="results folder (default results/ros-bench-<time>)")
    args = p.parse_args(argv)
    out = Path(args.out or f"results/ros-bench-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    from pe_ros.domain import claim_domain

    with claim_domain(args.domain_id) as claim:
        return run_benches(args, out, claim.domain_id)


def run_benches(args: argparse.Namespace, out: Path, domain: int) -> int:
    """The real-time and lockstep runs on ``domain``; prints and writes bench.json."""
    base = dict(scenario=args.scenario, pursuer=args.pursuer, evader=args.evader, filter="all",
                executor=args.executor, launch_prefix=args.launch_prefix)
    results: dict[str, Any] = {"executor": args.executor, "launch_prefix": args.launch_prefix,
                               "scenario": args.scenario, "targets": TARGETS}
    rt = ls = None
    if not args.skip_realtime:
        print(f"pe-ros-bench: real time, {args.duration:g} s of sim time, executor {args.executor}"
              + (f", launch prefix {args.launch_prefix!r}" if args.launch_prefix else "") + " ...",
              flush=True)
        options = EvalOptions(**base, mode="realtime", episodes=0, duration=args.duration,
                              out=str(out / "realtime"))
        rt = summarize_run(run_graph(options, domain, out / "realtime.log", args.duration * 3 + 180))
        results["realtime"] = rt
        print(format_run(f"real time ({args.executor})", rt, True), flush=True)
    if not args.skip_lockstep:
        print(f"\npe-ros-bench: lockstep, {args.lockstep_episodes} episodes ...", flush=True)
        options = EvalOptions(**base, mode="lockstep", episodes=args.lockstep_episodes,
                              out=str(out / "lockstep"))
        ls = summarize_run(run_graph(options, domain, out / "lockstep.log", 60 + 30 * args.lockstep_episodes))
        results["lockstep"] = ls
        print("\n" + format_run(f"lockstep ({args.executor})", ls, False), flush=True)
    lines = check_targets(rt, ls)
    print("\ntargets:\n" + "\n".join("  " + x for x in lines))
    (out / "bench.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"\nresults in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
