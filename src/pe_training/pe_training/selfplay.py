"""``pe-selfplay``: a pursuer and an evader trained in alternation against opponent pools
of each other's frozen snapshots plus scripted opponents, sampled by prioritised
fictitious self-play, the safety filter in the loop as each learner's config says
(``filter.in_loop`` with ``robots: all`` filters every robot, as deployed).

    pe-selfplay selfplay_bench                    # config/training/selfplay_bench.yaml
    pe-selfplay selfplay_bench --set generations=4 --set steps_per_generation=2e6
    pe-selfplay selfplay_bench --smoke            # two tiny generations, seconds (tests)
    pe-selfplay selfplay_bench --resume           # go on after the last finished generation
    pe-selfplay selfplay_bench --fork runs/selfplay_bench --set name=longer --set generations=24
    pe-selfplay selfplay_bench --seeds 1-3 --ray  # three runs as Ray tasks, and their spread

Generation g (1-based):

1. the pursuer learner trains ``steps_per_generation`` env steps; every episode of every
   env draws its evader from the evader pool (scripted members + evader snapshots) with
   PFSP weights from the learner's latest cross-play win rates (uniform in generation 1);
2. its policy is exported to ``generations/pursuer_g<g>.onnx``; every
   ``pool.snapshot_every`` generations that file joins the pursuer pool;
3. the evader learner does the same against the pursuer pool;
4. the cross-play matrix of every pursuer (scripted, every generation's) against every
   evader on ``crossplay_episodes`` held-out *validation* seeds, filter on every robot,
   with its Nash averaging, is appended to ``crossplay.jsonl`` (each pair is played once
   and reused), and a row per generation to ``selfplay.jsonl`` (wall times, steps/s, PFSP
   weights, in-training win rates per member).

Both PPO models live through the run (``learn(reset_num_timesteps=False)``); the learning
rate decays linearly over the learner's whole budget when its config says ``linear_lr``.
At the end: ``<name>_pursuer.onnx`` and ``<name>_evader.onnx`` (the last generation) with
model cards (each evaluated on the pursuer config's ``final_eval.episodes`` held-out test
episodes against its role's reference opponents and the other side's final policy),
``crossplay.png`` and ``selfplay.json``.

Each learner is an SB3 PPO set up from a ``pe-train`` config, or from a BarrierNet PPO
config (``pursuer_learner: barriernet``; see :mod:`pe_training.selfplay_learner`).

Teams (e.g. ``pursuit_2v1``): each learner drives the first robot of its role; its
teammates run the learner's latest export (the learner config's ``teammate``, or the
role's scripted default, before the first export), so the shipped team is one policy on
every robot of the role; pool members drive every opponent robot.

After each generation both learners are checkpointed (model, VecNormalize statistics, next
training episode seed) and every cross-play pair played is kept in ``matches.jsonl``;
``--resume`` continues after the last finished generation (also to extend a finished run
with ``--set generations=N``). The pools' opponent draws after a resume differ from those
of an uninterrupted run (their random state is not saved).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pe_sim.cli import UserError, console_main
from pe_sim.config_reader import ConfigError
from pe_sim.config_schema import from_data
from pe_sim.evaluation import EVAL_SEED_BASE
from pe_sim.jobs import Job, add_ray_argument, run_jobs, seed_list
from pe_sim.observation import ObservationSpec
from pe_sim.scenario import load_scenario
from pe_training.crossplay import CrossPlay, label, plot_heatmap
from pe_training.envs import group_controllers, training_scenario
from pe_training.matchup import MatchResult, play
from pe_training.model_card import card_paths
from pe_training.nash import nash_average
from pe_training.opponents import ROLES, identify, other_role
from pe_training.pool import pfsp_weights
from pe_training.run import (
    CHECKPOINT_DIR,
    Checkpoint,
    append_jsonl,
    command_line,
    finished_result,
    git_revision,
    now,
    versions,
)
from pe_training.selfplay_card import write_cards
from pe_training.selfplay_config import LEARNER_SMOKE, SelfPlayConfig, load_selfplay_config, smoke_overrides
from pe_training.selfplay_folder import (
    completed_generations,
    fork_run,
    generations_wall_time,
    record_session,
    resume_checkpoints,
)
from pe_training.selfplay_learner import (
    Learner,
    check_both_roles,
    learner_config,
    make_learner,
    member_controllers,
    teammate_source,
)
from pe_training.sweep import spread

#: Offset above EVAL_SEED_BASE of the cross-play seeds: the validation range of pe-train,
#: disjoint from training seeds and from pe-eval's test seeds.
CROSSPLAY_SEED_OFFSET = 100_000_000


class MatchCache:
    """Cross-play results by (pursuer, evader) source: each pair is played once, and kept
    in ``path`` (JSON lines) when given, so a resumed run does not replay it."""

    def __init__(self, scenario: str, episodes: int, path: Path | None = None) -> None:
        self.scenario = scenario
        self.episodes = episodes
        self.path = path
        self.results: dict[tuple[str, str], MatchResult] = {}
        if path is not None and path.exists():
            for line in path.read_text().splitlines():
                r = MatchResult(**json.loads(line))
                self.results[(r.pursuer, r.evader)] = r

    def get(self, pursuer: str, evader: str) -> MatchResult:
        key = (pursuer, evader)
        if key not in self.results:
            self.results[key] = play(self.scenario, pursuer, evader, self.episodes,
                                     seed=EVAL_SEED_BASE + CROSSPLAY_SEED_OFFSET)
            if self.path is not None:
                append_jsonl(self.path, self.results[key].to_dict())
        return self.results[key]

    def matrix(self, pursuers: list[str], evaders: list[str]) -> CrossPlay:
        results = [[self.get(p, e) for e in evaders] for p in pursuers]
        capture = np.array([[r.capture_rate for r in row] for row in results])
        return CrossPlay(self.scenario, pursuers, evaders, results, nash_average(capture))


def win_rates(cache: MatchCache, role: str, latest: str | None, members: list[str]) -> list[float]:
    """The learner's win rate against each member, measured with its latest export (0.5,
    i.e. unknown, before it has one)."""
    if latest is None:
        return [0.5] * len(members)
    if role == "pursuer":
        return [cache.get(latest, m).capture_rate for m in members]
    return [1.0 - cache.get(m, latest).capture_rate for m in members]


def pool_members(sp: SelfPlayConfig, side: str, snapshots: list[str]) -> list[str]:
    """The pool a learner of the other side meets: ``side``'s scripted and frozen members,
    then its snapshots."""
    kept = snapshots[-sp.pool.max_snapshots:] if sp.pool.max_snapshots else snapshots
    return [*sp.pool.fixed_members(side), *kept]


def train_generation(sp: SelfPlayConfig, learner: Learner, members: list[str], weights: np.ndarray,
                     controllers: dict[tuple[str, str], dict[int, Any]], teammate: str) -> dict[str, Any]:
    """Train one learner for one generation against ``members`` beside ``teammate`` (when
    its role has several robots); its log entry. ``controllers`` caches each member's
    controllers by (member, scenario variant)."""
    for batch, pool in zip(learner.batches, learner.pools, strict=True):
        scenario = batch.scenario
        if learner.teammates:
            batch.set_teammate(group_controllers(teammate, scenario, learner.teammates))
        for m in members:
            if (m, scenario.name) not in controllers:
                controllers[m, scenario.name] = member_controllers(learner, m, scenario)
        pool.set_members(members, [controllers[m, scenario.name] for m in members], weights)
    learner.stats.wins.clear()
    learner.stats.games.clear()
    learner.model.lr_schedule.start_call(learner.model.num_timesteps, sp.steps_per_generation)
    callbacks, learner.first_callbacks = [learner.stats, *learner.first_callbacks], []
    t0 = time.perf_counter()
    learner.model.learn(total_timesteps=sp.steps_per_generation, callback=callbacks,
                        reset_num_timesteps=False, progress_bar=False, tb_log_name=f"ppo_{learner.role}")
    wall = time.perf_counter() - t0
    steps = sp.steps_per_generation
    return {"wall_s": wall, "steps_per_s": steps / wall, "num_timesteps": int(learner.model.num_timesteps),
            "pool": [label(m) for m in members], "pfsp_weights": weights.tolist(),
            "teammate": label(teammate) if learner.teammates else None,
            "train_win_rates": {label(k): v for k, v in learner.stats.win_rates().items()},
            "train_games": {label(k): v for k, v in learner.stats.games.items()}}


def selfplay(sp: SelfPlayConfig, *, command: str = "", overwrite: bool = False, resume: bool = False,
             progress: bool = True) -> dict[str, Any]:
    """The whole run (see the module docstring), or the rest of it after the last finished
    generation with ``resume``; returns the run's summary."""
    t_start = time.perf_counter()
    started, revision = now(), git_revision()  # the code the run starts with
    run_dir = sp.run_dir
    done = completed_generations(run_dir) if resume else 0
    if resume:
        if done == 0:
            raise UserError(f"--resume: {run_dir} has no finished generation")
        if done >= sp.generations:
            raise UserError(f"--resume: {run_dir} has all {done} generations; raise generations to go on")
        checkpoints: dict[str, Checkpoint | None] = dict(resume_checkpoints(run_dir, done))
    else:
        if run_dir.exists() and any(run_dir.iterdir()):
            if not overwrite:
                raise UserError(f"{run_dir} exists: pass --overwrite to start over or --resume")
            shutil.rmtree(run_dir)
        (run_dir / "generations").mkdir(parents=True)
        checkpoints = {role: None for role in ROLES}
    (run_dir / "config.json").write_text(json.dumps(sp.to_dict(), indent=2) + "\n")
    sessions = record_session(run_dir, {"command": command, "started": started, "git_revision": revision,
                                        "first_generation": done + 1})
    torch.set_num_threads(learner_config(sp, "pursuer").torch_threads)  # before any model exists
    learners = {role: make_learner(sp, role, str(run_dir / "tb"), checkpoints[role]) for role in ROLES}
    scenario_name = learners["pursuer"].cfg.scenario
    cache = MatchCache(scenario_name, sp.crossplay_episodes, run_dir / "matches.jsonl")
    exports = {role: [str(run_dir / "generations" / f"{role}_g{g}.onnx") for g in range(1, done + 1)]
               for role in ROLES}
    snapshots = {role: [e for g, e in enumerate(exports[role], 1) if g % sp.pool.snapshot_every == 0]
                 for role in ROLES}
    controllers: dict[str, dict[tuple[str, str], dict[int, Any]]] = {role: {} for role in ROLES}
    xp: CrossPlay | None = None
    for g in range(done + 1, sp.generations + 1):
        row: dict[str, Any] = {"generation": g}
        for role in ROLES:
            learner = learners[role]
            members = pool_members(sp, other_role(role), snapshots[other_role(role)])
            latest = exports[role][-1] if exports[role] else None
            rates = win_rates(cache, role, latest, members)
            weights = pfsp_weights(rates, sp.pool.weighting, sp.pool.exponent)
            row[role] = train_generation(sp, learner, members, weights, controllers[role],
                                         teammate_source(learner, exports[role]))
            path = learner.export(run_dir / "generations" / f"{role}_g{g}.onnx")
            exports[role].append(str(path))
            if g % sp.pool.snapshot_every == 0:
                snapshots[role].append(str(path))
            if progress:
                r = row[role]
                print(f"generation {g}/{sp.generations} {role}: {r['steps_per_s']:,.0f} steps/s, "
                      f"train win rates {r['train_win_rates']}", file=sys.stderr)
        t0 = time.perf_counter()
        xp = cache.matrix([*sp.pool.fixed_members("pursuer"), *exports["pursuer"]],
                          [*sp.pool.fixed_members("evader"), *exports["evader"]])
        row["crossplay_wall_s"] = time.perf_counter() - t0
        row["nash_value"] = xp.nash.value
        row["rating"] = {"pursuer": xp.nash.pursuer_rating[-1], "evader": xp.nash.evader_rating[-1]}
        for role, learner in learners.items():  # before the log row: a resume starts after both
            Checkpoint(run_dir / CHECKPOINT_DIR / f"{role}.zip").save(
                learner.model, learner.model.get_vec_normalize_env(),
                {"num_timesteps": learner.model.num_timesteps, "generation": g,
                 "next_seed": int(learner.venv.next_seed)})
        append_jsonl(run_dir / "selfplay.jsonl", row)
        append_jsonl(run_dir / "crossplay.jsonl", {"generation": g, **xp.to_dict()})
    assert xp is not None
    finals = {}
    for role in ROLES:
        finals[role] = run_dir / f"{sp.name}_{role}.onnx"
        shutil.copyfile(exports[role][-1], finals[role])
    plot_heatmap(xp, run_dir / "crossplay.png")
    summary = {
        "name": sp.name, "command": command, "config": sp.to_dict(), "config_hash": sp.config_hash(),
        "learner_configs": {role: learners[role].cfg.to_dict() for role in ROLES},
        "learner_config_hashes": {role: learners[role].cfg.config_hash() for role in ROLES},
        "policies": {role: str(p) for role, p in finals.items()},
        "steps_per_learner": sp.generations * sp.steps_per_generation,
        "wall_time_s": time.perf_counter() - t_start, "git_revision": revision, "started": started,
        "finished": now(), "versions": versions(), "crossplay": xp.to_dict(),
        "sessions": sessions, "generations_wall_time_s": generations_wall_time(run_dir),
    }
    specs = {role: ObservationSpec.for_robot(load_scenario(learners[role].cfg.scenario), learners[role].index,
                                             learners[role].cfg.k_obstacles).to_dict() for role in ROLES}
    episodes = learners["pursuer"].cfg.final_eval.episodes
    if episodes > 0:
        t0 = time.perf_counter()
        summary["final_eval"] = {role: card["final_eval"] for role, card in
                                 write_cards(summary, xp, finals, episodes, specs).items()}
        summary["final_eval_wall_s"] = time.perf_counter() - t0
    (run_dir / "selfplay.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    print(f"done: {sp.generations} generations x {sp.steps_per_generation:,} steps per learner in "
          f"{summary['wall_time_s'] / 60:.1f} min; {finals['pursuer']}, {finals['evader']}", file=sys.stderr)
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pe-selfplay", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="self-play config: a name in config/training/ or a YAML path")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key (dotted for sections, YAML value), e.g. pool.weighting=var")
    p.add_argument("--output-dir", help="runs go to <output-dir>/<name>/ (default runs)")
    p.add_argument("--smoke", action="store_true", help="two tiny generations (tests)")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run folder of the same name")
    p.add_argument("--resume", action="store_true",
                   help="continue the run after its last finished generation (e.g. with more generations)")
    p.add_argument("--fork", metavar="RUN_DIR",
                   help="start from a copy of another run's finished generations (then as --resume), "
                        "e.g. to extend it with more generations or other pool members under a new name")
    p.add_argument("--quiet", action="store_true", help="no per-generation lines")
    p.add_argument("--ship", metavar="DIR", help="also copy both final policies and their model cards to DIR "
                   "(e.g. models)")
    p.add_argument("--seeds", type=seed_list, metavar="SEEDS",
                   help="one run per seed (1-3, 1,3,5), <name>-seed<s> each, and their spread "
                        "(<output-dir>/<name>-seeds/selfplay_seeds.json)")
    add_ray_argument(p)
    return p


