"""What Ray costs on this machine: start-up, idle memory, per-task overhead against the
same jobs run here (docs/ray.md quotes its output).

    .venv/bin/python scripts/ray_overhead.py               # needs the Ray extra: make ray
    .venv/bin/python scripts/ray_overhead.py --tasks 100 --chunk-episodes 100

1. start-up: ``ray.init()`` of a new local instance (GCS, raylet, agents), then the
   first task (a worker process started, its imports);
2. idle memory: resident memory of the instance's processes, no task running;
3. per-task overhead of a no-op task on warm workers (submit and get, one at a time):
   median and p99;
4. the same ``--tasks`` report chunks (``pe_bringup.report.run.play_chunk``, the scripted
   PN pursuer against flee, ``--chunk-episodes`` each) through :func:`pe_sim.jobs.run_jobs`
   here and on Ray (a fresh local instance, its start-up included): wall times and records
   equal;
5. with ``--sweep-steps N``: ``pe-train <--sweep-config> --seeds 1-5 --total-steps N`` here
   and with ``--ray`` (wall times, final evaluation included, and whether the five ONNX
   files are equal).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pe_bringup.report.matrix import FLEE, PN, Row, ScenarioCase
from pe_sim.jobs import LOCAL_RAY, Job, run_jobs
from pe_sim.scenario import load_scenario


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from ``/proc/<pid>/stat``)."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    out, frontier = [], [pid]
    while frontier:
        children = [p for p, pp in parent.items() if pp in frontier]
        out += children
        frontier = children
    return out


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total / 2**20


def noop() -> None:
    return None


def chunk_jobs(tasks: int, episodes: int) -> list[Job]:
    scenario = load_scenario("bench_1v1_flee")
    case = ScenarioCase("bench_1v1_flee", "benchmark", "bench_1v1_flee")
    row = Row(block="overhead", method=PN, opponent=FLEE, scenario=case, episodes=episodes, seed=10**9)
    return [Job(f"chunk{i}", "pe_bringup.report.run:play_chunk",
                {"row": row, "scenario": scenario, "seed": 10**9 + i * episodes, "episodes": episodes,
                 "backend": "batch", "filter_config": "vcp_cbf", "num_envs": 64})
            for i in range(tasks)]


def startup_and_tasks(tasks: int) -> dict[str, float]:
    import ray

    t0 = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    init_s = time.perf_counter() - t0
    task = ray.remote(noop).options(num_cpus=1)
    t0 = time.perf_counter()
    ray.get(task.remote())
    first_s = time.perf_counter() - t0
    time.sleep(5)
    idle = rss_mib(descendants(os.getpid()))
    rtt = []
    for _ in range(tasks):
        t0 = time.perf_counter()
        ray.get(task.remote())
        rtt.append(time.perf_counter() - t0)
    ray.shutdown()
    return {"init_s": init_s, "first_task_s": first_s, "idle_mib": idle,
            "noop_median_ms": 1e3 * float(np.median(rtt)), "noop_p99_ms": 1e3 * float(np.percentile(rtt, 99))}


def sweep(config: str, steps: int) -> str:
    """Wall time of the five-seed sweep here and on Ray, and whether their policies are equal."""
    train = str(Path(sys.executable).with_name("pe-train"))
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for where, extra in (("here", []), ("ray", ["--ray"])):
            t0 = time.perf_counter()
            subprocess.run([train, config, "--seeds", "1-5", "--total-steps", str(steps), "--no-progress",
                            "--output-dir", f"{tmp}/{where}", *extra], check=True, capture_output=True)
            walls[where] = time.perf_counter() - t0
        equal = all((Path(tmp) / "here" / f"{config}-seed{s}" / f"{config}-seed{s}.onnx").read_bytes()
                    == (Path(tmp) / "ray" / f"{config}-seed{s}" / f"{config}-seed{s}.onnx").read_bytes()
                    for s in range(1, 6))
    return (f"pe-train {config} --seeds 1-5 --total-steps {steps}: here {walls['here'] / 60:.1f} min, "
            f"--ray {walls['ray'] / 60:.1f} min ({walls['here'] / walls['ray']:.2f}x); "
            f"policies equal: {equal}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=40)
    p.add_argument("--chunk-episodes", type=int, default=50)
    p.add_argument("--sweep-steps", type=int, default=0,
                   help="also time a 5-seed pe-train sweep of this budget")
    p.add_argument("--sweep-config", default="pursuer_bench_flee_filter")
    args = p.parse_args()
    os.environ.setdefault("RAY_worker_niceness", "0")
    load = os.getloadavg()[0]
    s = startup_and_tasks(args.tasks)
    jobs = chunk_jobs(args.tasks, args.chunk_episodes)
    t0 = time.perf_counter()
    here = run_jobs(jobs)
    here_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    on_ray = run_jobs(jobs, LOCAL_RAY)
    ray_s = time.perf_counter() - t0
    equal = all(a.records == b.records for a, b in zip(here, on_ray, strict=True))
    per_here = [c.seconds for c in here]
    per_ray = [c.seconds for c in on_ray]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end")
    print(f"ray.init (new local instance): {s['init_s']:.2f} s; first task (worker start): "
          f"{s['first_task_s']:.2f} s; idle memory of the instance: {s['idle_mib']:.0f} MiB")
    print(f"no-op task round trip, warm worker ({args.tasks} tasks): median {s['noop_median_ms']:.2f} ms, "
          f"p99 {s['noop_p99_ms']:.2f} ms")
    print(f"{args.tasks} report chunks of {args.chunk_episodes} episodes: here {here_s:.1f} s "
          f"(chunk median {np.median(per_here):.2f} s, p99 {np.percentile(per_here, 99):.2f} s); "
          f"on Ray {ray_s:.1f} s incl. start-up (chunk median {np.median(per_ray):.2f} s, "
          f"p99 {np.percentile(per_ray, 99):.2f} s); records equal: {equal}")
    if args.sweep_steps:
        print(sweep(args.sweep_config, args.sweep_steps))
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
