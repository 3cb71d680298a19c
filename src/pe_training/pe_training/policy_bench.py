"""``pe-policy-bench``: per-call inference time of an exported policy (ONNX Runtime through
:class:`~pe_policy.onnx_policy.OnnxPolicy`) vs SB3 ``model.predict`` of the same policy.

Both in one process, torch and onnxruntime on one thread, one observation per call
(the ROS policy node's case), over the same real observations (from a batch rollout of
the policy's scenario), after a warm-up. Timed per call with ``perf_counter_ns``:

* ``onnx predict``: ``OnnxPolicy.predict(obs)`` (normalisation is inside the graph);
* ``onnx command``: ``OnnxPolicy.command(obs)``, i.e. plus the mapping to (v, omega);
* ``onnx act``: ``OnnxPolicy.act(view)`` with B = 1, i.e. plus building the observation
  from the world state;
* ``sb3 predict``: ``model.predict(vec_normalize.normalize_obs(obs), deterministic=True)``.

    pe-policy-bench runs/pursuer_seed_random              # a pe-train run (best checkpoint + .onnx)
    pe-policy-bench                                       # an untrained policy of the default config
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pe_policy.onnx_policy import OnnxPolicy
from pe_policy.policy import load_policy
from pe_sim.batch import BatchSim
from pe_sim.cli import UserError, console_main, positive_int
from pe_sim.observation import ObservationBuilder
from pe_sim.scenario import load_scenario
from pe_sim.scripted import WorldView
from pe_training.config import load_train_config
from pe_training.envs import learner_index, make_vec_env, training_scenario
from pe_training.export import export_onnx
from pe_training.run import Checkpoint, load_run_config
from pe_training.train import make_model, other_sources, policy_metadata


def time_calls(fn: Callable[[int], Any], n: int, warmup: int = 200) -> np.ndarray:
    """Per-call wall times (us) of ``fn(i)`` for i in range(n), after ``warmup`` calls."""
    for i in range(warmup):
        fn(i)
    out = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        t = clock()
        fn(i)
        out[i] = clock() - t
    return out / 1e3


def stats(us: np.ndarray) -> dict[str, float]:
    return {"median_us": float(np.median(us)), "p99_us": float(np.percentile(us, 99)),
            "mean_us": float(us.mean())}


@console_main("pe-policy-bench")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pe-policy-bench", description=__doc__.split("\n\n")[0])
    p.add_argument("run", nargs="?", default=None,
                   help="pe-train run folder or checkpoint .zip (default: an untrained policy of --config)")
    p.add_argument("--config", default="pursuer_seed_random", help="training config for the untrained policy")
    p.add_argument("--calls", type=positive_int, default=10_000)
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    if args.run and Path(args.run).suffix not in ("", ".zip"):
        raise UserError(f"{args.run}: pe-policy-bench times a pe-train run folder or checkpoint .zip "
                        "(it compares ONNX with SB3); for an exported .onnx policy use "
                        "pe-eval --pursuer <file> or pe_policy.onnx_policy.OnnxPolicy")
    tmp = Path(tempfile.mkdtemp(prefix="pe-policy-bench-"))
    if args.run:
        ckpt = Checkpoint.find(args.run)
        cfg = load_run_config(ckpt.run_dir)
        model, vec_normalize = ckpt.load()
    else:
        from stable_baselines3.common.vec_env import VecNormalize

        cfg = load_train_config(args.config, ["num_envs=8", "ppo.batch_size=256", "ppo.n_steps=32"])
        vec_normalize = VecNormalize(make_vec_env(cfg, training_scenario(cfg)))
        model = make_model(cfg, vec_normalize, None)
    scenario = load_scenario(cfg.scenario)
    index = learner_index(cfg, scenario)
    onnx_path = export_onnx(model.policy, vec_normalize, tmp / "policy.onnx",
                            policy_metadata(cfg, scenario, index))
    policy = OnnxPolicy(onnx_path, scenario, index)

    # Real observations: the policy itself driving a batch of episodes vs scripted opponents.
    sim = BatchSim(scenario, 256, seed=123)
    view = WorldView.of(sim)
    builder = ObservationBuilder(scenario, index, cfg.k_obstacles)
    others = {i: load_policy(s, scenario, i) for i, s in other_sources(cfg, scenario, index).items()}
    observations, states = [], []
    for step in range(40):
        if step % 4 == 0:
            observations.append(builder.build(sim.pose, sim.velocity, sim.obstacles, sim.n_obstacles))
            states.append((sim.pose.copy(), sim.velocity.copy(), sim.obstacles.copy(),
                           sim.n_obstacles.copy()))
        cmd = np.stack([policy.act(view) if i == index else others[i].act(view)
                        for i in range(scenario.num_robots)], axis=1)
        sim.step(cmd)
    obs = np.concatenate(observations)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(obs))
    obs = np.ascontiguousarray(obs[order])
    n = args.calls
    rows = [obs[i % len(obs)] for i in range(n)]

    onnx_actions = policy.predict(obs)
    x = vec_normalize.normalize_obs(obs) if vec_normalize is not None else obs
    sb3_actions = model.predict(x, deterministic=True)[0]
    max_diff = float(np.abs(onnx_actions - sb3_actions).max())

    views = []
    for pose, vel, obstacles, n_obs in states:
        for b in range(0, 256, 16):
            zero = np.zeros(1, dtype=np.int64)
            views.append(WorldView(pose[b:b + 1].copy(), vel[b:b + 1].copy(), obstacles[b:b + 1].copy(),
                                   n_obs[b:b + 1].copy(), zero, zero.copy()))

    def sb3(i: int) -> None:
        o = rows[i]
        model.predict(vec_normalize.normalize_obs(o) if vec_normalize is not None else o, deterministic=True)

    results = {
        "onnx_predict": stats(time_calls(lambda i: policy.predict(rows[i]), n)),
        "onnx_command": stats(time_calls(lambda i: policy.command(rows[i]), n)),
        "onnx_act_b1": stats(time_calls(lambda i: policy.act(views[i % len(views)]), n)),
        "sb3_predict": stats(time_calls(sb3, n)),
    }
    results["speedup_median"] = results["sb3_predict"]["median_us"] / results["onnx_predict"]["median_us"]
    report = {"policy": args.run or f"untrained ({cfg.name} architecture)", "calls": n,
              "net_arch": cfg.ppo.net_arch, "obs_dim": policy.spec.dim,
              "max_abs_action_diff_onnx_vs_sb3": max_diff, "results": results}
    print(f"single-observation inference, {n} calls each, 1 thread ({report['policy']}, "
          f"MLP {cfg.ppo.net_arch}, obs dim {policy.spec.dim})")
    print(f"  {'':<34}{'median us':>10}{'p99 us':>10}")
    labels = {"onnx_predict": "OnnxPolicy.predict (ORT)",
              "onnx_command": "OnnxPolicy.command (+ to v, omega)",
              "onnx_act_b1": "OnnxPolicy.act (+ observation)",
              "sb3_predict": "SB3 model.predict (+ VecNormalize)"}
    for key, label in labels.items():
        r = results[key]
        print(f"  {label:<34}{r['median_us']:>10.1f}{r['p99_us']:>10.1f}")
    print(f"  ONNX is {results['speedup_median']:.1f}x faster (median); max |action diff| {max_diff:.2e}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
