"""Benchmark of the filter's solvers on the same problems, one core.

Problems are real filter calls: states and nominal commands recorded from the
reckless evaluation (pure pursuit vs flee, every robot filtered), consecutive
calls of each robot in time order (so warm starts see what a node sees), each
robot with its own filter / OSQP object. Measured per call (median and
p99, microseconds): the node's path (``SafetyFilter.filter``: exact QP + exact
next-step check), the exact QP alone, OSQP warm-started (one problem object),
the node path with OSQP, and scipy SLSQP on the same cost and constraints (the
research prototype's approach, the ratio baseline). Batched (B = 4096): the
exact QP in numba, in numpy, the whole batch filter, and the torch solver
forward + backward. ``pe-filter-bench --help`` for options; about a minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import time
import warnings

import numpy as np

from pe_safety_filter.barriers import assemble_constraints
from pe_safety_filter.config import load_filter_config
from pe_safety_filter.exact_qp import solve_qp, solve_qp_batch, solve_qp_batch_numpy
from pe_safety_filter.filter import BatchSafetyFilter, SafetyFilter
from pe_safety_filter.osqp_qp import OsqpQP, quiet_c_stdout
from pe_sim.batch import BatchSim
from pe_sim.cli import console_main, positive_int
from pe_sim.scenario import Scenario, load_scenario
from pe_sim.scripted import WorldView, make_scripted


def record_problems(scenario: Scenario, config, n_envs: int = 8, steps: int = 125, warmup: int = 150,
                    seed: int = 0):
    """Filter calls recorded from the reckless evaluation, in time order: ``steps``
    consecutive calls of every robot of ``n_envs`` environments, after ``warmup``
    steps. Returns a list of (key, robot index, pose, u_nom, obstacles, intervened)
    where ``key`` identifies the (environment, robot) sequence."""
    sim = BatchSim(scenario, num_envs=n_envs, seed=seed)
    view = WorldView.of(sim)
    policies = [make_scripted("pure_pursuit" if r.role == "pursuer" else "flee", scenario, i)
                for i, r in enumerate(scenario.robots)]
    bf = BatchSafetyFilter(config, scenario)
    n = scenario.num_robots
    calls = []
    for t in range(warmup + steps):
        actions = np.stack([p(view) for p in policies], axis=1)
        safe, stats = bf.filter(sim.pose, actions, sim.obstacles, sim.n_obstacles)
        if t >= warmup:
            for e, i in np.ndindex(n_envs, n):
                calls.append((e * n + i, i, sim.pose[e, i].copy(), actions[e, i].copy(),
                              sim.obstacles[e, :sim.n_obstacles[e]].copy(), bool(stats.intervened[e, i])))
        sim.step(safe)
    return calls


def _time_calls(fn, args_list, passes: int) -> np.ndarray:
    """Per-call times (s) of ``fn(*args)`` over ``passes`` passes of ``args_list``."""
    for args in args_list[:50]:
        fn(*args)
    times = np.empty(passes * len(args_list))
    clock = time.perf_counter
    k = 0
    gc.collect()
    for _ in range(passes):
        for args in args_list:
            t0 = clock()
            fn(*args)
            times[k] = clock() - t0
            k += 1
    return times


def _line(name: str, times_s: np.ndarray) -> str:
    us = times_s * 1e6
    return f"{name:<58} median {np.median(us):8.2f} us   p99 {np.percentile(us, 99):8.2f} us"


def _slsqp(A, b, W, u_ref, lo, hi):
    from scipy.optimize import minimize

    def cost(u):
        d = u - u_ref
        return d @ W @ d

    def grad(u):
        return 2.0 * W @ (u - u_ref)

    cons = ({"type": "ineq", "fun": lambda u: A @ u - b, "jac": lambda u: A},)
    res = minimize(cost, u_ref, jac=grad, bounds=((lo[0], hi[0]), (lo[1], hi[1])), constraints=cons,
                   method="SLSQP", options={"ftol": 1e-10, "maxiter": 100})
    return res.x


def _batch_time(fn, reps: int) -> float:
    fn()
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@console_main("pe-filter-bench")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pe-filter-bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="seed_1v1_2obs")
    parser.add_argument("--config", default="vcp_cbf")
    parser.add_argument("--envs", type=positive_int, default=8,
                        help="environments recorded")
    parser.add_argument("--steps", type=positive_int, default=125,
                        help="consecutive steps recorded per robot")
    parser.add_argument("--passes", type=positive_int, default=5,
                        help="passes over the calls per single-call path")
    parser.add_argument("--batch", type=positive_int, default=4096)
    args = parser.parse_args(argv)

    import torch

    from pe_safety_filter.torch_qp import solve_qp_torch

    torch.set_num_threads(1)
    scenario = load_scenario(args.scenario)
    config = load_filter_config(args.config)
    calls = record_problems(scenario, config, args.envs, args.steps)
    W = config.weight_matrix
    hw, hh, dt = scenario.half_width, scenario.half_height, scenario.dt
    robots = scenario.robots
    seqs = sorted({(k, i) for k, i, *_ in calls})
    filters = {k: SafetyFilter(config, robots[i], hw, hh, dt) for k, i in seqs}
    osqp_cfg = dataclasses.replace(config, solver="osqp")
    osqp_filters = {k: SafetyFilter(osqp_cfg, robots[i], hw, hh, dt) for k, i in seqs}
    osqp_solvers = {k: OsqpQP(W, [robots[i].v_min, -robots[i].omega_max],
                              [robots[i].v_max, robots[i].omega_max], settings=config.osqp)
                    for k, i in seqs}
    node_args, qps, osqp_args, hard = [], [], [], []
    for k, i, pose, u_nom, obs, intervened in calls:
        r = robots[i]
        A, b, _ = assemble_constraints(pose, config.lookahead, r.radius, obs, hw, hh,
                                       default_gains=(config.gain_obstacle, config.gain_wall,
                                                      config.gain_teammate))
        lo = np.array([r.v_min, -r.omega_max])
        hi = np.array([r.v_max, r.omega_max])
        node_args.append((k, pose, u_nom, obs))
        qps.append((A, b, W, np.clip(u_nom, lo, hi), lo, hi))
        osqp_args.append((k, A, b, np.clip(u_nom, lo, hi)))
        if intervened:
            hard.append((k, pose, u_nom, obs))
    print(f"pe-filter-bench: scenario {scenario.name}, {len(calls)} recorded filter calls "
          f"({len(seqs)} robot sequences x {args.steps} consecutive steps, {len(hard) / len(calls):.0%} "
          f"intervened), {qps[0][0].shape[0]} barrier rows + 4 box rows, one thread", flush=True)

    node = _time_calls(lambda k, p, u, o: filters[k].filter(p, u, o), node_args, args.passes)
    print(_line("SafetyFilter.filter, exact QP + exact whole-step check", node), flush=True)
    hard_t = _time_calls(lambda k, p, u, o: filters[k].filter(p, u, o), hard, max(1, args.passes * 4))
    print(_line(f"  same, intervened calls only ({len(hard)})", hard_t), flush=True)
    exact = _time_calls(solve_qp, qps, args.passes)
    print(_line("exact QP alone, single call (numba)", exact), flush=True)
    with quiet_c_stdout():
        osqp_t = _time_calls(lambda k, A, b, u: osqp_solvers[k].solve(A, b, u), osqp_args, 1)
        osqp_node = _time_calls(lambda k, p, u, o: osqp_filters[k].filter(p, u, o), node_args, 1)
    retries = sum(s.retries for s in osqp_solvers.values())
    print(_line(f"OSQP alone, warm start (eps {config.osqp.eps_abs:g}, {retries} fallbacks)", osqp_t),
          flush=True)
    print(_line("SafetyFilter.filter, OSQP + exact next-step check", osqp_node), flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slsqp_t = _time_calls(_slsqp, qps, 1)
        diffs = [np.abs(_slsqp(*q) - solve_qp(*q)[0]).max() for q in qps[:500]]
    print(_line("scipy SLSQP alone, single call (prototype baseline)", slsqp_t), flush=True)
    ratio = np.median(slsqp_t) / np.median(node)
    print(f"{'ratio SLSQP median / SafetyFilter.filter (exact) median':<58} {ratio:8.1f}x   "
          f"(SLSQP / exact QP alone {np.median(slsqp_t) / np.median(exact):.1f}x; "
          f"max |u_slsqp - u_exact| {np.max(diffs):.1e} on 500)", flush=True)

    # Batched paths.
    B = args.batch
    reps = np.resize(np.arange(len(qps)), B)
    A = np.stack([qps[j][0] for j in reps])
    b = np.stack([qps[j][1] for j in reps])
    u_ref = np.stack([qps[j][3] for j in reps])
    lo = np.stack([qps[j][4] for j in reps])
    hi = np.stack([qps[j][5] for j in reps])
    t = _batch_time(lambda: solve_qp_batch(A, b, W, u_ref, lo, hi), 20)
    print(f"{f'exact QP batched, numba, B={B}':<58} {t * 1e3:8.2f} ms/batch  {B / t:12,.0f} QPs/s",
          flush=True)
    t = _batch_time(lambda: solve_qp_batch_numpy(A, b, W, u_ref, lo, hi), 3)
    print(f"{f'exact QP batched, numpy vectorised, B={B}':<58} {t * 1e3:8.2f} ms/batch  "
          f"{B / t:12,.0f} QPs/s", flush=True)
    sim = BatchSim(scenario, num_envs=B // scenario.num_robots, seed=1)
    view = WorldView.of(sim)
    policies = [make_scripted("pure_pursuit" if r.role == "pursuer" else "flee", scenario, i)
                for i, r in enumerate(scenario.robots)]
    bf = BatchSafetyFilter(config, scenario)
    for _ in range(100):  # move away from the start states
        sim.step(bf.filter(sim.pose, np.stack([p(view) for p in policies], 1), sim.obstacles,
                           sim.n_obstacles)[0])
    u_nom = np.stack([p(view) for p in policies], 1)
    t = _batch_time(lambda: bf.filter(sim.pose, u_nom, sim.obstacles, sim.n_obstacles), 20)
    n_calls = sim.num_envs * scenario.num_robots
    print(f"{f'BatchSafetyFilter.filter (QP + check), {n_calls} robots':<58} {t * 1e3:8.2f} ms/batch  "
          f"{n_calls / t:12,.0f} calls/s", flush=True)
    tA = torch.tensor(A, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    tu = torch.tensor(u_ref, requires_grad=True)
    tW, tlo, thi = torch.tensor(W), torch.tensor(lo), torch.tensor(hi)

    def fwd_bwd():
        u, _ = solve_qp_torch(tA, tb, tu, tW, tlo, thi)
        u.sum().backward()

    t = _batch_time(fwd_bwd, 5)
    print(f"{f'torch exact QP forward+backward, float64, B={B}':<58} {t * 1e3:8.2f} ms/batch  "
          f"{B / t:12,.0f} QPs/s", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
