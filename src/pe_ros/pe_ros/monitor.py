"""``pe-monitor``: a live per-node timing table in the terminal (rqt is not on PyPI).

Subscribes ``/diagnostics`` (each node's 1 Hz summary: rate, p50/p99/max since
start, last window's max, misses) and every ``.../compute_time_ms`` and
``.../loop_latency_ms`` topic it discovers (the per-step values: shown as
"last"), and redraws the table every second.

    pe-monitor                 # until Ctrl-C
    pe-monitor --once 5        # print the table after 5 s and exit (1 if nothing was heard)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

from pe_sim.cli import console_main

SUFFIXES = ("compute_time_ms", "loop_latency_ms")


def series_topic(node: str, series: str) -> str:
    """The per-step topic of a timing series: ``compute_time`` -> ``<node>/compute_time_ms``,
    ``loop_latency/<robot>`` -> ``<node>/<robot>/loop_latency_ms``."""
    if series.startswith("loop_latency/"):
        return f"{node}/{series.split('/', 1)[1]}/loop_latency_ms"
    return f"{node}/{series}_ms"


#: A node's own status (named after the node) carries its compute series under these keys.
_NODE_KEYS = {"count": "steps", "p50_ms": "compute_p50_ms", "p99_ms": "compute_p99_ms",
              "max_ms": "compute_max_ms"}


def format_rows(statuses: dict[str, dict[str, str]], last: dict[str, float]) -> str:
    """The table from the latest diagnostic statuses (name -> values) and the latest
    per-step values (topic -> ms); a node's own status (``/pursuer/safety_filter``) is the
    ``compute_time`` row, ``/sim: loop_latency/<robot>`` a series of its own. Below the
    table, each node's level and message."""
    header = (f"{'node':<26}{'series':<24}{'rate Hz':>8}{'count':>8}{'p50 ms':>9}{'p99 ms':>9}"
              f"{'max ms':>9}{'win max':>9}{'last':>9}{'misses':>8}")
    lines = [header, "-" * len(header)]
    for name in sorted(statuses):
        v = statuses[name]
        node, _, series = name.partition(": ")
        keys = {k: k for k in _NODE_KEYS} if series else _NODE_KEYS
        series = series or "compute_time"
        if keys["p50_ms"] not in v:
            continue
        topic = series_topic(node, series)

        def num(key: str, v: dict[str, str] = v, keys: dict[str, str] = keys) -> float:
            try:
                return float(v.get(keys.get(key, key), "nan"))
            except ValueError:
                return math.nan

        value = last.get(topic, math.nan)
        lines.append(f"{node[:25]:<26}{series[:23]:<24}{num('rate_hz'):>8.1f}{int(num('count') or 0):>8d}"
                     f"{num('p50_ms'):>9.3f}{num('p99_ms'):>9.3f}{num('max_ms'):>9.3f}"
                     f"{num('window_max_ms'):>9.3f}{value:>9.3f}{v.get('misses', '0'):>8}")
    nodes = [f"{name}: {v.get('level', '?')} {v['_message']}" for name, v in sorted(statuses.items())
             if ": " not in name and "level" in v]
    if nodes:
        lines += ["", *nodes]
    return "\n".join(lines)


@console_main("pe-monitor")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pe-monitor", description=__doc__.split("\n\n")[0])
    p.add_argument("--once", type=float, default=None, metavar="SECONDS",
                   help="print the table once after SECONDS and exit")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID to watch")
    args = p.parse_args(argv)
    if args.domain_id is not None:
        os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from std_msgs.msg import Float64

    from pe_ros import qos

    rclpy.init(args=[])
    node = rclpy.create_node("pe_monitor")
    statuses: dict[str, dict[str, str]] = {}
    last: dict[str, float] = {}
    subscribed: set[str] = set()

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for s in msg.status:
            statuses[s.name] = {**{kv.key: kv.value for kv in s.values}, "_message": s.message}

    def discover() -> None:
        for topic, types in node.get_topic_names_and_types():
            if topic in subscribed or "std_msgs/msg/Float64" not in types:
                continue
            if topic.endswith(SUFFIXES):
                subscribed.add(topic)
                node.create_subscription(Float64, topic, lambda m, t=topic: last.__setitem__(t, m.data),
                                         qos.TIMING)

    def draw() -> None:
        discover()
        table = format_rows(statuses, last)
        if sys.stdout.isatty() and args.once is None:
            sys.stdout.write("\x1b[2J\x1b[H")
        sys.stdout.write(f"pe-monitor  {time.strftime('%H:%M:%S')}  ROS_DOMAIN_ID="
                         f"{os.environ.get('ROS_DOMAIN_ID', '0')}\n{table}\n")
        sys.stdout.flush()

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, qos.DIAGNOSTICS)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    code = 0
    try:
        if args.once is not None:
            end = time.monotonic() + args.once
            while time.monotonic() < end:
                discover()
                executor.spin_once(timeout_sec=0.1)
            draw()
            code = 0 if statuses else 1
        else:
            node.create_timer(1.0, draw)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
