"""Timing that a person can watch: per-step numbers and a 1 Hz summary.

:class:`NodeTiming` gives a node

* one ``std_msgs/Float64`` topic per measured series, e.g. ``~/compute_time_ms``
  (one value per step, for rqt_plot or ``pe-monitor``);
* compute time measured twice: wall clock (what a callback takes, preemption
  included: on a shared machine this is mostly the neighbours) and CPU time of
  the thread (what the node's own code costs);
* a ``diagnostic_msgs/DiagnosticArray`` on ``/diagnostics`` once a second (a
  steady-clock timer, so it ticks on sim time too): one status named after the
  node (``/pursuer/safety_filter``) with what an operator needs at a glance --
  rate, compute p50/p99/max, misses, for a filter the intervention and backup
  counts, and a level on documented thresholds (:mod:`pe_ros.health`) -- and
  one status per further published series (``/sim: loop_latency/<robot>``:
  rate, p50/p99/max since start, the last window's max, misses; WARN while
  misses grow);
* :meth:`NodeTiming.write` to dump the summaries as JSON at shutdown (the
  launcher's timing table reads these files).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import Float64

from pe_ros import qos
from pe_ros.health import NodeHealth
from pe_ros.timing import TimingSeries


class _Series:
    def __init__(self, node: Node, name: str, topic: str | None) -> None:
        self.stats = TimingSeries(name)
        self._pub = node.create_publisher(Float64, topic, qos.TIMING) if topic else None
        self._msg = Float64()
        self._last_misses = 0

    def add(self, ms: float) -> None:
        self.stats.add(ms)
        if self._pub is not None and self._pub.get_subscription_count():  # nobody listening: skip
            self._msg.data = ms
            self._pub.publish(self._msg)


class NodeTiming:
    """The timing series of one node, published per sample and summarised at 1 Hz."""

    def __init__(self, node: Node, period_s: float = 1.0) -> None:
        self._node = node
        self._series: dict[str, _Series] = {}
        self._counters: dict[str, int] = {}
        self.health = NodeHealth(time.monotonic())
        self._diag_pub = node.create_publisher(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        self._timer = node.create_timer(period_s, self.publish_diagnostics,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.compute = self.series("compute_time", "~/compute_time_ms")
        self.compute_cpu = self.series("compute_cpu_time", None)
        self._carried = [0.0, 0.0]

    @staticmethod
    def start() -> tuple[float, float]:
        """Wall and CPU clocks at a callback's start (pass it to :meth:`carry`/:meth:`finish`)."""
        return time.perf_counter(), time.thread_time()

    def carry(self, t0: tuple[float, float]) -> None:
        """A callback that did part of a step's work (e.g. one robot's state) ends here."""
        self._carried[0] += time.perf_counter() - t0[0]
        self._carried[1] += time.thread_time() - t0[1]

    def finish(self, t0: tuple[float, float]) -> None:
        """The callback that completes a step ends here: record the step's compute time,
        wall (``compute_time``, also on ``~/compute_time_ms``) and CPU
        (``compute_cpu_time``: excludes time the process was preempted), including the
        work carried from earlier callbacks of the same step."""
        wall = self._carried[0] + time.perf_counter() - t0[0]
        cpu = self._carried[1] + time.thread_time() - t0[1]
        self._carried = [0.0, 0.0]
        self.compute.add(wall * 1e3)
        self.compute_cpu.stats.add(cpu * 1e3)

    def series(self, name: str, topic: str | None) -> _Series:
        """A measured series; ``topic`` (e.g. ``~/compute_time_ms``) gets every sample."""
        s = _Series(self._node, name, topic)
        self._series[name] = s
        return s

    def count(self, name: str, increment: int = 1) -> None:
        """A named event counter reported with the diagnostics (e.g. ``nan_commands``)."""
        self._counters[name] = self._counters.get(name, 0) + increment

    def record_command(self, intervened: bool, backup_reason: str = "") -> None:
        """A safety filter published a command (``backup_reason``: empty unless a stop);
        counted in the node's status (:meth:`pe_ros.health.NodeHealth.record_command`)."""
        self.health.record_command(time.monotonic(), intervened, backup_reason)

    @property
    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def summaries(self) -> dict[str, dict[str, Any]]:
        return {name: s.stats.summary() for name, s in self._series.items()}

    def publish_diagnostics(self) -> None:
        node_name = self._node.get_fully_qualified_name()
        array = DiagnosticArray()
        array.header.stamp = self._node.get_clock().now().to_msg()
        array.status.append(self._node_status(node_name))
        for name, s in self._series.items():
            if s is not self.compute and s is not self.compute_cpu:
                array.status.append(_series_status(node_name, name, s))
        self._diag_pub.publish(array)

    def _node_status(self, node_name: str) -> DiagnosticStatus:
        """The node's own status (named after the node): :meth:`NodeHealth.report`."""
        window = self.compute.stats.window()
        misses = sum(s.stats.misses for s in self._series.values())
        report = self.health.report(time.monotonic(), self.compute.stats.summary(),
                                    self.compute_cpu.stats.summary(), window["rate_hz"],
                                    window["window_max_ms"], self.compute.stats.last_sample_at,
                                    misses, self._counters)
        status = DiagnosticStatus(level=bytes([report.level]), name=node_name,
                                  hardware_id=node_name, message=report.message)
        status.values = [KeyValue(key=k, value=_fmt(v)) for k, v in report.values.items()]
        return status

    def write(self, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        """Summaries, counters and ``extra`` as JSON at ``path`` (folders created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"node": self._node.get_fully_qualified_name(), "series": self.summaries(),
                "counters": self.counters, **(extra or {})}
        path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")


def _series_status(node_name: str, name: str, s: _Series) -> DiagnosticStatus:
    """A further series (e.g. the sim's loop latency to one robot), WARN while its misses grow."""
    summary = s.stats.summary()
    window = s.stats.window()
    grew = summary["misses"] > s._last_misses
    s._last_misses = summary["misses"]
    status = DiagnosticStatus(level=DiagnosticStatus.WARN if grew else DiagnosticStatus.OK,
                              name=f"{node_name}: {name}", hardware_id=node_name)
    if summary["count"]:
        status.message = (f"{window['rate_hz']:.1f} Hz, p50 {summary['p50_ms']:.3f} ms, "
                          f"p99 {summary['p99_ms']:.3f} ms, misses {summary['misses']}")
    else:
        status.message = "no samples yet"
    values = {**summary, "rate_hz": window["rate_hz"], "window_max_ms": window["window_max_ms"]}
    status.values = [KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]
    return status


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _json_default(value: Any) -> Any:
    return float(value)


def read_timing_files(folder: str | Path) -> list[dict[str, Any]]:
    """Rows for :func:`pe_ros.timing.format_timing_table` from the JSON files in ``folder``."""
    rows = []
    for path in sorted(Path(folder).glob("*.json")):
        data = json.loads(path.read_text())
        for series, s in data.get("series", {}).items():
            rows.append({"node": data["node"], "series": series,
                         **{k: (math.nan if v is None else v) for k, v in s.items()}})
    return rows
