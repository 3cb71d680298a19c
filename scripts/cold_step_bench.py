#!/usr/bin/env python3
"""What one policy-node step costs with cold caches, part by part (no ROS).

At 20 Hz a node sleeps 50 ms between steps and wakes with its code and data out
of the CPU caches. This script times each part of the policy node's compute
for one state, the way :meth:`pe_ros.policy_node.PolicyNode.answer` calls
it, twice: "cold" (after sweeping ``--sweep-mb`` of memory and sleeping 20 ms
before every call) and "warm" (back-to-back calls). Parts: the observation
(numba), onnxruntime ``InferenceSession.run``, the same with IO binding, the
mapping to (v, omega), the whole ``OnnxPolicy.act``, and a numpy MLP of the same
shape for reference.

    .venv/bin/python scripts/cold_step_bench.py --policy models/pursuer_bench_flee_filter.onnx
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from pe_policy.policy import load_policy
from pe_sim.batch import BatchSim
from pe_sim.envs.actions import to_command
from pe_sim.scenario import load_scenario
from pe_sim.scripted import WorldView


def timings(call: Callable[[], object], sweep: np.ndarray, cold_calls: int, warm_calls: int
            ) -> tuple[float, float, float]:
    """Median and p99 (us) of cold calls, median (us) of warm calls."""
    for _ in range(20):
        call()
    cold = []
    for _ in range(cold_calls):
        sweep.sum()              # evict the caches
        time.sleep(0.02)
        t = time.perf_counter()
        call()
        cold.append(time.perf_counter() - t)
    warm = []
    for _ in range(warm_calls):
        t = time.perf_counter()
        call()
        warm.append(time.perf_counter() - t)
    c, w = np.array(cold) * 1e6, np.array(warm) * 1e6
    return float(np.median(c)), float(np.percentile(c, 99)), float(np.median(w))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", default="models/pursuer_bench_flee_filter.onnx")
    p.add_argument("--scenario", default="bench_1v1_flee")
    p.add_argument("--sweep-mb", type=int, default=64)
    p.add_argument("--cold-calls", type=int, default=200)
    p.add_argument("--warm-calls", type=int, default=2000)
    args = p.parse_args(argv)

    scenario = load_scenario(args.scenario)
    policy = load_policy(args.policy, scenario, 0)
    view = WorldView.of(BatchSim(scenario, 1, seed=0))
    obs = policy.builder.build(view.pose, view.velocity, view.obstacles, view.n_obstacles)
    session = policy._session
    binding = session.io_binding()
    binding.bind_ortvalue_input("obs", ort.OrtValue.ortvalue_from_numpy(obs))
    binding.bind_ortvalue_output("action", ort.OrtValue.ortvalue_from_numpy(np.empty((1, 2), np.float32)))
    action = policy.predict(obs)
    rng = np.random.default_rng(0)
    dims = [obs.shape[1], 64, 64, 2]
    weights = [rng.standard_normal((a, b)).astype(np.float32) for a, b in itertools.pairwise(dims)]

    def mlp() -> np.ndarray:
        h = np.tanh(obs @ weights[0])
        h = np.tanh(h @ weights[1])
        return h @ weights[2]

    parts = {
        "observation (numba)": lambda: policy.builder.build(view.pose, view.velocity, view.obstacles,
                                                            view.n_obstacles),
        "onnxruntime run": lambda: session.run(["action"], {"obs": obs}),
        "onnxruntime run, IO binding": lambda: session.run_with_iobinding(binding),
        "mapping to (v, omega)": lambda: to_command(action, policy.bounds),
        "OnnxPolicy.act (all of the above)": lambda: policy.act(view),
        "numpy MLP 37-64-64-2 (reference)": mlp,
    }
    sweep = np.ones(args.sweep_mb * 2**20 // 8)
    print(f"cold: after a {args.sweep_mb} MB sweep and 20 ms sleep, {args.cold_calls} calls; "
          f"warm: {args.warm_calls} back-to-back calls ({args.policy})")
    print(f"  {'part':<36}{'cold median':>12}{'cold p99':>10}{'warm median':>13}  (us)")
    for name, call in parts.items():
        c50, c99, w50 = timings(call, sweep, args.cold_calls, args.warm_calls)
        print(f"  {name:<36}{c50:>12.1f}{c99:>10.1f}{w50:>13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