def check_learners(sp: SelfPlayConfig) -> None:
    """Both learners' configs load, train on one scenario, and it has both roles."""
    scenarios = {role: training_scenario(learner_config(sp, role)) for role in ROLES}
    names = {role: sc.name for role, sc in scenarios.items()}
    if names["pursuer"] != names["evader"]:
        raise ConfigError("<self-play config>", "pursuer_set/evader_set",
                          f"the learners train on different scenarios ({names}); self-play needs one")
    check_both_roles(scenarios["pursuer"])


def check_frozen_members(sp: SelfPlayConfig) -> None:
    """Every frozen pool member is a policy file of the side whose pool lists it."""
    for side in ROLES:
        for member in sp.pool.frozen(side):
            try:
                identify(member, side)
            except (UserError, FileNotFoundError) as exc:
                reason = exc.args[0] if isinstance(exc, UserError) else f"no policy file {member}"
                raise UserError(f"pool.frozen_{side}s: {reason}") from None


def selfplay_job(config: dict[str, Any], command: str, progress: bool) -> dict[str, Any]:
    """One self-play run as a job (:mod:`pe_sim.jobs`), brought to its end from wherever it
    stopped: a finished run's summary is reused, an unfinished one resumes after its last
    finished generation, anything else starts afresh."""
    sp = from_data(SelfPlayConfig, config, "<self-play job>").validate("<self-play job>")
    summary = finished_result(sp.run_dir / "selfplay.json", sp.config_hash())
    if summary is not None:
        return summary
    done = completed_generations(sp.run_dir)
    return selfplay(sp, command=command, overwrite=True, resume=0 < done < sp.generations, progress=progress)


