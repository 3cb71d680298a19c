"""``pe-train``: train a policy with SB3 PPO on the batch VecEnv, export it to ONNX and
write its model card.

    pe-train pursuer_bench_flee                       # config/training/pursuer_bench_flee.yaml
    pe-train pursuer_bench_flee --set ppo.learning_rate=1e-4 --total-steps 2e6
    pe-train pursuer_bench_flee --smoke               # a few thousand steps, seconds
    pe-train pursuer_bench_flee --resume              # continue from the run's latest checkpoint
    pe-train pursuer_bench_flee --ship models         # also copy the .onnx + card to models/
    pe-train pursuer_bench_flee --seeds 1-5           # a seed sweep and its spread (pe_training.sweep)
    pe-train pursuer_bench_flee --seeds 1-5 --ray     # the same runs as Ray tasks (docs/ray.md)

What a run does (see :mod:`pe_training.run` for the folder layout):

1. builds the training env: :class:`~pe_sim.envs.vec_env.BatchVecEnv` (``num_envs``
   episodes stepped in one batched call; episode seeds ``seed * 1e7 + k``, all below
   ``EVAL_SEED_BASE``), the safety filter in the loop when ``filter.in_loop``, inside
   SB3's ``VecNormalize`` (observation statistics are exported with the policy);
2. trains SB3 PPO (``MlpPolicy``: separate actor/critic MLPs, state-independent log-std,
   actions clipped to [-1, 1] and mapped linearly to the robot's bounds by the env;
   time-limit truncation is bootstrapped by SB3 from ``TimeLimit.truncated`` +
   ``terminal_observation``), torch on ``torch_threads`` (1) threads, with a progress bar,
   TensorBoard logs, periodic validation on held-out seeds and checkpoints;
3. exports the best (or final) checkpoint's deterministic actor to ONNX
   (:mod:`pe_training.export`), evaluates that file with ``pe-eval`` on held-out
   episodes (plus the scripted baselines of ``final_eval.baselines``) and writes the
   model card (config, seed, steps, wall time, git revision, evaluation figures and the
   commands that reproduce them).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecNormalize

from pe_policy.contract import Envelope, PolicyMetadata
from pe_policy.policy import SCRIPTED_PREFIX, load_policy
from pe_sim.cli import UserError, console_main
from pe_sim.envs.actions import CommandBounds
from pe_sim.envs.core import DEFAULT_KIND, PolicyController
from pe_sim.evaluation import EVAL_SEED_BASE, run_episodes
from pe_sim.jobs import add_ray_argument, seed_list
from pe_sim.metrics import summarize
from pe_sim.observation import ObservationSpec
from pe_sim.scenario import Scenario, load_scenario
from pe_sim.scripted import KINDS
from pe_training.activations import ACTIVATIONS
from pe_training.callbacks import CheckpointEvery, ProgressCallback, ValidationCallback
from pe_training.config import TrainConfig, load_train_config, smoke_overrides
from pe_training.envs import (
    TRAIN_SEED_STRIDE,
    learner_index,
    make_action_filter,
    make_training_env,
    training_scenario,
)
from pe_training.export import export_onnx
from pe_training.model_card import eval_table, write_model_card
from pe_training.run import (
    CHECKPOINT_DIR,
    Checkpoint,
    command_line,
    finished_result,
    git_revision,
    latest_checkpoint,
    now,
    save_config,
    versions,
)
from pe_training.sweep import sweep

# --------------------------------------------------------------------------- pieces


def make_model(cfg: TrainConfig, env: VecNormalize, tensorboard_log: str | None) -> PPO:
    """SB3 PPO with the config's hyperparameters (separate actor and critic MLPs)."""
    p = cfg.ppo
    lr: Any = LinearSchedule(p.learning_rate, 0.0, 1.0) if p.linear_lr else p.learning_rate
    return PPO(
        "MlpPolicy", env, learning_rate=lr, n_steps=p.n_steps, batch_size=p.batch_size,
        n_epochs=p.n_epochs, gamma=p.gamma, gae_lambda=p.gae_lambda, clip_range=p.clip_range,
        ent_coef=p.ent_coef, vf_coef=p.vf_coef, max_grad_norm=p.max_grad_norm, target_kl=p.target_kl,
        policy_kwargs={"net_arch": {"pi": list(p.net_arch), "vf": list(p.net_arch)},
                       "activation_fn": ACTIVATIONS[p.activation], "log_std_init": p.log_std_init},
        tensorboard_log=tensorboard_log, seed=cfg.seed, device="cpu", verbose=0,
    )


