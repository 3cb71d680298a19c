"""``pe-launch``: start the evaluation graph without ``ros2 launch`` (pip-only machines).

    pe-launch eval --scenario bench_1v1_flee --pursuer scripted:proportional_navigation \\
        --evader scripted:flee --episodes 200 --filter all --mode lockstep --out results/ros-eval

Every node of :func:`pe_bringup.graph.eval_graph` runs as its own process with
the ``--ros-args`` launch_ros would give it (:func:`pe_bringup.graph.ros_arguments`);
their output is forwarded line by line with a ``[node]`` prefix. When the sim
finishes its episodes (lockstep, or ``--duration`` elapses), or on Ctrl-C, every
node gets SIGINT (then SIGTERM, then SIGKILL, as launch does); if any node dies
before that, the launcher says which, shows the last lines that node printed,
stops the others and exits non-zero. ``--quiet`` sends the nodes' output to
``<out>/nodes.log`` instead of the terminal.
At the end it prints the metrics table (:func:`pe_sim.metrics.format_summary`
of the records the sim node wrote) and the per-node timing table, and writes
``summary.json`` and ``timing.txt`` next to ``episodes.jsonl`` in ``--out``.

``pe-launch eval ... --dry-run`` prints the command lines instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from pe_bringup.graph import MODES, EvalOptions, NodeSpec, eval_graph, overrides_yaml, ros_arguments
from pe_sim.cli import UserError, check_seed_range, console_main, progress_bar, seed_int, writable_dir
from pe_sim.evaluation import EVAL_SEED_BASE

_print_lock = threading.Lock()


def resolve_executable(package: str, executable: str) -> str:
    """Where ``ros2 run package executable`` would look (``<prefix>/lib/<package>/``
    via the ament index), else the console script next to this Python (a venv)."""
    try:
        from ament_index_python.packages import get_package_prefix

        candidate = Path(get_package_prefix(package)) / "lib" / package / executable
        if candidate.is_file():
            return str(candidate)
    except Exception:
        pass
    candidate = Path(sys.prefix) / "bin" / executable
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(executable)
    if found:
        return found
    raise FileNotFoundError(f"executable {executable!r} of package {package!r} not found "
                            f"(pip install -e src/{package}, or source a colcon install)")


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the launcher dies (Linux prctl)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


TAIL_LINES = 20
"""Lines of each node's output kept to show when it fails (also under ``--quiet``)."""


@dataclass
class Running:
    spec: NodeSpec
    label: str
    process: subprocess.Popen
    threads: list[threading.Thread]
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))


