"""Training 1: imitation through the QP (BarrierNet's original recipe, Xiao et al.).

Data: the expert (a scripted pursuer, or any policy source) plays training episodes
behind the safety filter; each step records the learner's observation, the QP rows
at unit gain (the filter's own constraint assembly) and the expert's *filtered*
command (the label). Loss, per sample (commands scaled by their bounds)::

    | QP(u_ref, gains) - u_expert |^2  +  correction_weight * | QP(u_ref, gains) - u_ref |^2

with gradients through the QP layer to u_ref and the gains
(:func:`pe_training.barriernet.layer.cbf_qp`). The second term is small and keeps
u_ref inside the safe set where the expert's command is (without it, any u_ref
that the QP projects onto the label is as good, and the filter would intervene on
every step: the "action aliasing" of policy-internal projections).

DAgger rounds (optional): the learner drives (behind the filter, with its gains),
the expert's filtered command at the visited states is the label, the model is
refit on all data. After every fit the network is validated on held-out validation
seeds behind the filter; the best one is kept.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pe_sim.evaluation import EVAL_SEED_BASE
from pe_training.barriernet.config import BarrierNetConfig
from pe_training.barriernet.layer import cbf_qp
from pe_training.barriernet.network import BarrierNetActorCritic, UnitToPhysical, make_policy
from pe_training.barriernet.rollout import Samples, Setup, collect, evaluate, observation_stats
from pe_training.envs import TRAIN_SEED_STRIDE
from pe_training.run import append_jsonl


def score(summary: dict[str, Any], role: str, max_duration: float) -> float:
    """Validation score (as ``pe-train``'s): win rate, ties broken by capture time,
    then by fewer QP interventions of the learner."""
    from pe_training.train import score as ppo_score

    inter = summary["roles"].get(role, {}).get("intervention_rate", 0.0)
    inter = 0.0 if inter is None or not np.isfinite(inter) else inter
    return ppo_score(summary, role, max_duration) - 1e-4 * inter


class ImitationLoss:
    """The loss of the module docstring for minibatches of :class:`Samples`."""

    def __init__(self, setup: Setup, correction_weight: float, qp_mode: str) -> None:
        self.to_physical = UnitToPhysical(setup.lo, setup.hi, setup.layout)
        self.W = torch.as_tensor(setup.filter_config.weight_matrix)
        self.lo = torch.as_tensor(setup.lo)
        self.hi = torch.as_tensor(setup.hi)
        self.inv_scale = torch.as_tensor(1.0 / setup.scale)
        self.correction_weight = correction_weight
        self.qp_mode = qp_mode

    def __call__(self, policy: BarrierNetActorCritic, obs: torch.Tensor, A: torch.Tensor, b1: torch.Tensor,
                 label: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        a = policy.actor_unit(obs)
        u_ref, gains = self.to_physical(a)
        u_ref, gains = u_ref.double(), gains.double()
        u, feasible = cbf_qp(u_ref, gains, A, b1, self.W, self.lo, self.hi, mode=self.qp_mode)
        err = (((u - label) * self.inv_scale) ** 2).sum(-1)
        corr = (((u - u_ref) * self.inv_scale) ** 2).sum(-1)
        mask = feasible.double()
        n = mask.sum().clamp(min=1.0)
        imit = (err * mask).sum() / n
        correction = (corr * mask).sum() / n
        loss = imit + self.correction_weight * correction
        with torch.no_grad():
            active = ((u - u_ref).abs() * self.inv_scale).amax(-1) > 1e-3
        return loss, {"imitation": float(imit.detach()), "correction": float(correction.detach()),
                      "qp_active": float(active.double().mean()), "infeasible": float(1.0 - mask.mean())}


def fit(policy: BarrierNetActorCritic, optimizer: torch.optim.Optimizer, loss_fn: ImitationLoss,
        data: Samples, epochs: int, batch_size: int, rng: np.random.Generator, log: Path | None,
        stage: str) -> list[dict]:
    """Minibatch Adam on ``data`` for ``epochs``; one log row per epoch."""
    obs = torch.as_tensor(data.obs)
    A = torch.as_tensor(data.A)
    b1 = torch.as_tensor(data.b1)
    label = torch.as_tensor(data.label)
    rows = []
    for epoch in range(epochs):
        t = time.perf_counter()
        perm = torch.as_tensor(rng.permutation(len(data)))
        sums: dict[str, float] = {}
        batches = 0
        for start in range(0, len(data), batch_size):
            idx = perm[start:start + batch_size]
            loss, parts = loss_fn(policy, obs[idx], A[idx], b1[idx], label[idx])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.actor_parameters(), 1.0)
            optimizer.step()
            for k, v in {"loss": float(loss.detach()), **parts}.items():
                sums[k] = sums.get(k, 0.0) + v
            batches += 1
        row = {"stage": stage, "epoch": epoch, "samples": len(data), "wall_s": time.perf_counter() - t,
               **{k: v / max(batches, 1) for k, v in sums.items()}}
        rows.append(row)
        if log is not None:
            append_jsonl(log, row)
    return rows


def train_imitation(cfg: BarrierNetConfig, setup: Setup, run_dir: Path, progress: bool = True
                    ) -> dict[str, Any]:
    """The imitation run; returns what the model card needs (policy, history, figures)."""
    ic = cfg.imitation
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    sc = setup.scenario
    max_duration = sc.max_steps * sc.dt
    val_seed = EVAL_SEED_BASE + cfg.eval.seed_offset
    first_seed = cfg.seed * TRAIN_SEED_STRIDE
    log = run_dir / "progress.jsonl"
    eval_log = run_dir / "eval.jsonl"

    def say(msg: str) -> None:
        if progress:
            print(f"[barriernet-imitation {time.strftime('%H:%M:%S')}] {msg}", flush=True)

    t0 = time.perf_counter()
    data, stats = collect(setup, ic.expert, first_seed, ic.episodes, ic.num_envs)
    say(f"expert data: {stats['samples']:.0f} samples from {ic.episodes} episodes "
        f"(expert capture {100 * stats['capture_rate']:.1f} %, dropped "
        f"{100 * stats['dropped_fraction']:.2f} %) in {time.perf_counter() - t0:.1f} s")
    collections = [{"round": 0, "wall_s": time.perf_counter() - t0, **stats}]
    mean, std = observation_stats(data)
    policy = make_policy(setup.spec.dim, setup.layout, mean, std, cfg.net_arch, cfg.activation,
                         list(cfg.ppo.fixed_std), ic.learning_rate)
    optimizer = torch.optim.Adam(policy.actor_parameters(), lr=ic.learning_rate)
    loss_fn = ImitationLoss(setup, ic.correction_weight, ic.qp_mode)
    best: dict[str, Any] = {"score": -np.inf}
    history: list[dict[str, Any]] = []
    next_seed = first_seed + ic.episodes

    def validate(stage: str) -> None:
        t = time.perf_counter()
        summary = evaluate(setup, setup.learner_policy(policy), ic.validation_episodes, val_seed, ic.num_envs)
        s = score(summary, setup.robot.role, max_duration)
        role = summary["roles"].get(setup.robot.role, {})
        row = {"stage": stage, "samples": len(data), "score": s, "capture_rate": summary["capture_rate"],
               "capture_time_mean_s": summary["capture_time_mean_s"],
               "violation_step_rate": role.get("violation_step_rate"),
               "intervention_rate": role.get("intervention_rate"), "wall_s": time.perf_counter() - t,
               "best": s > best["score"]}
        history.append(row)
        append_jsonl(eval_log, row)
        if row["best"]:
            best.update(score=s, stage=stage, state={k: v.clone() for k, v in policy.state_dict().items()})
        say(f"{stage}: validation capture {100 * row['capture_rate']:.1f} %, intervention "
            f"{100 * (row['intervention_rate'] or 0):.2f} %, violations {row['violation_step_rate']}"
            + (" (best)" if row["best"] else ""))

    t_fit = time.perf_counter()
    rows = fit(policy, optimizer, loss_fn, data, ic.epochs, ic.batch_size, rng, log, "fit0")
    say(f"fit0: {ic.epochs} epochs in {time.perf_counter() - t_fit:.1f} s, last loss {rows[-1]['loss']:.4f} "
        f"(imitation {rows[-1]['imitation']:.4f}, correction {rows[-1]['correction']:.4f})")
    validate("fit0")
    for r in range(1, ic.dagger_rounds + 1):
        t = time.perf_counter()
        more, stats = collect(setup, ic.expert, next_seed, ic.dagger_episodes, ic.num_envs,
                              learner=setup.learner_policy(policy), beta=ic.dagger_beta, rng=rng)
        next_seed += ic.dagger_episodes
        collections.append({"round": r, "wall_s": time.perf_counter() - t, **stats})
        data = Samples.cat([data, more])
        say(f"DAgger round {r}: +{stats['samples']:.0f} samples (learner capture "
            f"{100 * stats['capture_rate']:.1f} %), {len(data)} total")
        rows = fit(policy, optimizer, loss_fn, data, ic.dagger_epochs, ic.batch_size, rng, log, f"dagger{r}")
        say(f"dagger{r}: last loss {rows[-1]['loss']:.4f}")
        validate(f"dagger{r}")
    policy.load_state_dict(best["state"])
    (run_dir / "collections.json").write_text(json.dumps(collections, indent=2) + "\n")
    return {"policy": policy, "validation": history, "chosen": best["stage"], "samples": len(data),
            "collections": collections, "steps": int(sum(c["samples"] for c in collections)),
            "train_time_s": time.perf_counter() - t0}


__all__ = ["ImitationLoss", "fit", "score", "train_imitation"]
