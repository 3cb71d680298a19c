"""``pe-barriernet-train``: train a BarrierNet pursuer (imitation or PPO), export the
network to ONNX, check the export against the training-time layer, evaluate it with
``pe-eval`` and write its model card.

    pe-barriernet-train barriernet_imitation_bench            # config/training/<name>.yaml
    pe-barriernet-train barriernet_ppo_bench --set ppo.correction_penalty=0
    pe-barriernet-train barriernet_imitation_bench --smoke    # seconds
    pe-barriernet-train barriernet_ppo_bench --ship models    # also copy .onnx + card to models/

Run folder ``runs/<name>/``: ``config.yaml``, ``run.json``, ``progress.jsonl`` (per
epoch / rollout), ``eval.jsonl`` (validations), ``policy.pt`` (the chosen network: the
warm start of a PPO run), ``checkpoints/`` (PPO), ``<name>.onnx`` + model card,
``final_eval/``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from pe_policy.contract import Envelope
from pe_sim.cli import UserError, console_main
from pe_sim.evaluation import EVAL_SEED_BASE
from pe_sim.scenario import load_scenario
from pe_training.barriernet.card import write_card
from pe_training.barriernet.check import compare, record_states
from pe_training.barriernet.config import BarrierNetConfig, load_barriernet_config, smoke_overrides
from pe_training.barriernet.export import export_barriernet
from pe_training.barriernet.rollout import Setup
from pe_training.envs import learner_index
from pe_training.model_card import eval_table
from pe_training.run import command_line, git_revision, now, save_config, versions
from pe_training.train import final_evaluation, policy_metadata, ship_copy

METHOD_SUMMARY = {
    "imitation": "behaviour cloning of the expert's filtered command with the loss on the post-QP "
                 "command, gradients through the differentiable QP layer, then DAgger rounds",
    "ppo": "SB3 PPO; the sampled pre-QP action is (u_ref, gains) with fixed-std Gaussian noise, the "
           "filter's QP runs in the batched environment step, the reward is penalised by the QP's "
           "correction size",
}


def save_policy(policy, setup: Setup, cfg: BarrierNetConfig, path: Path) -> None:
    """The chosen network (state dict + what rebuilds it), the warm start of PPO runs."""
    fe = policy.features_extractor
    torch.save({"state_dict": policy.state_dict(), "obs_mean": fe.mean.numpy().tolist(),
                "obs_std": (1.0 / fe.inv_std.numpy()).tolist(), "net_arch": list(cfg.net_arch),
                "activation": cfg.activation, "layout": setup.layout.to_dict(),
                "config_hash": cfg.config_hash()}, path)


def run(
    cfg: BarrierNetConfig,
    *,
    command: str = "",
    ship: str | Path | None = None,
    progress: bool = True,
    final_eval: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """One training run of ``cfg.method``; returns the model card."""
    t_start = time.perf_counter()
    started = now()
    torch.set_num_threads(cfg.torch_threads)
    run_dir = cfg.run_dir
    if cfg.method == "ppo" and cfg.ppo.warm_start:
        from pe_training.barriernet.ppo import load_warm_start

        load_warm_start(cfg.ppo.warm_start)  # a missing warm start is refused before any work
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise UserError(f"{run_dir} exists: pass --overwrite to start over")
        shutil.rmtree(run_dir)
    save_config(cfg, run_dir, "pe-barriernet-train")
    scenario = load_scenario(cfg.scenario)
    index = learner_index(cfg, scenario)
    t_setup = time.perf_counter()
    if progress:
        print("setting up: filter, QP layer, opponents (numba kernels compile on a first run)...",
              file=sys.stderr, flush=True)
    setup = Setup(cfg, scenario, index)
    if progress:
        print(f"set up in {time.perf_counter() - t_setup:.0f} s", file=sys.stderr, flush=True)
    (run_dir / "run.json").write_text(json.dumps({
        "name": cfg.name, "method": cfg.method, "command": command, "config_hash": cfg.config_hash(),
        "git_revision": git_revision(), "started": started, "robot_index": index,
        "versions": versions()}, indent=2) + "\n")
    if cfg.method == "imitation":
        from pe_training.barriernet.imitation import train_imitation

        result = train_imitation(cfg, setup, run_dir, progress)
        steps_unit = "labelled samples (expert + DAgger)"
    else:
        from pe_training.barriernet.ppo import train_ppo

        result = train_ppo(cfg, setup, run_dir, progress)
        steps_unit = "env steps"
    train_wall = time.perf_counter() - t_start
    policy = result["policy"]
    save_policy(policy, setup, cfg, run_dir / "policy.pt")

    # -- export + check ---------------------------------------------------------------------
    onnx_path = run_dir / f"{cfg.name}.onnx"
    extra = {"filter": setup.filter_config.to_dict(), "method": cfg.method, "config_hash": cfg.config_hash()}
    export_barriernet(policy, setup.layout, setup.lo, setup.hi, onnx_path,
                      policy_metadata(cfg, scenario, index), extra)
    states = record_states(setup, cfg.imitation.expert, 1000, EVAL_SEED_BASE + cfg.eval.seed_offset + 50_000)
    check = compare(setup, policy, onnx_path, states)
    targets = ship_copy(onnx_path, ship)

    # -- final evaluation through pe-eval -------------------------------------------------------
    evaluation = (final_evaluation(cfg, scenario, index, targets[-1], run_dir, show=progress)
                  if final_eval else None)

    card = {
        "name": cfg.name, "onnx": onnx_path.name,
        "summary": f"BarrierNet {scenario.robots[index].role} ({cfg.method}) for scenario "
                   f"`{scenario.name}` vs `{cfg.opponent}`: network -> (u_ref, class-K gains) -> the "
                   "safety filter's VCP-CBF QP.",
        "method_summary": METHOD_SUMMARY[cfg.method],
        "role": scenario.robots[index].role, "robot": scenario.robots[index].name, "scenario": scenario.name,
        "command": command, "config": cfg.to_dict(), "config_hash": cfg.config_hash(), "seed": cfg.seed,
        "steps": int(result["steps"]), "steps_unit": steps_unit,
        "wall_time_s": train_wall, "train_time_s": result["train_time_s"], "chosen": result["chosen"],
        "scenario_config": scenario.to_dict(),
        "observation_spec": setup.spec.to_dict(), "gain_layout": setup.layout.to_dict(),
        "envelope": Envelope.of(scenario).to_dict(),
        "action_bounds": {"low": setup.lo.tolist(), "high": setup.hi.tolist()},
        "filter": setup.filter_config.to_dict(), "export_check": check,
        "git_revision": git_revision(), "started": started, "finished": now(), "versions": versions(),
        "validation": result["validation"],
        "collections": result.get("collections"),
        "final_eval": evaluation,
    }
    for target in targets:
        write_card(card, target)
    (run_dir / "model_card.json").write_text(json.dumps(card, indent=2, default=float) + "\n")
    if evaluation and progress:
        print(eval_table(evaluation["results"], card["role"]), file=sys.stderr)
    print(f"done: {cfg.method} in {train_wall / 60:.1f} min (training); export check max |du| "
          f"{check['max_abs_du']:.2e} on {check['compared']} of {check['n']} states; exported "
          + ", ".join(str(t) for t in targets), file=sys.stderr)
    return card


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pe-barriernet-train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="config name in config/training/ (barriernet_*) or a YAML path")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (dotted for sections, YAML value)")
    p.add_argument("--name", help="run name (runs/<name>/, the exported file's name)")
    p.add_argument("--output-dir", help="runs go to <output-dir>/<name>/")
    p.add_argument("--smoke", action="store_true", help="tiny data / few steps (tests; seconds)")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run folder of the same name")
    p.add_argument("--ship", metavar="DIR", help="also copy the .onnx and model card to DIR (e.g. models)")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    p.add_argument("--no-final-eval", action="store_true", help="skip the model card's pe-eval figures")
    return p


@console_main("pe-barriernet-train")
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    overrides = list(args.set)
    if args.name:
        overrides.append(f"name={args.name}")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    cfg = load_barriernet_config(args.config, overrides)
    if args.smoke:
        cfg = load_barriernet_config(args.config, smoke_overrides(cfg.method) + overrides)
        if not args.name:
            cfg.name += "-smoke"
    run(cfg, command=command_line("pe-barriernet-train", argv), ship=args.ship, progress=not args.no_progress,
        final_eval=not args.no_final_eval, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