def _forward(stream: IO[bytes], label: str, sink: IO[str], tail: deque[str]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        with _print_lock:
            tail.append(line)
            sink.write(f"[{label}] {line}\n")
            sink.flush()
    stream.close()


class Launcher:
    """Starts node specs as processes, watches them, stops them."""

    def __init__(self, specs: list[NodeSpec], env: dict[str, str] | None = None,
                 output: IO[str] | None = None) -> None:
        self.specs = specs
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
        self.output = output or sys.stdout
        self.running: list[Running] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="pe_launch_")

    def command(self, spec: NodeSpec, index: int) -> list[str]:
        path = Path(self._tmp.name) / f"launch_params_{index}_{spec.name}.yaml"
        path.write_text(overrides_yaml(spec))
        # launch-prefix: split as launch does (shlex), prepended to the executable.
        return [*shlex.split(spec.prefix), resolve_executable(spec.package, spec.executable),
                *ros_arguments(spec, str(path))]

    def start(self) -> None:
        for k, spec in enumerate(self.specs):
            cmd = self.command(spec, k)
            # Own session: a terminal's Ctrl-C reaches the launcher only, which then stops
            # the nodes in order. Parent-death signal: nodes never outlive a killed launcher.
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                                    start_new_session=True, preexec_fn=_die_with_parent)
            label = spec.fqn.lstrip("/")
            running = Running(spec, label, proc, [])
            running.threads = [threading.Thread(target=_forward, args=(s, label, self.output, running.tail),
                                                daemon=True) for s in (proc.stdout, proc.stderr)]
            for t in running.threads:
                t.start()
            self.running.append(running)
            self.say(f"started {label} (pid {proc.pid}): {shlex.join(cmd)}")

    def say(self, text: str) -> None:
        with _print_lock:
            self.output.write(f"[pe-launch] {text}\n")
            self.output.flush()

    def exited(self) -> list[Running]:
        return [r for r in self.running if r.process.poll() is not None]

    def stop(self, sigint_timeout: float = 10.0, sigterm_timeout: float = 5.0) -> None:
        """SIGINT every live node, then SIGTERM, then SIGKILL the stragglers."""
        for sig, timeout in ((signal.SIGINT, sigint_timeout), (signal.SIGTERM, sigterm_timeout),
                             (signal.SIGKILL, 5.0)):
            live = [r for r in self.running if r.process.poll() is None]
            if not live:
                break
            for r in live:
                try:
                    r.process.send_signal(sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
            for r in live:
                try:
                    r.process.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    if sig != signal.SIGKILL:
                        self.say(f"{r.label} ignored {signal.Signals(sig).name}")
        for r in self.running:
            for t in r.threads:
                t.join(timeout=2.0)
        self._tmp.cleanup()

    def wait(self, main_label: str | None, duration: float | None = None,
             timeout: float | None = None) -> tuple[bool, str]:
        """Until the node ``main_label`` exits (0: success), any other node exits
        (failure), ``duration`` seconds pass (success) or ``timeout`` seconds pass
        (failure). Returns (ok, reason)."""
        start = time.monotonic()
        while True:
            if timeout is not None and time.monotonic() - start >= timeout:
                return False, f"timed out after {timeout:g} s"
            for r in self.exited():
                code = r.process.returncode
                if r.label == main_label and code == 0:
                    return True, f"{r.label} finished"
                return False, f"node {r.label} died with exit code {code}"
            if duration is not None and time.monotonic() - start >= duration:
                return True, f"{duration:g} s elapsed"
            time.sleep(0.05)


def wait_with_progress(launcher: Launcher, records: Path, episodes: int) -> tuple[bool, str]:
    """``launcher.wait("sim")``, with a progress bar (episodes finished, rate, ETA) driven by
    the records the sim node writes as each episode ends."""
    if episodes <= 0:
        return launcher.wait("sim")
    with progress_bar(episodes, "episodes (ROS graph)", disable=False) as bar:
        while True:
            ok, reason = launcher.wait("sim", duration=0.5)
            if records.exists():
                bar.update(sum(1 for _ in records.open()) - bar.n)
            if reason != "0.5 s elapsed":
                return ok, reason


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pe-launch", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("eval", help="run the evaluation graph",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_graph_arguments(e)
    e.add_argument("--dry-run", action="store_true", help="print the node command lines and exit")
    e.add_argument("--domain-id", type=int, default=None,
                   help="ROS_DOMAIN_ID of the graph (default: a free domain, picked and printed; "
                        "a domain already holding nodes with this graph's names is refused)")
    e.add_argument("--record", type=int, nargs="?", const=-1, default=None, metavar="N",
                   help="also write the first N episodes (all without N) as rosbag2/MCAP folders in "
                        "<out>/bags/ (replayed from their seeds and checked against the records)")
    e.add_argument("--quiet", action="store_true",
                   help="write the nodes' output to <out>/nodes.log instead of the terminal")
    return p


def add_graph_arguments(p: argparse.ArgumentParser, **defaults) -> None:
    d = replace(EvalOptions(), **defaults)
    p.add_argument("--scenario", default=d.scenario, help="scenario name or YAML path")
    p.add_argument("--pursuer", default=d.pursuer, help="policy of every pursuer: scripted:<kind> or .onnx")
    p.add_argument("--evader", default=d.evader, help="policy of every evader")
    p.add_argument("--robot", action="append", default=[], metavar="NAME=SOURCE",
                   help="policy of one robot, overriding its role's")
    p.add_argument("--episodes", type=int, default=d.episodes, help="episodes (0: until stopped)")
    p.add_argument("--duration", type=float, default=d.duration,
                   help="seconds of sim time to play, then stop (0: no limit); real-time runs")
    p.add_argument("--seed", type=seed_int, default=d.seed if d.seed is not None else EVAL_SEED_BASE,
                   help="first episode seed")
    p.add_argument("--filter", default=d.filter, help="none, all, pursuer, evader or robot names")
    p.add_argument("--filter-config", default=d.filter_config, help="filter config name or YAML path")
    p.add_argument("--mode", default=d.mode, choices=MODES)
    p.add_argument("--params-file", default=d.params_file,
                   help="ROS params file (default config/ros/<mode>.yaml)")
    p.add_argument("--executor", default=d.executor, choices=("events", "single_threaded"))
    p.add_argument("--launch-prefix", default=d.launch_prefix, metavar="CMD",
                   help="command every node runs under, e.g. 'chrt -b 0' (SCHED_BATCH: a woken node "
                        "does not preempt a running callback)")
    p.add_argument("--out", default=None, help="results folder (default results/ros-eval-<time>)")


def options_from_args(args: argparse.Namespace, out: str) -> EvalOptions:
    return EvalOptions(scenario=args.scenario, pursuer=args.pursuer, evader=args.evader,
                       robots=tuple(args.robot), mode=args.mode, episodes=args.episodes,
                       duration=args.duration, seed=args.seed,
                       filter=args.filter, filter_config=args.filter_config,
                       params_file=args.params_file, out=out, executor=args.executor,
                       launch_prefix=args.launch_prefix)


def provenance_of(options: EvalOptions) -> dict:
    """The scenario's content hash and each policy file's hash (as pe-eval's summary)."""
    from pe_policy.evaluate import policy_sources, provenance
    from pe_sim.scenario import load_scenario

    scenario = load_scenario(options.scenario)
    sources = policy_sources(scenario, {"pursuer": options.pursuer, "evader": options.evader},
                             options.robots)
    return provenance(scenario, sources)


def report(out: Path, options: EvalOptions, wall: float, stream: IO[str]) -> dict:
    """Print and write the metrics table and the timing table of a finished run."""
    from pe_ros.diagnostics import read_timing_files
    from pe_ros.timing import format_timing_table
    from pe_sim.metrics import format_summary, read_jsonl, summarize

    records = read_jsonl(out / "episodes.jsonl") if (out / "episodes.jsonl").exists() else []
    summary = summarize(records)
    timing_rows = read_timing_files(out / "timing")
    sim_timing = {}
    if (out / "timing" / "sim.json").exists():
        sim_timing = json.loads((out / "timing" / "sim.json").read_text())
    summary.update(provenance_of(options))
    summary.update(scenario=options.scenario, seed=options.seed, mode=options.mode,
                   path="ros2", wall_time_s=wall,
                   steps=sim_timing.get("steps"), steps_per_s=sim_timing.get("steps_per_s"),
                   missed_commands=sim_timing.get("missed_commands"))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    table = format_timing_table(timing_rows)
    (out / "timing.txt").write_text(table + "\n")
    title = (f"ROS 2 graph ({options.mode}), scenario {options.scenario}, "
             f"seeds {options.seed}..{options.seed + max(len(records), 1) - 1}")
    stream.write("\n" + format_summary(summary, title) + "\n\n")
    stream.write("per-node timing (ms; compute = callback time per step, loop_latency = state "
                 "published -> command received)\n" + table + "\n")
    if sim_timing:
        rate = sim_timing.get("steps_per_s")
        stream.write(f"\n{sim_timing.get('steps', 0)} steps, "
                     f"{f'{rate:.0f} steps/s' if rate else 'n/a'}, missed commands "
                     f"{sim_timing.get('missed_commands')}; results in {out}/\n")
    stream.flush()
    return summary


@console_main("pe-launch")
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_seed_range(parser, args.seed, max(args.episodes, 1))
    out = Path(args.out or f"results/ros-eval-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        options = options_from_args(args, str(out))
        specs = eval_graph(options)
    except (ValueError, FileNotFoundError) as exc:   # pe_sim's ConfigError is a ValueError
        raise UserError(str(exc)) from None
    env = dict(os.environ)
    if args.dry_run:
        if args.domain_id is not None:
            env["ROS_DOMAIN_ID"] = str(args.domain_id)
        launcher = Launcher(specs, env)
        for k, spec in enumerate(specs):
            print(shlex.join(launcher.command(spec, k)))
            print("    # overrides file:\n" + "".join(f"    {line}\n" for line in
                                                       overrides_yaml(spec).splitlines()))
        launcher._tmp.cleanup()
        return 0
    writable_dir(out)
    from pe_ros.domain import DomainBusy, claim_domain

    try:
        claim = claim_domain(args.domain_id, [spec.fqn for spec in specs])
    except (DomainBusy, ValueError) as exc:
        raise UserError(str(exc)) from None
    with claim:
        env["ROS_DOMAIN_ID"] = str(claim.domain_id)
        return run_graph(args, options, specs, out, env)


def run_graph(args: argparse.Namespace, options: EvalOptions, specs: list[NodeSpec], out: Path,
              env: dict[str, str]) -> int:
    """Start ``specs`` with ``env``, wait for the sim to finish, stop, report; an exit code."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in [out / "episodes.jsonl", *(out / "timing").glob("*.json")]:
        stale.unlink(missing_ok=True)
    log = out / "nodes.log"
    launcher = Launcher(specs, env, log.open("w") if args.quiet else None)
    print(f"[pe-launch] ROS domain {env['ROS_DOMAIN_ID']} (ROS_DOMAIN_ID; choose with --domain-id)",
          flush=True)
    if options.episodes == 0 and not options.duration:
        launcher.say("episodes 0 and no --duration: running until Ctrl-C")
    start = time.monotonic()
    ok, reason = False, "interrupted"
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        launcher.start()
        ok, reason = wait_with_progress(launcher, out / "episodes.jsonl", options.episodes)
    except KeyboardInterrupt:
        ok, reason = False, "interrupted (Ctrl-C)"
    finally:
        launcher.say(f"stopping all nodes: {reason}")
        launcher.stop()
    wall = time.monotonic() - start
    failed = [r for r in launcher.running if r.process.returncode not in (0, -signal.SIGINT)]
    if not ok:
        print(f"\n[pe-launch] FAILED: {reason}", file=sys.stderr)
    for r in failed:
        print(f"[pe-launch] {r.label} exit code {r.process.returncode}; its last output:", file=sys.stderr)
        print("".join(f"    {line}\n" for line in r.tail), end="", file=sys.stderr)
    if args.quiet and (failed or not ok):
        print(f"[pe-launch] every node's output: {log}", file=sys.stderr)
    report(out, options, wall, sys.stdout)
    if args.record is not None and ok:
        from pe_bringup.recording import record_results

        bags = record_results(out, limit=None if args.record < 0 else args.record,
                              scenario=options.scenario, filter_config=options.filter_config)
        print(f"{len(bags)} recordings in {out}/bags/")
    if not ok:
        return 130 if "Ctrl-C" in reason else 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
