"""``pe-train-bench``: training throughput of PPO on the batch VecEnv vs plain SB3.

Both runs in one process, one after the other, with the same training config
(scenario, opponent, ``num_envs``, PPO hyperparameters, ``VecNormalize``; reward shaping
on the batch side only) and torch on one thread:

* **batch**: :class:`~pe_sim.envs.vec_env.BatchVecEnv` with the config's reward shaping
  wrappers, if any (what ``pe-train`` uses);
* **plain SB3**: ``make_vec_env(PursuitEvasionEnv, n_envs=num_envs,
  vec_env_cls=DummyVecEnv)``: the same episodes through ``num_envs`` single Gymnasium
  envs, each wrapped in SB3's ``Monitor``, stepped in a Python loop (no shaping
  wrappers: they read the batch env's step report).

The figure is env steps/s of the full PPO loop (rollout + update), the median over
iterations of the progress log (one row per rollout, the first one skipped since it has
no update before it), as ``pe-train`` logs it. The training-time validation, checkpoints
and the progress bar are off in both runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv

from pe_sim.cli import console_main
from pe_sim.envs.single import PursuitEvasionEnv
from pe_training.callbacks import ProgressCallback
from pe_training.config import TrainConfig, load_train_config
from pe_training.envs import (
    TRAIN_SEED_STRIDE,
    apply_shaping,
    learner_index,
    make_action_filter,
    make_vec_env,
    training_scenario,
)
from pe_training.train import make_model, wrap_normalize


def _ppo_throughput(cfg: TrainConfig, venv: Any, steps: int, log: Path) -> dict[str, float]:
    env = wrap_normalize(cfg, venv)
    model = make_model(cfg, env, None)
    log.unlink(missing_ok=True)
    callback = ProgressCallback(steps, log, show_bar=False)
    t = time.perf_counter()
    model.learn(total_timesteps=steps, callback=callback)
    wall = time.perf_counter() - t
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    rows = rows[1:] or rows
    rates = [r["steps_per_s"] for r in rows]
    return {"steps": float(model.num_timesteps), "wall_s": wall,
            "steps_per_s_median": float(np.median(rates)),
            "rollout_steps_per_s_median": float(np.median([r["rollout_steps_per_s"] for r in rows])),
            "steps_per_s_overall": model.num_timesteps / wall, "iterations": float(len(rates))}


def single_env_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """Constructor arguments of the single Gymnasium env equivalent to the config's VecEnv."""
    scenario = training_scenario(cfg)
    index = learner_index(cfg, scenario)
    kwargs: dict[str, Any] = {"scenario": scenario, "robot": scenario.robots[index].name,
                              "k_obstacles": cfg.k_obstacles}
    venv = make_vec_env(cfg, scenario)  # resolves opponents the same way
    role = scenario.robots[index].role
    kwargs["opponent"] = {scenario.robots[i].name: c for i, c in venv.core.controllers.items()
                          if scenario.robots[i].role != role}
    kwargs["teammate"] = {scenario.robots[i].name: c for i, c in venv.core.controllers.items()
                          if scenario.robots[i].role == role} or None
    if cfg.filter.in_loop:
        kwargs.update(action_filter=make_action_filter(cfg.filter.config, scenario),
                      filter_robots=cfg.filter.robots, correction_penalty=cfg.filter.correction_penalty)
    return kwargs


def run_bench(cfg: TrainConfig, batch_steps: int, dummy_steps: int, workdir: Path) -> dict[str, Any]:
    torch.set_num_threads(cfg.torch_threads)
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = training_scenario(cfg)
    # Warm-up (numba compilation) outside the timed runs.
    warm = make_vec_env(cfg, scenario)
    warm.reset()
    for _ in range(3):
        warm.step(np.zeros((cfg.num_envs, 2), dtype=np.float32))
    batch = _ppo_throughput(cfg, apply_shaping(cfg, make_vec_env(cfg, scenario)), batch_steps,
                            workdir / "batch.jsonl")
    kwargs = single_env_kwargs(cfg)
    dummy_venv = sb3_make_vec_env(PursuitEvasionEnv, n_envs=cfg.num_envs, seed=cfg.seed * TRAIN_SEED_STRIDE,
                                  vec_env_cls=DummyVecEnv, env_kwargs=kwargs)
    dummy = _ppo_throughput(cfg, dummy_venv, dummy_steps, workdir / "dummy.jsonl")
    return {
        "config": cfg.name, "scenario": scenario.name, "opponent": cfg.opponent, "num_envs": cfg.num_envs,
        "filter_in_loop": cfg.filter.in_loop, "ppo": cfg.to_dict()["ppo"], "torch_threads": cfg.torch_threads,
        "batch_side_shaping": cfg.to_dict()["shaping"],
        "batch_vec_env": batch, "dummy_vec_env": dummy,
        "ratio": batch["steps_per_s_median"] / dummy["steps_per_s_median"],
        "rollout_ratio": batch["rollout_steps_per_s_median"] / dummy["rollout_steps_per_s_median"],
    }


@console_main("pe-train-bench")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pe-train-bench", description=__doc__.split("\n\n")[0])
    p.add_argument("config", nargs="?", default="pursuer_bench_flee", help="training config name or path")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--batch-steps", type=float, default=262_144, help="PPO steps on BatchVecEnv")
    p.add_argument("--dummy-steps", type=float, default=131_072,
                   help="PPO steps on DummyVecEnv (8 iterations: 7 in the median)")
    p.add_argument("--out", default="results/train_bench", help="folder for progress logs and bench.json")
    args = p.parse_args(argv)
    cfg = load_train_config(args.config, args.set)
    out = Path(args.out)
    res = run_bench(cfg, int(args.batch_steps), int(args.dummy_steps), out)
    (out / "bench.json").write_text(json.dumps(res, indent=2) + "\n")
    b, d = res["batch_vec_env"], res["dummy_vec_env"]
    print(f"PPO training throughput, config {res['config']} ({res['scenario']} vs {res['opponent']}, "
          f"{res['num_envs']} envs, n_steps {cfg.ppo.n_steps}, batch {cfg.ppo.batch_size}, "
          f"{cfg.ppo.n_epochs} epochs, torch threads {cfg.torch_threads}"
          + (", filter in the loop" if cfg.filter.in_loop else "") + ")")
    print(f"  BatchVecEnv : {b['steps_per_s_median']:>9,.0f} env steps/s (median of {b['iterations']:.0f} "
          f"iterations; {b['steps']:,.0f} steps in {b['wall_s']:.1f} s)")
    print(f"  DummyVecEnv : {d['steps_per_s_median']:>9,.0f} env steps/s (median of {d['iterations']:.0f} "
          f"iterations; {d['steps']:,.0f} steps in {d['wall_s']:.1f} s)")
    print(f"  ratio       : {res['ratio']:.2f}x (target >= 3x); details in {out / 'bench.json'}")
    print(f"  rollout collection alone (policy inference + env, no PPO update): "
          f"{b['rollout_steps_per_s_median']:,.0f} vs {d['rollout_steps_per_s_median']:,.0f} env steps/s "
          f"= {res['rollout_ratio']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