def wrap_normalize(cfg: TrainConfig, venv: Any) -> VecNormalize:
    n = cfg.normalize
    return VecNormalize(venv, training=True, norm_obs=n.obs, norm_reward=n.reward, clip_obs=n.clip_obs,
                        clip_reward=n.clip_reward, gamma=cfg.ppo.gamma, epsilon=n.epsilon)


def policy_metadata(cfg: TrainConfig, scenario: Scenario, index: int) -> PolicyMetadata:
    """What the exported file declares (see :mod:`pe_policy.contract`)."""
    return PolicyMetadata.for_robot(scenario, index, cfg.name, k_obstacles=cfg.k_obstacles,
                                    config_hash=cfg.config_hash())


def source_of(kind_or_source: str) -> str:
    """A policy source for ``load_policy``/``pe-eval`` from a config value (bare kinds allowed)."""
    if kind_or_source in KINDS:
        return SCRIPTED_PREFIX + kind_or_source
    return kind_or_source


def other_sources(cfg: TrainConfig, scenario: Scenario, index: int) -> dict[int, str]:
    """Policy source of every robot but the learner."""
    role = scenario.robots[index].role
    out = {}
    for i, robot in enumerate(scenario.robots):
        if i == index:
            continue
        if robot.role != role:
            out[i] = source_of(cfg.opponent)
        else:
            out[i] = source_of(cfg.teammate or SCRIPTED_PREFIX + DEFAULT_KIND[role])
    return out


def filtered_indices(scenario: Scenario, which: str) -> list[int]:
    """Robots behind the post-hoc filter, as ``pe-eval --filter`` reads it."""
    from pe_policy.evaluate import filtered_robot_indices

    return filtered_robot_indices(scenario, which)


def learner_matchup(cfg: TrainConfig, scenario: Scenario, index: int,
                    learner_source: str) -> tuple[dict[str, str], list[str]]:
    """(policy source by role, ``NAME=SOURCE`` robot overrides) that put ``learner_source``
    in the learner's seat, its opponents and teammates as in training."""
    role = scenario.robots[index].role
    other_role = "evader" if role == "pursuer" else "pursuer"
    by_role = {other_role: source_of(cfg.opponent)}
    if len(scenario.indices(role)) > 1:
        by_role[role] = source_of(cfg.teammate or SCRIPTED_PREFIX + DEFAULT_KIND[role])
        return by_role, [f"{scenario.robots[index].name}={learner_source}"]
    by_role[role] = learner_source
    return by_role, []


def pe_eval_argv(cfg: TrainConfig, scenario: Scenario, index: int, learner_source: str,
                 episodes: int, which_filter: str) -> list[str]:
    """The ``pe-eval`` command line of :func:`run_final_eval` (for the model card)."""
    by_role, robots = learner_matchup(cfg, scenario, index, learner_source)
    argv = ["--scenario", cfg.scenario, "--episodes", str(episodes)]
    for role in ("pursuer", "evader"):
        argv += [f"--{role}", by_role[role]]
    for item in robots:
        argv += ["--robot", item]
    return [*argv, "--filter", which_filter]


def run_final_eval(cfg: TrainConfig, scenario: Scenario, index: int, learner_source: str,
                   episodes: int, which_filter: str, out: Path) -> dict[str, Any]:
    """What ``pe-eval`` with :func:`pe_eval_argv` does: evaluate, write the records and the
    summary to ``out``; the summary and its table."""
    from pe_policy.evaluate import evaluate
    from pe_sim.cli import progress_bar
    from pe_sim.metrics import format_summary, write_jsonl

    by_role, robots = learner_matchup(cfg, scenario, index, learner_source)
    with progress_bar(episodes, f"final eval {Path(learner_source).name}") as bar:
        result = evaluate(cfg.scenario, by_role, episodes, robots=robots, filter=which_filter,
                          on_record=lambda _: bar.update(1))
    write_jsonl(result.records, out / "episodes.jsonl")
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2, default=float) + "\n")
    table = format_summary(result.summary, f"scenario {result.scenario.name}, seeds "
                           f"{EVAL_SEED_BASE}..{EVAL_SEED_BASE + episodes - 1}")
    return {"summary": json.loads((out / "summary.json").read_text()), "table": table}


