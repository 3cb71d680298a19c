"""What an operator needs at a glance about one node (pure Python, no ROS).

:class:`NodeHealth` turns a node's timing summaries and, for a safety filter,
its command counts into one diagnostic status per node: a level, a one-line
message and the key/value pairs behind it. :mod:`pe_ros.diagnostics` publishes
it on ``/diagnostics`` once a second; rqt_runtime_monitor lists it,
rqt_robot_monitor groups it (through the diagnostic aggregator), ``pe-monitor``
prints it.

Levels, on these thresholds (:class:`HealthThresholds`, documented in
``docs/ros_graph.md``):

* **ERROR**, stale input: no step for ``stale_after_s`` (2 s) after the node
  has stepped, or none within ``startup_grace_s`` (30 s) of its start; for a
  filter, a stop for a stale or missing input (``stale_state``,
  ``missing_state``, ``missing_obstacles``, ``nominal_timeout``, ``no_input``)
  within the last ``hold_s`` (10 s);
* **WARN**: a missed step, or (filter) any other backup stop
  (``nonfinite_command``, ``nonfinite_state``, the CBF's own backup), within the
  last ``hold_s``;
* **OK** otherwise. An intervention (a corrected command) is the filter doing
  its job: counted, never a warning.

Times are seconds of a monotonic clock passed in by the caller (``now``), so
the class is tested without waiting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: Levels, equal to diagnostic_msgs/DiagnosticStatus's OK, WARN, ERROR.
OK, WARN, ERROR = 0, 1, 2
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR"}

#: Filter stop reasons that mean an input was stale or missing (level ERROR).
STALE_INPUT_REASONS = frozenset({"stale_state", "missing_state", "missing_obstacles",
                                 "nominal_timeout", "no_input"})


@dataclass(frozen=True)
class HealthThresholds:
    """Where the levels change (seconds)."""

    stale_after_s: float = 2.0     # no step for this long after the first: ERROR
    startup_grace_s: float = 30.0  # no step at all this long after start: ERROR
    hold_s: float = 10.0           # a miss or a backup keeps its level this long


@dataclass
class CommandCounts:
    """A safety filter's published commands since start."""

    commands: int = 0
    interventions: int = 0
    backups: int = 0
    backup_reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """One node's status: a level (OK/WARN/ERROR), a one-line message, key/value pairs."""

    level: int
    message: str
    values: dict[str, Any]


class NodeHealth:
    """Levels and counters of one node; :meth:`report` composes its status."""

    def __init__(self, started_at: float, thresholds: HealthThresholds | None = None) -> None:
        self.thresholds = thresholds or HealthThresholds()
        self.started_at = started_at
        self.commands: CommandCounts | None = None   # set by the first record_command
        self._misses_seen = 0
        self._last_miss_at = -math.inf
        self._last_backup_at = -math.inf
        self._last_stale_input_at = -math.inf
        self._last_backup_reason = ""
        self._last_stale_reason = ""
        self._last_other_reason = ""

    def record_command(self, now: float, intervened: bool, backup_reason: str = "") -> None:
        """A filter published a command; ``backup_reason`` is empty unless it is a stop."""
        c = self.commands = self.commands or CommandCounts()
        c.commands += 1
        c.interventions += bool(intervened)
        if backup_reason:
            c.backups += 1
            c.backup_reasons[backup_reason] = c.backup_reasons.get(backup_reason, 0) + 1
            self._last_backup_reason = backup_reason
            if backup_reason in STALE_INPUT_REASONS:
                self._last_stale_input_at = now
                self._last_stale_reason = backup_reason
            else:
                self._last_backup_at = now
                self._last_other_reason = backup_reason

    def report(self, now: float, compute: dict[str, Any], cpu: dict[str, Any] | None,
               rate_hz: float, window_max_ms: float, last_step_at: float | None, misses: int,
               counters: dict[str, int] | None = None) -> Report:
        """The status at ``now``: ``compute``/``cpu`` are :meth:`TimingSeries.summary` dicts
        (ms), ``rate_hz`` and ``window_max_ms`` the steps per second and the largest compute
        time (ms) of the last window, ``last_step_at`` the
        time of the newest step (None: none yet), ``misses`` the node's missed steps since
        start, ``counters`` other event counts to show."""
        if misses > self._misses_seen:
            self._last_miss_at = now
        self._misses_seen = misses
        level, problem = self._level(now, last_step_at)
        parts = [problem] if problem else []
        if compute.get("count"):
            parts.append(f"{rate_hz:.1f} Hz, compute p50 {compute['p50_ms']:.2f} / "
                         f"p99 {compute['p99_ms']:.2f} / max {compute['max_ms']:.2f} ms")
        parts.append(f"misses {misses}")
        values: dict[str, Any] = {
            "level": LEVEL_NAMES[level], "rate_hz": rate_hz, "steps": compute.get("count", 0),
            "compute_p50_ms": compute.get("p50_ms", math.nan),
            "compute_p99_ms": compute.get("p99_ms", math.nan),
            "compute_max_ms": compute.get("max_ms", math.nan), "window_max_ms": window_max_ms,
            "misses": misses,
            "seconds_since_step": math.nan if last_step_at is None else now - last_step_at}
        if cpu is not None:
            values["compute_cpu_p50_ms"] = cpu.get("p50_ms", math.nan)
            values["compute_cpu_p99_ms"] = cpu.get("p99_ms", math.nan)
        if self.commands is not None:
            c = self.commands
            parts.append(f"interventions {c.interventions}, backups {c.backups}")
            values.update(commands=c.commands, interventions=c.interventions, backups=c.backups,
                          last_backup_reason=self._last_backup_reason)
            values.update({f"backups_{reason}": n for reason, n in sorted(c.backup_reasons.items())})
        values.update(counters or {})
        return Report(level, ", ".join(parts), values)

    def _level(self, now: float, last_step_at: float | None) -> tuple[int, str]:
        """The level and, unless OK, what an operator should look at first."""
        t = self.thresholds
        if last_step_at is None:
            if now - self.started_at > t.startup_grace_s:
                return ERROR, f"STALE INPUT: no step in {now - self.started_at:.0f} s since start"
            return OK, "waiting for the first step"
        if now - last_step_at > t.stale_after_s:
            return ERROR, f"STALE INPUT: no step for {now - last_step_at:.1f} s"
        if now - self._last_stale_input_at <= t.hold_s:
            return ERROR, f"STALE INPUT: stopped for {self._last_stale_reason}"
        if now - self._last_backup_at <= t.hold_s:
            return WARN, f"backup stop ({self._last_other_reason})"
        if now - self._last_miss_at <= t.hold_s:
            return WARN, "missed step"
        return OK, ""
