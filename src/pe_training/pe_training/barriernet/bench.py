"""``pe-barriernet-bench``: per-step inference time of a BarrierNet policy, ours vs the
prototype's style, on the same inputs in the same run (one core, torch on one thread).

Inputs: ``--states`` world states recorded from the batch simulation (the expert
behind the filter; the network's own states would do as well), one robot, batch 1 --
what a robot computes each control step. Each method is timed per call (median and
p99, us) in its own passes over all states (interleaving them made the onnxruntime
calls ~10x slower after each torch call), garbage collection off while timing:

* **ours, network**: the exported ONNX network (onnxruntime, one thread) on the raw
  observation: u_ref and the gains;
* **ours, QP**: the filter's exact QP (numba active-set enumeration) with those gains;
* **ours, network + QP**: both, plus mapping the gains to the filter's constraint order;
* **ours, deployed step**: observation build + network + gain mapping + the whole
  ``SafetyFilter.filter`` call (QP + exact next-step check + tiers), i.e. the policy
  node's and the filter node's compute for one step;
* **prototype-style, network + QP**: the same network in torch (float32) and the same
  QP solved by the qpth-style batched interior-point layer
  (:mod:`pe_training.barriernet.ipm`, float64, batch 1), forward only;
* **prototype-style, QP**: the interior-point layer alone.

It also reports how far the interior-point solutions are from the exact ones.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pe_policy.barriernet_policy import BarrierNetPolicy
from pe_safety_filter.filter import SafetyFilter
from pe_sim.cli import console_main, positive_int
from pe_sim.scenario import load_scenario
from pe_sim.scripted import WorldView
from pe_training.barriernet.check import record_states
from pe_training.barriernet.config import load_barriernet_config
from pe_training.barriernet.ipm import filter_qp_ipm
from pe_training.barriernet.layer import active_sets
from pe_training.barriernet.network import ExportedBarrierNet, UnitToPhysical, make_policy
from pe_training.barriernet.rollout import Setup
from pe_training.envs import learner_index


def _stats(times_s: list[float]) -> dict[str, float]:
    us = np.asarray(times_s) * 1e6
    return {"median_us": float(np.median(us)), "p99_us": float(np.percentile(us, 99)),
            "mean_us": float(us.mean()), "n": len(us)}


def _one(view: WorldView, e: int) -> WorldView:
    return WorldView(*(a[e:e + 1] for a in (view.pose, view.velocity, view.obstacles, view.n_obstacles,
                                             view.step_count, view.episode_seed)))


def torch_network(setup: Setup, cfg, torch_policy: str | Path | None):
    """(module obs -> (u_ref, gains), description) of the network in torch."""
    mean, std = np.zeros(setup.spec.dim), np.ones(setup.spec.dim)
    saved = None
    if torch_policy is not None:
        saved = torch.load(torch_policy, map_location="cpu", weights_only=False)
        mean, std = np.asarray(saved["obs_mean"]), np.asarray(saved["obs_std"])
    policy = make_policy(setup.spec.dim, setup.layout, mean, std, cfg.net_arch, cfg.activation)
    if saved is not None:
        policy.load_state_dict(saved["state_dict"])
    module = ExportedBarrierNet(policy, UnitToPhysical(setup.lo, setup.hi, setup.layout)).eval()

    def net(obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, u, g = module(obs)
        return u, g

    return net, str(torch_policy) if saved is not None else "same architecture, fresh weights"


def run_bench(model: str | Path, config: str, n_states: int, repeats: int, seed: int = 7,
              torch_policy: str | Path | None = None) -> dict[str, Any]:
    torch.set_num_threads(1)
    cfg = load_barriernet_config(config)
    scenario = load_scenario(cfg.scenario)
    index = learner_index(cfg, scenario)
    setup = Setup(cfg, scenario, index)
    policy = BarrierNetPolicy.from_onnx(model, scenario, index)
    states = record_states(setup, cfg.imitation.expert, n_states, seed)
    robot = scenario.robots[index]
    single = SafetyFilter(setup.filter_config, robot, scenario.half_width, scenario.half_height, scenario.dt)
    W = setup.filter_config.weight_matrix
    lo, hi = setup.lo, setup.hi
    # The network in torch (prototype style): the run's policy.pt when given, else the same
    # architecture freshly initialised (the forward cost does not depend on the weights).
    net, torch_source = torch_network(setup, cfg, torch_policy)
    tW, tlo, thi = (torch.as_tensor(x) for x in (W, lo, hi))
    obs_all = setup.builder.build(states.pose, states.velocity, states.obstacles, states.n_obstacles)
    A_all, b1_all, _ = setup.rows.rows(states.pose, states.obstacles, states.n_obstacles)
    views = [_one(states, e) for e in range(n_states)]
    m = states.obstacles.shape[1]
    # The network's outputs on every state (the QP inputs of both solvers).
    u_refs, slots = policy.outputs(obs_all)
    inputs = [(obs_all[e:e + 1], A_all[e:e + 1], b1_all[e:e + 1], u_refs[e:e + 1], slots[e:e + 1])
              for e in range(n_states)]
    t_inputs = [tuple(torch.as_tensor(x) for x in item) for item in inputs]

    def ours_network(e):
        return policy.outputs(inputs[e][0])

    def ours_qp(e):
        _, A, b1, u_ref, slot = inputs[e]
        return active_sets(A, slot * b1, u_ref, W, lo, hi)[2]

    def ours_network_qp(e):
        obs, A, b1, _, _ = inputs[e]
        u_ref, slot = policy.outputs(obs)
        return active_sets(A, slot * b1, u_ref, W, lo, hi)[2]

    def ours_deployed_step(e):
        v = views[e]
        policy._obs = None  # no cache: a new state every call
        u_nom = policy.act(v)[0]
        g = policy.gains(v)[0]
        n_obs = int(v.n_obstacles[0])
        return single.filter(v.pose[0, index], u_nom, v.obstacles[0, :n_obs],
                             gains=np.concatenate([g[:n_obs], g[m:]])).u_safe

    def proto_network_qp(e):
        obs, A, b1, _, _ = t_inputs[e]
        with torch.no_grad():
            tu, tg = net(obs)
            return filter_qp_ipm(tu.double(), tg.double(), A, b1, tW, tlo, thi)

    def proto_qp(e):
        _, A, b1, u_ref, slot = t_inputs[e]
        with torch.no_grad():
            return filter_qp_ipm(u_ref, slot, A, b1, tW, tlo, thi)

    methods = {"ours_network": ours_network, "ours_qp": ours_qp, "ours_network_qp": ours_network_qp,
               "ours_deployed_step": ours_deployed_step, "proto_network_qp": proto_network_qp,
               "proto_qp": proto_qp}
    # Each method in its own passes over all states (first pass: warm-up), garbage
    # collection off while timing.
    times: dict[str, list[float]] = {}
    clock = time.perf_counter
    for key, fn in methods.items():
        for e in range(n_states):
            fn(e)
        gc.collect()
        gc.disable()
        try:
            ts = []
            for _ in range(repeats):
                for e in range(n_states):
                    t0 = clock()
                    fn(e)
                    ts.append(clock() - t0)
        finally:
            gc.enable()
        times[key] = ts
    u_exact = np.concatenate([ours_qp(e) for e in range(n_states)])
    u_ipm = np.concatenate([proto_qp(e).numpy() for e in range(n_states)])
    err = np.abs(u_exact - u_ipm).max(axis=1)
    return {
        "model": str(model), "torch_network": torch_source, "scenario": scenario.name, "states": n_states,
        "repeats": repeats,
        "timings": {k: _stats(v) for k, v in times.items()},
        "ipm_vs_exact": {"max_abs_du": float(err.max()), "median_abs_du": float(np.median(err)),
                         "fraction_above_1e-4": float((err > 1e-4).mean())},
        "load_average": list(_loadavg()),
    }


def _loadavg() -> tuple[float, float, float]:
    try:
        return tuple(float(x) for x in Path("/proc/loadavg").read_text().split()[:3])  # type: ignore[return-value]
    except OSError:
        return (float("nan"),) * 3  # type: ignore[return-value]


LABELS = {
    "ours_network": "ours: ONNX network (u_ref + gains)",
    "ours_qp": "ours: exact QP (filter solver)",
    "ours_network_qp": "ours: network + QP",
    "ours_deployed_step": "ours: obs + network + SafetyFilter.filter",
    "proto_network_qp": "prototype-style: torch network + IPM QP",
    "proto_qp": "prototype-style: IPM QP (qpth port)",
}


@console_main("pe-barriernet-bench")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pe-barriernet-bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="models/barriernet_imitation_bench.onnx",
                   help="exported BarrierNet .onnx")
    p.add_argument("--config", default="barriernet_imitation_bench",
                   help="training config the model belongs to (scenario, filter, expert for the states)")
    p.add_argument("--states", type=positive_int, default=300,
                   help="recorded states (batch 1 calls per pass)")
    p.add_argument("--repeats", type=positive_int, default=3,
                   help="timed passes over the states")
    p.add_argument("--torch-policy", default=None,
                   help="the run's policy.pt for the torch network (default: fresh weights, same shape)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    res = run_bench(args.model, args.config, args.states, args.repeats, torch_policy=args.torch_policy)
    print(f"BarrierNet per-step inference, {res['scenario']}, {res['states']} recorded states x "
          f"{res['repeats']} passes, batch 1, one thread (load average {res['load_average'][0]:.1f})")
    for key, label in LABELS.items():
        t = res["timings"][key]
        print(f"  {label:<46} median {t['median_us']:9.1f} us   p99 {t['p99_us']:9.1f} us")
    r = res["timings"]["proto_network_qp"]["median_us"] / res["timings"]["ours_network_qp"]["median_us"]
    print(f"  speed-up (median, network + QP): {r:.0f}x; target: ours network + QP median <= 100 us")
    e = res["ipm_vs_exact"]
    print(f"  IPM vs exact QP solution: max |du| {e['max_abs_du']:.2e}, median {e['median_abs_du']:.2e}, "
          f"{100 * e['fraction_above_1e-4']:.1f} % of states off by > 1e-4")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