def ship_copy(onnx_path: Path, ship: str | Path | None) -> list[Path]:
    """Where the model card goes: ``onnx_path``, and its copy in ``ship`` when given."""
    targets = [onnx_path]
    if ship is not None:
        shipped = Path(ship) / onnx_path.name
        shipped.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(onnx_path, shipped)
        targets.append(shipped)
    return targets


def final_evaluation(cfg: TrainConfig, scenario: Scenario, index: int, policy: Path, run_dir: Path,
                     show: bool = True) -> dict[str, Any] | None:
    """``pe-eval`` of the exported ``policy`` and of the config's baselines (a missing
    ``.onnx`` baseline is skipped with a note) on the held-out seeds; the card's
    ``final_eval`` entry (None when disabled)."""
    fe = cfg.final_eval
    if fe.episodes <= 0:
        return None
    candidates = [(cfg.name, str(policy))]
    for src in fe.baselines:
        if src.endswith(".onnx") and not Path(src).is_file():
            print(f"note: baseline {src} not found, skipped", file=sys.stderr)
            continue
        candidates.append((src, src))
    results = []
    for label, source in candidates:
        argv = pe_eval_argv(cfg, scenario, index, source, fe.episodes, fe.filter)
        out = run_final_eval(cfg, scenario, index, source, fe.episodes, fe.filter,
                             run_dir / "final_eval" / Path(label.replace(":", "_")).name)
        results.append({"label": label, "command": command_line("pe-eval", argv), "summary": out["summary"]})
        if show:
            print(out["table"], file=sys.stderr)
    return {"episodes": fe.episodes, "seed": EVAL_SEED_BASE, "filter": fe.filter, "results": results}


def resume_checkpoint(cfg: TrainConfig, resume: str) -> Checkpoint:
    """The checkpoint ``--resume`` continues (``latest`` or a path); refused when there is
    none or the run already reached ``total_steps``."""
    ckpt = latest_checkpoint(cfg.run_dir) if resume == "latest" else Checkpoint.find(resume)
    if ckpt is None:
        raise UserError(f"--resume: no checkpoint in {cfg.run_dir / CHECKPOINT_DIR}")
    done_steps = int(ckpt.state().get("num_timesteps", 0))
    if done_steps >= cfg.total_steps:
        raise UserError(f"--resume: {cfg.run_dir} already trained {done_steps:,} of total_steps "
                        f"{cfg.total_steps:,} (the run is finished); to train on, give more steps "
                        f"(--total-steps); to re-export it: pe-export {cfg.run_dir}")
    return ckpt


def save_interrupted(model: PPO, ckpt_dir: Path, state: dict[str, Any], command: str) -> None:
    """On Ctrl-C: save the model as a periodic checkpoint (``--resume`` picks the latest)
    and print the command that continues the run."""
    ckpt = Checkpoint(ckpt_dir / f"step_{model.num_timesteps:010d}.zip")
    ckpt.save(model, model.get_vec_normalize_env(), state)
    resume = command if "--resume" in command.split() else f"{command} --resume"
    print(f"\ninterrupted at {model.num_timesteps:,} steps; saved {ckpt.model}\n"
          f"continue with: {resume}", file=sys.stderr)


def score(summary: dict[str, Any], role: str, max_duration: float) -> float:
    """Validation score: the role's win rate, ties broken by faster (pursuer) or later
    (evader) captures."""
    rate = summary["capture_rate"]
    t = summary["capture_time_mean_s"]
    t = max_duration if not np.isfinite(t) else t
    if role == "pursuer":
        return rate - 1e-3 * t / max_duration
    return (1.0 - rate) + 1e-3 * t / max_duration