def ship_policies(summary: dict[str, Any], folder: Path) -> None:
    """Copy a run's final policies with their model cards to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for policy in summary["policies"].values():
        for path in (Path(policy), *card_paths(Path(policy))):
            shutil.copyfile(path, folder / path.name)
        print(f"shipped: {folder / Path(policy).name}", file=sys.stderr)


def seed_configs(sp: SelfPlayConfig, seeds: list[int] | None) -> list[SelfPlayConfig]:
    """The run of each seed (``<name>-seed<s>``), or ``sp`` alone without ``seeds``."""
    if seeds is None:
        return [sp]
    return [dataclasses.replace(sp, seed=s, name=f"{sp.name}-seed{s}") for s in seeds]


def seed_spread(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Per role and opponent of the final evaluation: each seed's win rate, their mean and
    its 95 % interval over seeds (the other side's final policy is ``final``)."""
    out: dict[str, Any] = {}
    for role in ROLES:
        runs = [{"seed": summary["config"]["seed"], "name": None,
                 "win_rates": {row["opponent"] if row["opponent"].startswith("scripted:") else "final":
                               row["win_rate"] for row in summary["final_eval"][role]["rows"]}}
                for summary in summaries if role in summary.get("final_eval", {})]
        if runs:
            out[role] = spread(runs)
    return out


