"""``pe-rqt``: the real rqt with the saved view, opened once the graph is discovered.

    pe-rqt                                   # the 1v1 view (config/rqt/pe_stack.perspective)
    pe-rqt --scenario pursuit_2v1            # the view written for that scenario's robots
    pe-rqt --perspective-file my.perspective

Upstream rqt_plot subscribes, when it restores a view, only to the topics its
node has already discovered, and rqt creates its node just before that: on a
busy machine DDS discovery is slower, and plots come up missing series. This
command runs rqt (``rqt_gui.main.Main``, unchanged, in this process) after a
node of this process has discovered every plotted topic (or after
``--discovery-timeout`` seconds, naming the missing ones), and keeps that node
while rqt runs: nodes of one process share one DDS participant (which lives
while any of its nodes does), so rqt's node starts with the graph already known.
Needs rqt and its Python plugins (a full ROS 2 install, or rqt's wheels) and a
display; ``ROS_DOMAIN_ID`` selects the graph.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

from pe_bringup.rqt_view import SHIPPED_SCENARIO, write_perspective
from pe_sim.cli import UserError, console_main
from pe_sim.package_data import data_path

#: Hidden (leading underscore): not listed by ``ros2 node list``.
DISCOVERY_NODE = "_pe_rqt_discovery"


def plotted_topics(perspective_file: str | Path) -> list[str]:
    """The topics the rqt_plot instances of a perspective plot (``<topic>/<field>`` -> topic)."""
    import ast

    data = json.loads(Path(perspective_file).read_text())
    groups = data.get("groups", {}).get("pluginmanager", {}).get("groups", {})
    topics: list[str] = []
    for name, group in groups.items():
        if not name.startswith("plugin__rqt_plot__Plot__"):
            continue
        value = group.get("groups", {}).get("plugin", {}).get("keys", {}).get("topics")
        fields = ast.literal_eval(value["repr"]) if value else []
        fields = [fields] if isinstance(fields, str) else fields
        topics += [field.rsplit("/", 1)[0] for field in fields]
    return topics


def discover_topics(topics: list[str], timeout_s: float):
    """A node of this process (rclpy's default context, initialised here and left so for
    rqt) that has discovered every topic, or waited ``timeout_s`` seconds; returns the node
    and the topics still missing. Keep the node while rqt runs: the DDS participant of a
    context lives only while one of its nodes does, and a new one starts discovery afresh."""
    import rclpy

    if not rclpy.ok():
        rclpy.init()
    node = rclpy.create_node(DISCOVERY_NODE)
    deadline = time.monotonic() + timeout_s
    while True:
        known = {name for name, _ in node.get_topic_names_and_types()}
        missing = [t for t in topics if t not in known]
        if not missing or time.monotonic() > deadline:
            return node, missing
        time.sleep(0.1)


@console_main("pe-rqt")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pe-rqt", description=__doc__.split("\n\n")[0],
                                epilog="Other arguments are passed to rqt.")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--scenario", default=None, help="write the view for this scenario's robots "
                      "(name or YAML path; default: the shipped 1v1 view)")
    view.add_argument("--perspective-file", default=None, help="open this view instead")
    p.add_argument("--robot-monitor", action="store_true",
                   help="with --scenario: add rqt_robot_monitor (needs the diagnostic aggregator)")
    p.add_argument("--discovery-timeout", type=float, default=30.0,
                   help="seconds to wait for the plotted topics before opening rqt anyway (default 30)")
    args, rqt_args = p.parse_known_args(argv)
    try:
        if args.perspective_file:
            perspective = Path(args.perspective_file)
        elif args.scenario or args.robot_monitor:
            perspective = write_perspective(args.scenario or SHIPPED_SCENARIO,
                                            Path(tempfile.mkdtemp(prefix="pe-rqt-")) / "pe_stack.perspective",
                                            args.robot_monitor)
        else:
            perspective = data_path("pe_bringup", "config/rqt") / "pe_stack.perspective"
        topics = plotted_topics(perspective)
    except (FileNotFoundError, ValueError, OSError, SyntaxError, KeyError, TypeError) as exc:
        raise UserError(f"cannot use the view: {exc}") from None
    if importlib.util.find_spec("rqt_gui") is None:
        raise UserError("rqt is not installed (a full ROS 2 install has it; see docs/ros_graph.md)")
    print(f"pe-rqt: waiting for the graph's {len(topics)} plotted topics (ROS_DOMAIN_ID "
          f"selects the graph)", file=sys.stderr, flush=True)
    discovery_node, missing = discover_topics(topics, args.discovery_timeout)
    if missing:
        print(f"pe-rqt: not discovered after {args.discovery_timeout:g} s, not plotted: {missing}",
              file=sys.stderr, flush=True)
    from rqt_gui.main import Main

    code = Main().main(["rqt", "--perspective-file", str(perspective), *rqt_args])
    del discovery_node   # kept until rqt is closed (see discover_topics)
    return code


if __name__ == "__main__":
    sys.exit(main())
