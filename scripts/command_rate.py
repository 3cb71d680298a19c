"""How smoothly pursuers steer, on held-out episodes, as deployed (the VCP-CBF filter
on both robots, the scripted flee evader).

    .venv/bin/python scripts/command_rate.py models/pursuer_bench_flee.onnx \
        models/pursuer_bench_flee_filter.onnx scripted:proportional_navigation

Per pursuer: the mean step-to-step change of its nominal omega (rad/s), its mean
nominal and applied v (m/s), the share of steps it commands full speed, and the
capture rate of the first episode in each of the ``--episodes`` slots, run side by
side from the first held-out test seed (pe-eval's) for ``--steps`` steps (the 30 s
episodes of the benchmark are 600 steps: all first episodes end).
"""

from __future__ import annotations

import argparse

import numpy as np

from pe_policy.policy import load_policy
from pe_safety_filter.config import load_filter_config
from pe_safety_filter.filter import BatchSafetyFilter
from pe_sim.batch import BatchSim
from pe_sim.evaluation import EVAL_SEED_BASE
from pe_sim.scenario import load_scenario
from pe_sim.scripted import WorldView


def steering_stats(source: str, scenario_name: str, episodes: int, steps: int) -> dict[str, float]:
    scenario = load_scenario(scenario_name)
    sim = BatchSim(scenario, episodes, seed=EVAL_SEED_BASE)
    view = WorldView.of(sim)
    pursuer = load_policy(source, scenario, 0)
    evader = load_policy("scripted:flee", scenario, 1)
    safety = BatchSafetyFilter(load_filter_config("vcp_cbf"), scenario)
    omega_change, v_nominal, v_applied, captures, ended = [], [], [], 0, 0
    previous, same_episode = None, np.zeros(episodes, dtype=bool)
    first = np.ones(episodes, dtype=bool)  # still in its first episode
    for _ in range(steps):
        nominal = np.stack([pursuer.act(view), evader.act(view)], axis=1)
        safe, _ = safety.filter(sim.pose, nominal.copy(), sim.obstacles, sim.n_obstacles)
        if previous is not None:
            omega_change.append(np.abs(nominal[same_episode, 0, 1] - previous[same_episode]))
        previous = nominal[:, 0, 1].copy()
        v_nominal.append(nominal[:, 0, 0])
        v_applied.append(safe[:, 0, 0])
        result = sim.step(safe)
        same_episode = ~result.done
        captures += int((result.terminated & first).sum())
        ended += int((result.done & first).sum())
        first &= ~result.done
    v_nom = np.concatenate(v_nominal)
    v_max = scenario.robots[0].v_max
    return {"omega_change": float(np.concatenate(omega_change).mean()), "v_nominal": float(v_nom.mean()),
            "v_applied": float(np.concatenate(v_applied).mean()),
            "full_speed": float((v_nom >= 0.999 * v_max).mean()),
            "capture": captures / ended if ended else float("nan"), "ended": float(ended)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pursuers", nargs="+", help=".onnx files or scripted:<kind>")
    p.add_argument("--scenario", default="bench_1v1_flee")
    p.add_argument("--episodes", type=int, default=200, help="episodes side by side")
    p.add_argument("--steps", type=int, default=600)
    args = p.parse_args()
    print(f"scenario {args.scenario}, {args.episodes} episodes side by side from seed {EVAL_SEED_BASE}, "
          f"{args.steps} steps, filter on both robots, evader scripted:flee")
    print(f"{'pursuer':<44} {'|d omega| rad/s':>15} {'v nominal':>9} {'v applied':>9} "
          f"{'full speed':>10} {'capture':>8} {'ended':>6}")
    for source in args.pursuers:
        s = steering_stats(source, args.scenario, args.episodes, args.steps)
        print(f"{source:<44} {s['omega_change']:>15.3f} {s['v_nominal']:>9.3f} {s['v_applied']:>9.3f} "
              f"{s['full_speed']:>10.1%} {s['capture']:>8.1%} {s['ended']:>6.0f}")


if __name__ == "__main__":
    main()
