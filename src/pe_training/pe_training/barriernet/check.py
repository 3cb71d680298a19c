"""Does the deployed form reproduce the training-time layer?

Deployed: the ONNX network (onnxruntime) gives u_ref and slot gains, the gains are
mapped to the filter's constraint order (:meth:`BarrierNetPolicy.gains`) and the
safety filter (:class:`~pe_safety_filter.filter.BatchSafetyFilter`) solves its QP.
Training time: the torch network, the rows of
:class:`~pe_training.barriernet.constraints.ConstraintBuilder` and the torch layer
:func:`~pe_training.barriernet.layer.cbf_qp`. On states recorded from the batch
simulation both must give the same command wherever the filter used its first QP
solution (tiers ``nominal``/``qp``; the filter's tightening and backup are
deployment-only safety layers the QP layer does not model, and are counted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from pe_policy.barriernet_policy import BarrierNetPolicy, batch_filter_gains
from pe_policy.policy import load_policy
from pe_safety_filter.filter import TIER_QP
from pe_sim.batch import BatchSim
from pe_sim.scripted import WorldView
from pe_training.barriernet.layer import cbf_qp
from pe_training.barriernet.network import BarrierNetActorCritic
from pe_training.barriernet.rollout import Setup
from pe_training.train import source_of


def record_states(setup: Setup, expert_source: str, n: int, seed: int, snapshots: int = 5,
                  every: int = 60) -> WorldView:
    """``n`` world states (a B = n view): ``n / snapshots`` episodes played by the expert
    and the other robots behind the filter, snapshotted every ``every`` steps."""
    sc = setup.scenario
    envs = -(-n // snapshots)
    sim = BatchSim(sc, envs, seed=seed)
    view = WorldView.of(sim)
    expert = load_policy(source_of(expert_source), sc, setup.index)
    shots: list[tuple[np.ndarray, ...]] = []
    commands = np.zeros((envs, sc.num_robots, 2))
    for t in range(snapshots * every):
        if t % every == every // 2:
            shots.append(tuple(a.copy() for a in (view.pose, view.velocity, view.obstacles, view.n_obstacles,
                                                  view.step_count, view.episode_seed)))
        for i, p in setup.others.items():
            commands[:, i] = p.act(view)
        commands[:, setup.index] = expert.act(view)
        safe, _ = setup.filter_with(view, commands)
        sim.step(safe)
    arrays = [np.concatenate([s[k] for s in shots])[:n] for k in range(6)]
    return WorldView(*arrays)


def compare(setup: Setup, policy: BarrierNetActorCritic, onnx_path: str | Path,
            view: WorldView) -> dict[str, Any]:
    """Deployed vs training-time commands on the states of ``view`` (see the module docstring)."""
    sc = setup.scenario
    deployed = BarrierNetPolicy.from_onnx(onnx_path, sc, setup.index)
    u_ref = deployed.act(view)
    gains = batch_filter_gains(view, {setup.index: deployed}, sc.num_robots, setup.batch_filter.max_teammates,
                               setup.default_gains)
    commands = np.zeros((len(u_ref), sc.num_robots, 2))
    commands[:, setup.index] = u_ref
    u_filter, stats = setup.batch_filter.filter(view.pose, commands, view.obstacles, view.n_obstacles,
                                                gains=gains)
    u_deployed = u_filter[:, setup.index]
    tier = stats.tier[:, setup.index]
    # Training time: torch network -> rows at unit gain -> torch layer.
    obs = setup.builder.build(view.pose, view.velocity, view.obstacles, view.n_obstacles)
    learner = setup.learner_policy(policy)
    t_u, t_g = learner.outputs(obs)
    A, b1, _ = setup.rows.rows(view.pose, view.obstacles, view.n_obstacles)
    with torch.no_grad():
        u_train, feasible = cbf_qp(torch.as_tensor(t_u), torch.as_tensor(t_g), torch.as_tensor(A),
                                   torch.as_tensor(b1), torch.as_tensor(setup.filter_config.weight_matrix),
                                   torch.as_tensor(setup.lo), torch.as_tensor(setup.hi))
    u_train = u_train.numpy()
    same = (tier <= TIER_QP) & feasible.numpy()
    du = np.abs(u_deployed - u_train)[same]
    return {
        "n": len(u_ref),
        "compared": int(same.sum()),
        "qp_active": int(((tier == TIER_QP) & same).sum()),
        "tightened_or_backup": int((tier > TIER_QP).sum()),
        "max_abs_du": float(du.max()) if du.size else float("nan"),
        "max_abs_du_network": float(max(np.abs(u_ref - t_u).max(),
                                        np.abs(deployed.slot_gains(view) - t_g).max())),
    }


__all__ = ["compare", "record_states"]
