"""``pe-plot`` (trajectory PNG) and ``pe-play`` (GIF / MP4 animation) of one episode.

The episode comes from one of:

* a recording (``.npz`` of :mod:`pe_sim.episode_log`);
* a file of episode records (``episodes.jsonl`` of ``pe-eval``, ``pe-launch`` or
  ``pe-report``): the episode ``--seed`` (default: the first) is replayed from its
  seed with the policies and filter its record names (:mod:`pe_policy.replay`);
* ``--scenario`` with ``--seed``, ``--pursuer``, ``--evader`` (any policy source:
  scripted, shipped, ``.onnx``) and ``--filter``: simulated on the fly.

Replayed and simulated episodes carry the filter's corrections, which both views mark::

    pe-play results/eval-x/episodes.jsonl --seed 1000000007 -o ep.gif
    pe-plot --scenario bench_1v1_flee --pursuer pursuer_bench_flee_filter --filter all -o ep.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pe_policy.replay import replay_episode, replay_record
from pe_sim.cli import console_main, positive_int, seed_int
from pe_sim.episode_log import EpisodeLog
from pe_sim.metrics import read_jsonl
from pe_sim.scripted import KINDS


def scripted_or_source(value: str) -> str:
    """A bare scripted kind (``flee``) as its source (``scripted:flee``); other sources as given."""
    return f"scripted:{value}" if value in KINDS else value


def add_episode_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("episode", nargs="?",
                        help="an episode recording (.npz) or a file of episode records (.jsonl)")
    parser.add_argument("--scenario", help="simulate an episode of this scenario (name or YAML path)")
    parser.add_argument("--seed", type=seed_int, default=None,
                        help="episode seed (default: 0 with --scenario, the first record of a .jsonl)")
    parser.add_argument("--pursuer", default="pure_pursuit",
                        help="policy of every pursuer (with --scenario): a scripted kind, "
                             "scripted:<kind>, a shipped policy or a .onnx path")
    parser.add_argument("--evader", default="flee", help="policy of every evader (with --scenario)")
    parser.add_argument("--robot", action="append", default=[], metavar="NAME=SOURCE",
                        help="policy of one robot (with --scenario; with a .jsonl: the source of a "
                             "policy that is not shipped)")
    parser.add_argument("--filter", default="none",
                        help="robots behind the filter (with --scenario): none, all, a role or names")
    parser.add_argument("--filter-config", default="vcp_cbf", help="filter config name or YAML path")
    parser.add_argument("--save-episode", help="also save the episode's recording (.npz) here")


def load_episode(args: argparse.Namespace, parser: argparse.ArgumentParser) -> EpisodeLog:
    """The episode the arguments name (exits with a usage error on bad input)."""
    if (args.episode is None) == (args.scenario is None):
        parser.error("give either an episode recording / records file or --scenario")
    if args.scenario:
        return replay_episode(args.scenario, {"pursuer": scripted_or_source(args.pursuer),
                                              "evader": scripted_or_source(args.evader)},
                              0 if args.seed is None else args.seed, robots=args.robot,
                              filter=args.filter, filter_config=args.filter_config)
    path = Path(args.episode)
    if not path.is_file():
        parser.error(f"{path}: no such file")
    if path.suffix == ".npz":
        return EpisodeLog.load(path)
    if path.suffix != ".jsonl":
        parser.error(f"{path}: expected a .npz recording or a .jsonl file of episode records")
    records = read_jsonl(path)
    if not records:
        parser.error(f"{path}: no episode records")
    chosen = records[0] if args.seed is None else next((r for r in records if r.seed == args.seed), None)
    if chosen is None:
        parser.error(f"{path}: no record of seed {args.seed} (seeds {records[0].seed}..{records[-1].seed})")
    overrides = dict(item.partition("=")[::2] for item in args.robot)
    return replay_record(chosen, overrides=overrides, filter_config=args.filter_config)


def default_output(args: argparse.Namespace, log: EpisodeLog, suffix: str) -> str:
    if args.episode and args.episode.endswith(".npz"):
        return str(Path(args.episode).with_suffix(suffix))
    return f"{log.scenario_name}_seed{log.seed}{suffix}"


def describe(log: EpisodeLog) -> str:
    outcome = f"capture at step {log.capture_step}" if log.captured else "no capture"
    corrections = "" if log.intervened is None else f", {int(log.intervened.sum())} filter corrections"
    return f"{log.scenario_name} seed {log.seed}, {log.steps} steps, {outcome}{corrections}"


def run(parser: argparse.ArgumentParser, argv: list[str] | None, draw, check=None) -> int:
    args = parser.parse_args(argv)
    if check is not None:
        check(args)                      # output arguments, before any episode is played
    try:
        log = load_episode(args, parser)
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    if args.save_episode:
        log.save(args.save_episode)
    path = draw(args, log)
    print(f"{path}: {describe(log)}")
    return 0


@console_main("pe-plot")
def plot_main(argv: list[str] | None = None) -> int:
    """``pe-plot``: the trajectory plot (PNG) of one episode."""
    from pe_sim.render import plot_episode

    parser = argparse.ArgumentParser(prog="pe-plot", description="Plot one pursuit-evasion episode as a PNG.")
    add_episode_arguments(parser)
    parser.add_argument("-o", "--output", help="PNG path (default: next to the recording, or "
                        "<scenario>_seed<S>.png)")
    parser.add_argument("--dpi", type=positive_int, default=110)
    return run(parser, argv, lambda args, log: plot_episode(
        log, args.output or default_output(args, log, ".png"), dpi=args.dpi))


@console_main("pe-play")
def play_main(argv: list[str] | None = None) -> int:
    """``pe-play``: an animation (GIF, or MP4 with ffmpeg) of one episode."""
    from pe_sim.animate import animate_episode, ffmpeg_available

    parser = argparse.ArgumentParser(prog="pe-play", description="Animate one pursuit-evasion episode "
                                     "(GIF; MP4 when the output ends in .mp4 and ffmpeg exists).")
    add_episode_arguments(parser)
    parser.add_argument("-o", "--output",
                        help="animation path, .gif or .mp4 (default <scenario>_seed<S>.gif)")
    parser.add_argument("--max-frames", type=positive_int, default=150)
    parser.add_argument("--fps", type=positive_int, default=15)
    parser.add_argument("--dpi", type=positive_int, default=80)

    def check(args) -> None:
        if args.output and Path(args.output).suffix not in (".gif", ".mp4"):
            parser.error(f"{args.output}: the animation must be a .gif or an .mp4")
        if args.output and args.output.endswith(".mp4") and not ffmpeg_available():
            parser.error("writing .mp4 needs ffmpeg on PATH; write a .gif instead")

    def draw(args, log):
        try:
            return animate_episode(log, args.output or default_output(args, log, ".gif"),
                                   max_frames=args.max_frames, fps=args.fps, dpi=args.dpi)
        except (ValueError, RuntimeError) as error:
            parser.exit(2, f"pe-play: error: {error}\n")

    return run(parser, argv, draw, check)


if __name__ == "__main__":
    sys.exit(plot_main())