def fork_and_resume(sp: SelfPlayConfig, args: argparse.Namespace, command: str) -> int:
    """``--fork``: the run ``sp`` continues a copy of ``args.fork``'s finished generations."""
    source = Path(args.fork)
    done = completed_generations(source)
    if args.seeds is not None or args.resume:
        raise UserError("--fork starts one run from another: not with --seeds or --resume")
    if done == 0:
        raise UserError(f"--fork: {source} has no finished generation")
    if done >= sp.generations:
        raise UserError(f"--fork: {source} has {done} generations; set generations above that to go on")
    if source.resolve() == sp.run_dir.resolve():
        raise UserError(f"--fork: {source} is this run's own folder; set another name (or use --resume)")
    if keeps_earlier_run(sp.run_dir, args.overwrite):
        raise UserError(f"{sp.run_dir} exists: pass --overwrite to replace it")
    fork_run(source, sp.run_dir)
    return resume_and_ship(sp, args, command)


def keeps_earlier_run(run_dir: Path, overwrite: bool) -> bool:
    """Whether ``run_dir`` holds an earlier run that stays (with ``overwrite`` it is removed)."""
    if not (run_dir.exists() and any(run_dir.iterdir())):
        return False
    if overwrite:
        shutil.rmtree(run_dir)
    return not overwrite


