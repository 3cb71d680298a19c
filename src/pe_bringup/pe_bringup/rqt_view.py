"""The saved rqt view of a running graph: a ``.perspective`` file for the scenario's robots.

    pe-rqt-perspective --scenario pursuit_2v1 --out /tmp/pe.perspective
    rqt --perspective-file /tmp/pe.perspective

The view holds two rqt_plot instances -- every node's per-step compute time
(``<node>/compute_time_ms``, ms wall clock) and every robot's loop latency
(``/sim/<robot>/loop_latency_ms``, ms from the state's publication to its
command's arrival) -- rqt_runtime_monitor (the nodes' ``/diagnostics``
statuses), rqt_topic (rates of every topic) and, with ``robot_monitor``,
rqt_robot_monitor (``/diagnostics_agg``, the output of the diagnostic
aggregator with ``config/diagnostics/analyzers.yaml``; full ROS installs only).
Node names come from :func:`pe_bringup.graph.eval_graph`, so the view follows the
graph. ``config/rqt/pe_stack.perspective`` is this file for the 1v1 scenarios
(robots ``pursuer`` and ``evader``); ``pe-rqt --scenario`` and ``monitor.launch.py``
write one for their ``scenario``.

A perspective is qt_gui's settings tree as JSON: ``{"keys": {...}, "groups":
{...}}``, each value ``{"type": "repr", "repr": <Python literal>}``; plugin
instances are listed under ``pluginmanager/running-plugins`` and keep their
settings in ``pluginmanager/plugin__<package>__<class>__<serial>/plugin``
(rqt_plot: ``topics``, a list of ``<topic>/<field>``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pe_bringup.graph import EvalOptions, eval_graph
from pe_sim.cli import UserError, console_main
from pe_sim.package_data import data_path
from pe_sim.scenario import load_scenario

PLOT = "rqt_plot/Plot"
RUNTIME_MONITOR = "rqt_runtime_monitor/RuntimeMonitor"
TOPIC = "rqt_topic/TopicPlugin"
ROBOT_MONITOR = "rqt_robot_monitor/RobotMonitor"
#: The 1v1 view shipped as config/rqt/pe_stack.perspective.
SHIPPED_SCENARIO = "bench_1v1_flee"


def compute_time_topics(scenario: str) -> list[str]:
    """``<node>/compute_time_ms`` of every node of the evaluation graph (std_msgs/Float64, ms)."""
    return [f"{spec.fqn}/compute_time_ms" for spec in eval_graph(EvalOptions(scenario=scenario))]


def loop_latency_topics(scenario: str) -> list[str]:
    """``/sim/<robot>/loop_latency_ms`` of every robot (std_msgs/Float64, ms)."""
    return [f"/sim/{robot.name}/loop_latency_ms" for robot in load_scenario(scenario).robots]


def diagnostic_status_names(scenario: str) -> list[str]:
    """Names of the statuses the graph publishes on ``/diagnostics`` (:mod:`pe_ros.diagnostics`):
    each node's own (its full name) and the sim's loop latency per robot."""
    nodes = [spec.fqn for spec in eval_graph(EvalOptions(scenario=scenario))]
    return nodes + [f"/sim: loop_latency/{robot.name}" for robot in load_scenario(scenario).robots]


def timing_topics(scenario: str) -> list[str]:
    """Every per-step timing topic of the graph: what the view plots."""
    return compute_time_topics(scenario) + loop_latency_topics(scenario)


def _value(value: Any) -> dict[str, str]:
    return {"type": "repr", "repr": repr(value)}


def _plot(topics: list[str]) -> dict[str, Any]:
    """An rqt_plot instance plotting the ``data`` field of each Float64 topic, autoscrolling."""
    return {"keys": {}, "groups": {"plugin": {"keys": {
        "topics": _value([f"{topic}/data" for topic in topics]),
        "autoscroll": _value(True), "plot_type": _value(0)}, "groups": {}}}}


def perspective(scenario: str, robot_monitor: bool = False) -> dict[str, Any]:
    """The view (qt_gui's perspective JSON) for the graph of ``scenario``."""
    plugins = {PLOT: [1, 2], RUNTIME_MONITOR: [1], TOPIC: [1]}
    if robot_monitor:
        plugins[ROBOT_MONITOR] = [1]
    groups = {"plugin__rqt_plot__Plot__1": _plot(compute_time_topics(scenario)),
              "plugin__rqt_plot__Plot__2": _plot(loop_latency_topics(scenario))}
    return {"keys": {}, "groups": {"pluginmanager": {
        "keys": {"running-plugins": _value(plugins)}, "groups": groups}}}


def write_perspective(scenario: str, path: str | Path, robot_monitor: bool = False) -> Path:
    """Write :func:`perspective` to ``path`` (folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(perspective(scenario, robot_monitor), indent=2) + "\n")
    return path


def analyzers_file() -> Path:
    """The diagnostic aggregator's analyzers (``config/diagnostics/analyzers.yaml``)."""
    return data_path("pe_bringup", "config/diagnostics") / "analyzers.yaml"


def monitor_nodes(scenario: str, aggregator: bool) -> list[dict[str, Any]]:
    """Keyword arguments of the ``launch_ros.actions.Node`` actions of ``monitor.launch.py``:
    ``pe-rqt`` (:mod:`pe_bringup.rqt_open`: rqt opening the view written for ``scenario``,
    with rqt_robot_monitor when ``aggregator``) and, with ``aggregator``, the standard
    diagnostic aggregator with :func:`analyzers_file`."""
    arguments = ["--scenario", scenario, *(["--robot-monitor"] if aggregator else [])]
    nodes = [{"package": "pe_bringup", "executable": "pe-rqt", "output": "screen", "arguments": arguments}]
    if aggregator:
        nodes.append({"package": "diagnostic_aggregator", "executable": "aggregator_node",
                      "output": "screen", "parameters": [str(analyzers_file())]})
    return nodes


@console_main("pe-rqt-perspective")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pe-rqt-perspective", description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default=SHIPPED_SCENARIO, help="scenario name or YAML path")
    p.add_argument("--out", required=True, help="the .perspective file to write")
    p.add_argument("--robot-monitor", action="store_true",
                   help="add rqt_robot_monitor (needs the diagnostic aggregator: full ROS installs)")
    args = p.parse_args(argv)
    try:
        path = write_perspective(args.scenario, args.out, args.robot_monitor)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise UserError(str(exc)) from None
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
