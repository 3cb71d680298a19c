"""The one description of the evaluation graph, read by both launchers.

``launch/eval.launch.py`` (``ros2 launch pe_bringup eval.launch.py`` on a full
ROS 2 install) turns each :class:`NodeSpec` into a ``launch_ros.actions.Node``
with :func:`launch_node_kwargs`; ``pe-launch`` (pip-only machines) turns it into
a command line with :func:`ros_arguments`, the ``--ros-args`` that launch_ros
builds for such a Node. Neither adds nodes or parameters of its own, so they
cannot drift apart (``tests/test_ros_graph.py`` holds them equal).

The graph, for a scenario with robots r1..rN:

* ``/sim``               pe_ros/pe_sim_node
* ``/<r>/policy``        pe_ros/pe_policy_node, one per robot
* ``/<r>/safety_filter`` pe_ros/pe_safety_filter_node, one per robot
  (``enabled`` false for robots not named by ``filter``: a pass-through that
  keeps the NaN/stale/watchdog stops)

Parameters come from the mode's params file (``config/ros/<mode>.yaml``,
Nav2 style: one section per node) and then per-node overrides (scenario,
policies, seeds, output files); as in launch_ros, overrides travel as a
generated params file keyed by the node's full name. Every node is given a
namespace, ``/`` for the sim: launch_ros keys a Node's dict parameters by the
full name only when the namespace is given (otherwise under ``/**``, and rcl
lets the params file's node-specific ``sim:`` section win over a wildcard one
whatever the order, so ``ros2 launch ... episodes:=3`` would be ignored).
(launch_ros' ``-p node:name:=value`` form is not used: rcl applies
node-prefixed ``-p`` rules only to nodes in the root namespace.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from pe_policy.policy import DEFAULT_SOURCES
from pe_sim.evaluation import EVAL_SEED_BASE
from pe_sim.package_data import data_path
from pe_sim.scenario import load_scenario
from pe_sim.sim_runner import MODES

SIM = ("pe_ros", "pe_sim_node")
POLICY = ("pe_ros", "pe_policy_node")
FILTER = ("pe_ros", "pe_safety_filter_node")


@dataclass(frozen=True)
class NodeSpec:
    """One node: what launch_ros' ``Node(...)`` takes."""

    package: str
    executable: str
    name: str
    namespace: str = "/"   # always given: see the module docstring
    params_files: tuple[str, ...] = ()
    parameters: tuple[tuple[str, Any], ...] = ()
    remappings: tuple[tuple[str, str], ...] = ()
    prefix: str = ""   # launch-prefix: a command the node's executable runs under

    @property
    def fqn(self) -> str:
        return f"{self.namespace.rstrip('/')}/{self.name}"

    @property
    def parameter_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.parameters}


