"""Time the hidden-layer tanh of the policy networks: ``torch.nn.Tanh`` vs
``pe_training.activations.Tanh`` (numpy's tanh), alone and inside a PPO update.

    .venv/bin/python scripts/activation_bench.py [--config pursuer_bench_flee] [--updates 7]

Prints medians and p99 in microseconds (activation, 2048 x 64 float32: one hidden
layer of one minibatch) and seconds (``PPO.train()``: one full update of the config,
10 epochs over a 16,384-sample rollout). torch runs on one thread, as in training.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

import pe_training.train as train
from pe_training.activations import Tanh
from pe_training.config import load_train_config
from pe_training.envs import make_vec_env, training_scenario


def _times(fn: Callable[[], object], repeats: int, warmup: int = 3) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(repeats)
    for i in range(repeats):
        t = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t
    return out


def _row(label: str, seconds: np.ndarray, unit: str = "us") -> str:
    scale = 1e6 if unit == "us" else 1.0
    return (f"  {label:<40} median {np.median(seconds) * scale:9.3f} {unit}   "
            f"p99 {np.percentile(seconds, 99) * scale:9.3f} {unit}")


def activation_rows(repeats: int) -> list[str]:
    x = torch.randn(2048, 64)
    xg = x.clone().requires_grad_(True)
    rows = []
    for label, module in (("torch.nn.Tanh", nn.Tanh()), ("pe_training.activations.Tanh", Tanh())):
        rows.append(_row(f"{label} forward", _times(lambda m=module: m(x), repeats)))
        rows.append(_row(f"{label} forward + backward",
                         _times(lambda m=module: m(xg).sum().backward(), repeats)))
    rows.append(_row("numpy.tanh", _times(lambda: np.tanh(x.numpy()), repeats)))
    rows.append(_row("torch.sigmoid (for scale)", _times(lambda: torch.sigmoid(x), repeats)))
    return rows


def update_rows(config: str, updates: int) -> list[str]:
    cfg = load_train_config(config, [])
    rows = []
    original = train.ACTIVATIONS["tanh"]
    try:
        for label, cls in (("torch.nn.Tanh", nn.Tanh), ("pe_training.activations.Tanh", Tanh)):
            train.ACTIVATIONS["tanh"] = cls  # make_model reads the table
            env = train.wrap_normalize(cfg, make_vec_env(cfg, training_scenario(cfg)))
            model = train.make_model(cfg, env, None)
            model.learn(total_timesteps=2 * cfg.num_envs * cfg.ppo.n_steps)  # fills the rollout buffer
            rows.append(_row(f"PPO.train() with {label}", _times(model.train, updates, warmup=1), unit="s"))
    finally:
        train.ACTIVATIONS["tanh"] = original
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="pursuer_bench_flee", help="training config of the PPO update")
    p.add_argument("--repeats", type=int, default=500, help="timed calls per activation row")
    p.add_argument("--updates", type=int, default=7, help="timed PPO updates per row")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; activation on a 2048 x 64 float32 batch")
    print("\n".join(activation_rows(args.repeats)))
    print(f"one PPO update of config {args.config}")
    print("\n".join(update_rows(args.config, args.updates)))


if __name__ == "__main__":
    main()
