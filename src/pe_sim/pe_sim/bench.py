"""``pe-sim-bench``: simulation throughput, observations included.

Prints, for the batch core at B = 1, 64, 1024, 4096, the median (and p99 over
repeats) of env-steps/s and robot-steps/s, where one env-step is a batch step
of one environment plus building every robot's observation; and the single-
episode Gymnasium-style loop (B = 1, observation built each step). Runs on one
core (numba kernels are single-threaded).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pe_sim.batch import BatchSim
from pe_sim.cli import console_main, positive_int
from pe_sim.observation import ObservationBuilder
from pe_sim.scenario import load_scenario


def _time_batch(scenario, num_envs: int, steps: int, repeats: int) -> list[float]:
    """Seconds per batch step (sim step + every robot's observations), one figure per repeat."""
    sim = BatchSim(scenario, num_envs, seed=0)
    builders = [ObservationBuilder(scenario, i) for i in range(scenario.num_robots)]
    rng = np.random.default_rng(0)
    bounds = np.array([[r.v_max, r.omega_max] for r in scenario.robots])
    actions = rng.uniform(0.0, 1.0, (steps, num_envs, scenario.num_robots, 2)) * bounds
    actions[..., 1] = actions[..., 1] * 2.0 - bounds[:, 1]
    outs = [np.empty((num_envs, b.spec.dim), dtype=np.float32) for b in builders]
    for b, out in zip(builders, outs, strict=True):  # compile / warm up
        b.build(sim.pose, sim.velocity, sim.obstacles, sim.n_obstacles, out)
    sim.step(actions[0])
    per_step = []
    for _ in range(repeats):
        start = time.perf_counter()
        for t in range(steps):
            sim.step(actions[t])
            for b, out in zip(builders, outs, strict=True):
                b.build(sim.pose, sim.velocity, sim.obstacles, sim.n_obstacles, out)
        per_step.append((time.perf_counter() - start) / steps)
    return per_step


@console_main("pe-sim-bench")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pe-sim-bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="seed_1v1_2obs")
    p.add_argument("--repeats", type=positive_int, default=7)
    args = p.parse_args(argv)
    scenario = load_scenario(args.scenario)
    n = scenario.num_robots
    print(f"pe_sim bench: scenario {scenario.name}, {n} robots, observations included, "
          f"median of {args.repeats} repeats")
    print(f"{'batch B':>8} {'env-steps/s':>14} {'robot-steps/s':>15} {'us/batch-step':>14} {'p99 us':>9}")
    for num_envs, steps in ((1, 20000), (64, 2000), (1024, 300), (4096, 100)):
        per_step = np.array(_time_batch(scenario, num_envs, steps, args.repeats))
        med = float(np.median(per_step))
        print(f"{num_envs:>8} {num_envs / med:>14,.0f} {num_envs * n / med:>15,.0f} "
              f"{med * 1e6:>14.1f} {np.percentile(per_step, 99) * 1e6:>9.1f}")
    print(f"\nGymnasium env (B = 1, one learning pursuer vs the scripted random evader, "
          f"observation built each step), median of {args.repeats} repeats")
    per_step = np.array(_time_gym_env(scenario, 5000, args.repeats))
    env_rate = 1 / np.median(per_step)
    print(f"{'single':>8} {env_rate:>14,.0f} steps/s "
          f"({np.median(per_step) * 1e6:.1f} us/step, p99 {np.percentile(per_step, 99) * 1e6:.1f} us)")
    ratios = _alternating_ratios(scenario, 5000, args.repeats)
    print(f"{'ratio':>8} {np.median(ratios):>14.0%} of the batch core's B = 1 rate (median of "
          f"{args.repeats} alternating pairs, {min(ratios):.0%}-{max(ratios):.0%}; the env adds the "
          "scripted opponent, the learner's action mapping and info)")
    from pe_sim.envs.vec_env import bench_vec_env

    for opponent in ("random", "flee"):
        r = bench_vec_env(num_envs=1024, steps=100, scenario=scenario, opponent=opponent)
        print(f"BatchVecEnv B=1024 vs {opponent:<6} {r['steps_per_s']:>12,.0f} env steps/s "
              f"({r['batch_step_ms_median']:.2f} ms/batch step, info list {r['info_list_ms']:.3f} ms)")
    return 0


def _alternating_ratios(scenario, steps: int, pairs: int) -> list[float]:
    """Gymnasium env steps/s over batch-core (B = 1) steps/s, timed alternately (one
    repeat of each per pair) so both see the same machine load."""
    ratios = []
    for _ in range(pairs):
        batch = _time_batch(scenario, 1, steps, 1)[0]
        env = _time_gym_env(scenario, steps, 1)[0]
        ratios.append(batch / env)
    return ratios


def _time_gym_env(scenario, steps: int, repeats: int) -> list[float]:
    """Seconds per ``PursuitEvasionEnv.step`` (auto-reset on episode end), one figure per repeat."""
    from pe_sim.envs.single import PursuitEvasionEnv

    env = PursuitEvasionEnv(scenario, role="pursuer", opponent="random")
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, (steps, 2)).astype(np.float32)
    per_step = []
    for _ in range(repeats):
        start = time.perf_counter()
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        per_step.append((time.perf_counter() - start) / steps)
    return per_step


if __name__ == "__main__":
    raise SystemExit(main())