# --------------------------------------------------------------------------- training


def train(
    cfg: TrainConfig,
    *,
    command: str = "",
    resume: str | None = None,
    ship: str | Path | None = None,
    progress: bool = True,
    final_eval: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """One training run (see the module docstring); returns the model card."""
    t_start = time.perf_counter()
    started, revision = now(), git_revision()  # the code the run starts with
    torch.set_num_threads(cfg.torch_threads)
    run_dir = cfg.run_dir
    ckpt_dir = run_dir / CHECKPOINT_DIR
    ckpt = resume_checkpoint(cfg, resume) if resume is not None else None
    if resume is None and ckpt_dir.exists() and any(ckpt_dir.iterdir()):
        if not overwrite:
            raise UserError(f"{run_dir} already has checkpoints: pass --resume to continue it or "
                            "--overwrite to start over")
        shutil.rmtree(run_dir)
    save_config(cfg, run_dir)
    scenario = training_scenario(cfg)
    eval_scenario = load_scenario(cfg.scenario)
    index = learner_index(cfg, scenario)
    robot = scenario.robots[index]
    venv = make_training_env(cfg, scenario)
    previous_wall = 0.0
    if ckpt is not None:
        state = ckpt.state()
        if state.get("config_hash") != cfg.config_hash():
            print(f"warning: resuming {ckpt.model} trained with config hash {state.get('config_hash')}, "
                  f"the config now hashes to {cfg.config_hash()}", file=sys.stderr)
        model, env = ckpt.load(venv)
        if env is None:
            env = wrap_normalize(cfg, venv)
            model.set_env(env)
        env.training = True
        venv.seed(int(state.get("next_seed", cfg.seed * TRAIN_SEED_STRIDE)))
        previous_wall = float(state.get("wall_s", 0.0))
        print(f"resuming from {ckpt.model} at {model.num_timesteps:,} steps", file=sys.stderr)
    else:
        env = wrap_normalize(cfg, venv)
        model = make_model(cfg, env, str(run_dir / "tb"))
        venv.seed(cfg.seed * TRAIN_SEED_STRIDE)  # PPO(seed=) re-seeded the env with the bare seed
    (run_dir / "run.json").write_text(json.dumps({
        "name": cfg.name, "command": command, "config_hash": cfg.config_hash(),
        "git_revision": revision,
        "started": started, "robot": robot.name, "robot_index": index, "versions": versions(),
        "resumed_from": resume}, indent=2) + "\n")

    def state() -> dict[str, Any]:
        return {"num_timesteps": model.num_timesteps, "next_seed": int(venv.next_seed),
                "wall_s": previous_wall + time.perf_counter() - t_start, "config_hash": cfg.config_hash()}

    others = other_sources(cfg, eval_scenario, index)
    eval_filtered = filtered_indices(eval_scenario, cfg.eval.filter)
    eval_filter = (make_action_filter(cfg.filter.config, eval_scenario, eval_filtered)
                   if eval_filtered else None)
    other_actors = {i: load_policy(src, eval_scenario, i).act for i, src in others.items()}

    def validate() -> dict[str, Any]:
        vec_normalize = model.get_vec_normalize_env()

        def act(obs: np.ndarray) -> np.ndarray:
            x = vec_normalize.normalize_obs(obs) if vec_normalize is not None else obs
            return model.predict(x, deterministic=True)[0]

        learner = PolicyController(act, eval_scenario, index, k_obstacles=cfg.k_obstacles)
        actors = [learner if i == index else other_actors[i] for i in range(eval_scenario.num_robots)]
        records = run_episodes(eval_scenario, actors, cfg.eval.episodes,
                               seed=EVAL_SEED_BASE + cfg.eval.seed_offset, num_envs=cfg.eval.num_envs,
                               action_filter=eval_filter, filtered_robots=eval_filtered)
        return summarize(records)

    best = Checkpoint(ckpt_dir / "best.zip")
    max_duration = eval_scenario.max_steps * eval_scenario.dt
    validation = ValidationCallback(
        cfg.eval.every_steps, validate, lambda s: score(s, robot.role, max_duration), best,
        run_dir / "eval.jsonl", state, robot.role)
    progress_cb = ProgressCallback(cfg.total_steps, run_dir / "progress.jsonl", show_bar=progress)
    callbacks = [progress_cb, validation, CheckpointEvery(cfg.checkpoint_every_steps, ckpt_dir, state)]
    remaining = cfg.total_steps - model.num_timesteps
    t_train = time.perf_counter()
    if remaining > 0:
        try:
            model.learn(total_timesteps=remaining, callback=callbacks, tb_log_name="ppo",
                        reset_num_timesteps=resume is None, progress_bar=False)
        except KeyboardInterrupt:
            save_interrupted(model, ckpt_dir, state(), command)
            raise
    train_time = time.perf_counter() - t_train
    if not validation.history or validation.history[-1]["num_timesteps"] != model.num_timesteps:
        validation.run()  # the final model is a candidate too
    final = Checkpoint(ckpt_dir / "final.zip")
    final.save(model, model.get_vec_normalize_env(), state())

    # -- export -------------------------------------------------------------------------------
    chosen = best if cfg.export == "best" and best.model.exists() else final
    export_model, export_norm = chosen.load()
    onnx_path = run_dir / f"{cfg.name}.onnx"
    export_onnx(export_model.policy, export_norm, onnx_path, policy_metadata(cfg, eval_scenario, index))
    targets = ship_copy(onnx_path, ship)

    # -- final evaluation through pe-eval --------------------------------------------------------
    evaluation = final_evaluation(cfg, eval_scenario, index, targets[-1], run_dir) if final_eval else None

    # -- model card ------------------------------------------------------------------------------
    progress_rows = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()[1:]] \
        if (run_dir / "progress.jsonl").exists() else []
    rates = [row["steps_per_s"] for row in progress_rows]
    chosen_state = chosen.state()
    card = {
        "name": cfg.name,
        "onnx": onnx_path.name,
        "summary": f"PPO {robot.role} for scenario `{eval_scenario.name}` vs `{cfg.opponent}`"
                   + (" with the VCP-CBF filter in the training loop" if cfg.filter.in_loop else
                      " (unconstrained training; deploy with the post-hoc filter)") + ".",
        "variant": ("filter-in-the-loop (BatchSafetyFilter on every training action, correction penalty "
                    f"{cfg.filter.correction_penalty})") if cfg.filter.in_loop else "unconstrained",
        "role": robot.role, "robot": robot.name, "scenario": eval_scenario.name,
        "command": command, "config": cfg.to_dict(), "config_hash": cfg.config_hash(),
        "seed": cfg.seed, "steps": int(model.num_timesteps),
        "wall_time_s": previous_wall + time.perf_counter() - t_start, "train_time_s": train_time,
        "steps_per_s_median": float(np.median(rates)) if rates else None,
        "exported_checkpoint": f"{CHECKPOINT_DIR}/{chosen.model.name}",
        "exported_steps": int(chosen_state.get("num_timesteps", model.num_timesteps)),
        "export_rule": "best validation score" if chosen is best else "final model",
        "git_revision": revision, "started": started, "finished": now(),
        "versions": versions(),
        "observation_spec": ObservationSpec.for_robot(eval_scenario, index, cfg.k_obstacles).to_dict(),
        "envelope": Envelope.of(eval_scenario).to_dict(),
        "action_bounds": {"low": CommandBounds.of(robot).low.tolist(),
                          "high": CommandBounds.of(robot).high.tolist()},
        "validation": validation.history,
        "final_eval": evaluation,
    }
    for target in targets:
        write_model_card(card, target)
    (run_dir / "model_card.json").write_text(json.dumps(card, indent=2, default=float) + "\n")
    if evaluation:
        print(eval_table(evaluation["results"], robot.role), file=sys.stderr)
    print(f"done: {model.num_timesteps:,} steps in {card['wall_time_s'] / 60:.1f} min; exported "
          + ", ".join(str(t) for t in targets), file=sys.stderr)
    return card