def resume_and_ship(sp: SelfPlayConfig, args: argparse.Namespace, command: str) -> int:
    """Run ``sp`` on from its folder's last finished generation; ``--ship`` its policies."""
    summary = selfplay(sp, command=command, resume=True, progress=not args.quiet)
    if args.ship:
        ship_policies(summary, Path(args.ship))
    return 0


@console_main("pe-selfplay")
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    overrides = (smoke_overrides() if args.smoke else []) + list(args.set)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    sp = load_selfplay_config(args.config, overrides)
    if args.smoke:
        sp.name += "-smoke"
        sp.pursuer_set = [*sp.pursuer_set, *LEARNER_SMOKE[sp.pursuer_learner]]
        sp.evader_set = [*sp.evader_set, *LEARNER_SMOKE[sp.evader_learner]]
    check_learners(sp)
    check_frozen_members(sp)
    if args.fork:
        return fork_and_resume(sp, args, command_line("pe-selfplay", argv))
    runs = seed_configs(sp, args.seeds)
    for run in runs:
        if keeps_earlier_run(run.run_dir, args.overwrite):
            if not args.resume:
                raise UserError(f"{run.run_dir} exists: pass --overwrite to start over or --resume")
            if completed_generations(run.run_dir) == 0:
                raise UserError(f"--resume: {run.run_dir} has no finished generation")
    command = command_line("pe-selfplay", argv)
    if args.resume and args.seeds is None and args.ray is None:
        return resume_and_ship(sp, args, command)
    jobs = [Job(name=run.name, function="pe_training.selfplay:selfplay_job", cpus=1,
                kwargs={"config": run.to_dict(), "command": command, "progress": not args.quiet})
            for run in runs]
    summaries = run_jobs(jobs, args.ray)
    if args.ship:
        for summary in summaries:
            ship_policies(summary, Path(args.ship))
    if args.seeds is not None:
        folder = Path(sp.output_dir) / f"{sp.name}-seeds"
        folder.mkdir(parents=True, exist_ok=True)
        result = {"name": sp.name, "command": command, "seeds": args.seeds, "ray": args.ray,
                  "runs": [{"seed": s["config"]["seed"], "policies": s["policies"],
                            "wall_time_s": s["wall_time_s"]} for s in summaries],
                  "spread": seed_spread(summaries)}
        (folder / "selfplay_seeds.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
        for role, by_opponent in result["spread"].items():
            for name, e in by_opponent.items():
                print(f"{role} vs {name}: win rate {100 * e['mean']:.1f} % [{100 * e['low']:.1f}, "
                      f"{100 * e['high']:.1f}] (95 % over {len(e['seeds'])} seeds)", file=sys.stderr)
        print(f"written: {folder / 'selfplay_seeds.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