@dataclass(frozen=True)
class EvalOptions:
    """Everything that selects an evaluation graph (launch arguments / pe-launch options)."""

    scenario: str = "bench_1v1_flee"
    pursuer: str = DEFAULT_SOURCES["pursuer"]   # the shipped default pursuer
    evader: str = DEFAULT_SOURCES["evader"]
    robots: tuple[str, ...] = ()          # NAME=SOURCE overrides of single robots
    mode: str = "lockstep"
    episodes: int = 200
    duration: float = 0.0                 # s of sim time, then stop (0: no limit)
    seed: int = EVAL_SEED_BASE
    filter: str = "all"                   # none, all, pursuer, evader or robot names
    filter_config: str = "vcp_cbf"
    params_file: str = ""                 # '' : config/ros/<mode>.yaml
    out: str = ""                         # '' : no record or timing files
    executor: str = "events"
    launch_prefix: str = ""               # e.g. "chrt -b 0" (see LAUNCH_ARGUMENTS)
    extra: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = field(default=())
    """Additional per-node overrides: ((node fqn, ((param, value), ...)), ...)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.episodes < 0 or self.duration < 0:
            raise ValueError(f"episodes and duration must be >= 0, got {self.episodes}, {self.duration}")


#: Launch arguments of eval.launch.py: (name, default as a string, description).
LAUNCH_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    ("scenario", EvalOptions.scenario, "scenario name or YAML path"),
    ("pursuer", EvalOptions.pursuer, "policy of every pursuer: scripted:<kind>, a shipped policy's "
     "name or a .onnx file"),
    ("evader", EvalOptions.evader, "policy of every evader"),
    ("robots", "", "comma-separated NAME=SOURCE policy overrides of single robots"),
    ("mode", EvalOptions.mode, "lockstep (reproducible evaluation) or realtime (timer at 1/dt)"),
    ("episodes", str(EvalOptions.episodes), "episodes to play, then stop (0: until stopped)"),
    ("duration", "0", "seconds of sim time to play, then stop (0: no limit; real-time runs)"),
    ("seed", str(EvalOptions.seed), "seed of the first episode"),
    ("filter", EvalOptions.filter, "robots behind the safety filter: none, all, pursuer, evader or names"),
    ("filter_config", EvalOptions.filter_config, "filter config name or YAML path"),
    ("params_file", "", "ROS params file (default: config/ros/<mode>.yaml)"),
    ("out", "", "results folder: episodes.jsonl and timing/*.json ('' : none)"),
    ("executor", EvalOptions.executor, "rclpy executor of every node: events or single_threaded"),
    ("launch_prefix", "", "command every node runs under, e.g. 'chrt -b 0' (Linux SCHED_BATCH: a "
     "woken node waits for a running callback instead of preempting it; docs/ros_graph.md)"),
)


def options_from_strings(values: Mapping[str, str]) -> EvalOptions:
    """:class:`EvalOptions` from launch-argument strings (missing ones take their default)."""
    known = {f.name for f in fields(EvalOptions)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown graph options {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, text in values.items():
        if name in ("episodes", "seed"):
            kwargs[name] = int(text)
        elif name == "duration":
            kwargs[name] = float(text)
        elif name == "robots":
            kwargs[name] = tuple(x.strip() for x in text.split(",") if x.strip())
        elif name == "extra":
            raise ValueError("extra overrides cannot be given as strings")
        else:
            kwargs[name] = text
    return EvalOptions(**kwargs)


def policy_name(source: str) -> str:
    """The name :func:`pe_policy.policy.load_policy` gives a policy (without loading it)."""
    return source if source.startswith("scripted:") else Path(source).name


def has_cbf_gains(source: str) -> bool:
    """Whether the policy ``source`` outputs class-K gains for its filter (BarrierNet)."""
    if not source.endswith(".onnx") or not Path(source).is_file():
        return False
    from pe_policy.barriernet_policy import is_barriernet_onnx

    return is_barriernet_onnx(source)


def eval_graph(options: EvalOptions) -> list[NodeSpec]:
    """The nodes of the evaluation graph for ``options``."""
    from pe_policy.evaluate import filtered_robot_indices, policy_sources
    from pe_policy.policy import resolve_source

    scenario = load_scenario(options.scenario)
    sources = [resolve_source(s) for s in policy_sources(
        scenario, {"pursuer": options.pursuer, "evader": options.evader}, list(options.robots))]
    filtered = filtered_robot_indices(scenario, options.filter)
    names = [r.name for r in scenario.robots]
    records = [policy_name(s) + (" +filter" if i in filtered else "") for i, s in enumerate(sources)]
    params_file = options.params_file or str(data_path("pe_bringup", "config/ros") / f"{options.mode}.yaml")
    if not Path(params_file).is_file():
        raise FileNotFoundError(f"ROS params file {params_file!r} (option params_file) not found")
    params = (str(Path(params_file).resolve()),)
    out = Path(options.out).resolve() if options.out else None
    extra = {fqn: overrides for fqn, overrides in options.extra}

    def timing(tag: str) -> tuple[tuple[str, Any], ...]:
        return (("timing_file", str(out / "timing" / f"{tag}.json")),) if out else ()

    def spec(kind: tuple[str, str], name: str, namespace: str,
             overrides: tuple[tuple[str, Any], ...]) -> NodeSpec:
        node = NodeSpec(kind[0], kind[1], name, namespace, params, prefix=options.launch_prefix)
        return replace(node, parameters=(("scenario", options.scenario), ("executor", options.executor),
                                         *overrides, *extra.get(node.fqn, ())))

    nodes = [spec(SIM, "sim", "/", (
        ("mode", options.mode), ("episodes", options.episodes), ("duration", float(options.duration)),
        ("first_seed", options.seed),
        ("filtered_robots", tuple(names[i] for i in filtered)), ("policy_names", tuple(records)),
        *((("records_file", str(out / "episodes.jsonl")),) if out else ()), *timing("sim")))]
    for i, name in enumerate(names):
        nodes.append(spec(POLICY, "policy", f"/{name}", (
            ("robot", name), ("policy", sources[i]), *timing(f"{name}.policy"))))
        nodes.append(spec(FILTER, "safety_filter", f"/{name}", (
            ("robot", name), ("enabled", i in filtered), ("filter_config", options.filter_config),
            ("use_policy_gains", has_cbf_gains(sources[i])), *timing(f"{name}.safety_filter"))))
    return nodes


# --------------------------------------------------------------------------- the two renderings


def launch_node_kwargs(spec: NodeSpec) -> dict[str, Any]:
    """Keyword arguments of ``launch_ros.actions.Node`` for ``spec``."""
    kwargs: dict[str, Any] = {
        "package": spec.package, "executable": spec.executable, "name": spec.name,
        "parameters": [*spec.params_files, spec.parameter_dict],
        "namespace": spec.namespace, "output": "screen",
    }
    if spec.remappings:
        kwargs["remappings"] = list(spec.remappings)
    if spec.prefix:
        kwargs["prefix"] = spec.prefix
    return kwargs


def overrides_yaml(spec: NodeSpec) -> str:
    """The params file launch_ros writes for a Node's dict parameters."""
    return yaml.dump({spec.fqn: {"ros__parameters": spec.parameter_dict}}, default_flow_style=False)


def ros_arguments(spec: NodeSpec, overrides_file: str) -> list[str]:
    """The arguments launch_ros passes to ``spec``'s executable: ``--ros-args``, node
    name, namespace, each params file, the overrides' params file (``overrides_file``,
    holding :func:`overrides_yaml`), then node-prefixed remappings."""
    args = ["--ros-args", "-r", f"__node:={spec.name}", "-r", f"__ns:={spec.namespace}"]
    for path in spec.params_files:
        args += ["--params-file", path]
    args += ["--params-file", overrides_file]
    for src, dst in spec.remappings:
        args += ["-r", f"{spec.name}:{src}:={dst}"]
    return args