def train_or_resume(cfg: TrainConfig, *, command: str = "", ship: str | Path | None = None,
                    progress: bool = False, final_eval: bool = True) -> dict[str, Any]:
    """Bring ``cfg``'s run to its end from wherever it stopped (what a retried job does): a
    finished run's model card is reused (same config hash), an unfinished run continues from
    its latest checkpoint, anything else trains afresh. Returns the model card."""
    card = finished_result(cfg.run_dir / "model_card.json", cfg.config_hash())
    if card is not None:
        return card
    ckpt = latest_checkpoint(cfg.run_dir)
    unfinished = ckpt is not None and ckpt.state().get("num_timesteps", 0) < cfg.total_steps
    return train(cfg, command=command, resume="latest" if unfinished else None, ship=ship,
                 progress=progress, final_eval=final_eval, overwrite=True)


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pe-train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", default=None,
                   help="training config: a name in config/training/ or a YAML path "
                        "(default: built-in defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (dotted for sections, YAML value), e.g. ppo.n_epochs=10")
    p.add_argument("--name", help="run name (runs/<name>/, the exported file's name)")
    p.add_argument("--scenario", help="scenario name or YAML path")
    p.add_argument("--role", choices=("pursuer", "evader"))
    p.add_argument("--robot", help="learning robot by name (default: first robot of the role)")
    p.add_argument("--opponent", help="scripted:<kind> or a .onnx policy for every opponent")
    p.add_argument("--teammate", help="scripted:<kind> or a .onnx policy for the learner's teammates")
    p.add_argument("--algorithm", choices=("ppo",))
    p.add_argument("--total-steps", type=float, help="env steps to train (1e6 style accepted)")
    p.add_argument("--seed", type=int)
    p.add_argument("--seeds", type=seed_list, metavar="SEEDS",
                   help="a sweep: one run per training seed (1-5, 1,3,5), <name>-seed<s> each, "
                        "and their spread (<output-dir>/<name>-seeds/sweep.json)")
    p.add_argument("--num-envs", type=int)
    p.add_argument("--output-dir", help="runs go to <output-dir>/<name>/ (default runs)")
    p.add_argument("--filter-in-loop", action=argparse.BooleanOptionalAction, default=None,
                   help="apply the batch safety filter to every training action")
    p.add_argument("--correction-penalty", type=float, help="reward penalty per unit of filter correction")
    p.add_argument("--smoke", action="store_true", help="a few thousand steps with tiny evaluations (tests)")
    p.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                   help="continue from a checkpoint (default: the run's latest)")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run folder of the same name")
    p.add_argument("--ship", metavar="DIR", help="also copy the .onnx and model card to DIR (e.g. models)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-final-eval", action="store_true", help="skip the model card's pe-eval figures")
    add_ray_argument(p)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = smoke_overrides() if args.smoke else []
    overrides += list(args.set)
    flags = {"name": args.name, "scenario": args.scenario, "role": args.role, "robot": args.robot,
             "opponent": args.opponent, "teammate": args.teammate, "algorithm": args.algorithm,
             "seed": args.seed, "num_envs": args.num_envs, "output_dir": args.output_dir,
             "filter.in_loop": args.filter_in_loop, "filter.correction_penalty": args.correction_penalty,
             "total_steps": int(args.total_steps) if args.total_steps is not None else None}
    overrides += [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in flags.items()
                  if v is not None]
    cfg = load_train_config(args.config, overrides)
    if args.smoke and args.name is None and not any(o.startswith("name=") for o in args.set):
        cfg.name += "-smoke"
    return cfg


@console_main("pe-train")
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seed is not None:
        parser.error("--seed and --seeds: give one")
    if args.ray is not None and args.seeds is None:
        parser.error("--ray runs the runs of a sweep: give --seeds")
    cfg = config_from_args(args)
    if args.seeds is not None:
        if args.resume not in (None, "latest"):
            parser.error("--resume with --seeds continues each seed's run from its latest checkpoint: "
                         "give no CHECKPOINT")
        sweep(cfg, args.seeds, command=command_line("pe-train", argv), ray_address=args.ray, ship=args.ship,
              final_eval=not args.no_final_eval, overwrite=args.overwrite, resume=args.resume is not None)
        return 0
    train(cfg, command=command_line("pe-train", argv), resume=args.resume, ship=args.ship,
          progress=not args.no_progress, final_eval=not args.no_final_eval, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
