"""``pe_safety_filter_node``: one robot's VCP-CBF safety filter as a ROS 2 node
(one per robot, in the robot's namespace), in the spirit of Nav2's collision_monitor.

Subscribes
  ``odom``               nav_msgs/Odometry of this robot, and ``/<teammate>/odom`` of
                         every teammate (same role)
  ``/obstacles``         visualization_msgs/MarkerArray (latched)
  ``cmd_vel_nominal``    geometry_msgs/TwistStamped from the policy
  ``cbf_gains``          std_msgs/Float64MultiArray, only with ``use_policy_gains``
Publishes
  ``cmd_vel``            geometry_msgs/TwistStamped, stamp = the state the nominal command answered
  ``filter_status``      diagnostic_msgs/DiagnosticArray, one per command, just after it:
                         header.stamp = the command's stamp; level OK (passed), WARN
                         (corrected), ERROR (stop/backup); values: intervened, correction_v,
                         correction_omega, correction_size, backup, backup_reason, tier,
                         min_barrier, state_age_ms, solve_time_ms, enabled
  ``~/compute_time_ms``  std_msgs/Float64 per command, and ``/diagnostics`` at 1 Hz

What it does (each stop is logged with its reason, throttled to 1/s per reason):

1. A nominal command answering the state of stamp s is filtered with this
   robot's odometry of stamp s (teammates' of stamp s too), the obstacle set
   valid at s and the state's age (ROS time now - s; sim time in lockstep):
   ``SafetyFilter.filter`` -- the same math as the headless evaluation's
   ``BatchSafetyFilter``. NaN/inf commands give (0, 0), reason
   ``nonfinite_command``; a state older than ``max_state_age`` gives (0, 0),
   ``stale_state``. With ``enabled`` false the CBF is off and the nominal
   command passes unchanged, but these input checks stay.
2. A nominal command whose state has not arrived within ``nominal_timeout``
   (wall time) gives a stop, ``missing_state``; so does one with no obstacle
   set (``missing_obstacles``).
3. Watchdog (steady timer at ``watchdog_rate``): a state left unanswered for
   ``nominal_timeout`` gets a stop (``nominal_timeout``), and from then on
   every new state is answered at once by a stop until a nominal command
   arrives again. With no input at all (no state, no command) for
   ``nominal_timeout``, a stop stamped with the current ROS time is published
   every ``nominal_timeout`` (``no_input``): the filter is never silent when its
   input is. It never carries a state's stamp (in lockstep, sim time stands at
   the last state while the sim waits, and then no such stop is sent).

Wall-time limits (``nominal_timeout``) are for liveness; the state age limit
is in ROS time (sim time in lockstep, where a slow node is not a stale state).
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from visualization_msgs.msg import MarkerArray

from pe_ros import cdr, convert, qos
from pe_ros.diagnostics import NodeTiming
from pe_ros.params import ParameterError, declare, non_negative, positive, robot_index
from pe_ros.runtime import EXECUTORS, run_node
from pe_ros.state import EpisodeBook, StateTable
from pe_safety_filter.config import load_filter_config
from pe_safety_filter.filter import INTERVENTION_THRESHOLD, SafetyFilter
from pe_sim.scenario import load_scenario

_LEVEL = {"ok": ord(DiagnosticStatus.OK), "warn": ord(DiagnosticStatus.WARN),
          "error": ord(DiagnosticStatus.ERROR)}
#: Values of a filter status message, in order (floats as repr: exact).
STATUS_KEYS = ("intervened", "correction_v", "correction_omega", "correction_size", "backup",
               "backup_reason", "tier", "min_barrier", "state_age_ms", "solve_time_ms", "enabled")


class FilterNode(Node):
    def __init__(self) -> None:
        super().__init__("safety_filter")
        scenario_name = declare(self, "scenario", "seed_1v1_2obs",
                                "scenario name (config/scenarios/<name>.yaml) or YAML path",
                                check=lambda v: None if v else "must not be empty")
        robot = declare(self, "robot", "", "robot this filter guards ('' : the last part of the "
                        "node's namespace)")
        self.enabled = declare(self, "enabled", True, "true: VCP-CBF filter; false: pass the nominal "
                               "command through (NaN, stale-state and watchdog stops stay)",
                               read_only=False)
        config_name = declare(self, "filter_config", "vcp_cbf",
                              "filter config name (config/filter/<name>.yaml) or YAML path")
        max_age = declare(self, "max_state_age", 0.0, "oldest state (s) a command may be filtered "
                          "with (0: the filter config's max_state_age)", check=non_negative)
        self.nominal_timeout = declare(self, "nominal_timeout", 0.25, "a state unanswered by the "
                                       "policy (or a command without its state) for this long (s, "
                                       "wall time) gets a stop", check=positive)
        watchdog_rate = declare(self, "watchdog_rate", 20.0, "watchdog timer rate (Hz)", check=positive)
        self.use_policy_gains = declare(self, "use_policy_gains", False, "use class-K gains from "
                                        "cbf_gains (BarrierNet hook) instead of the config's")
        self.timing_file = declare(self, "timing_file", "", "timing summary (JSON) written at exit")
        self.executor_kind = declare(self, "executor", "events", "rclpy executor", choices=EXECUTORS)

        fqn = self.get_fully_qualified_name()
        self.scenario = load_scenario(scenario_name)
        self.index = robot_index(self, self.scenario, robot)
        try:
            config = load_filter_config(config_name)
        except FileNotFoundError as exc:
            raise ParameterError(f"{fqn}: parameter 'filter_config' = {config_name!r}: {exc}") from None
        if max_age > 0.0:
            config = dataclasses.replace(config, max_state_age=max_age)
        self.max_state_age = config.max_state_age
        sc = self.scenario
        spec = sc.robots[self.index]
        self.spec = spec
        self.filter = SafetyFilter(config, spec, sc.half_width, sc.half_height, sc.dt)
        self.mates = [j for j, r in enumerate(sc.robots) if j != self.index and r.role == spec.role]
        self.mate_radii = np.array([sc.robots[j].radius for j in self.mates])
        self.mate_reach = np.array([sc.robots[j].v_max * sc.dt for j in self.mates])
        self.needed = [self.index, *self.mates]
        # Warm up the compiled kernels before joining the graph.
        if self.mates:
            far = np.tile([5.0, 5.0, 0.0], (len(self.mates), 1))
            self.filter.filter(np.zeros(3), np.array([0.5, 0.1]), np.array([[3.0, 0.0, 0.5]]), far,
                               self.mate_radii, teammate_reach=self.mate_reach)
        else:
            self.filter.filter(np.zeros(3), np.array([0.5, 0.1]), np.array([[3.0, 0.0, 0.5]]))

        self.states = StateTable(sc.num_robots)
        self.book = EpisodeBook()
        self._received_at: dict[int, float] = {}   # own state stamp -> monotonic receipt time
        self.answered = -1                          # newest own-state stamp answered
        self.last_published_stamp = -1
        self.last_published_at = time.monotonic()
        self.last_nominal_at: float | None = None
        self.last_input_at = 0.0   # monotonic time of the last own state or nominal command
        self.dead = False
        self._silent = False
        self._last_answer: tuple[int, bytes, bytes] | None = None
        self.pending: tuple[int, float, float, float] | None = None  # stamp, v, omega, received
        self.gains: np.ndarray | None = None
        self._ros_clock = self.get_clock()

        self.create_subscription(MarkerArray, "/obstacles", self.on_obstacles, qos.MAP)
        self.status_pub = self.create_publisher(DiagnosticArray, "filter_status", qos.STATUS)
        self._fqn = self.get_fully_qualified_name()
        self.cmd_pub = self.create_publisher(TwistStamped, "cmd_vel", qos.COMMAND)
        self._cmd_writer = cdr.TwistWriter(f"{spec.name}/base_link")
        self.timing = NodeTiming(self)
        # States and nominal commands are read serialized (pe_ros.cdr).
        self.create_subscription(Odometry, "odom", lambda m: self.on_odom(self.index, m), qos.STATE,
                                 raw=True)
        for j in self.mates:
            self.create_subscription(Odometry, f"/{sc.robots[j].name}/odom",
                                     lambda m, j=j: self.on_odom(j, m), qos.STATE, raw=True)
        if self.use_policy_gains:
            self.create_subscription(Float64MultiArray, "cbf_gains", self.on_gains, qos.COMMAND)
        self.create_subscription(TwistStamped, "cmd_vel_nominal", self.on_nominal, qos.COMMAND, raw=True)
        self.watchdog = self.create_timer(1.0 / watchdog_rate, self.on_watchdog,
                                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.done = None
        self.get_logger().info(f"guarding {spec.name} with {config.name} "
                               f"({'enabled' if self.enabled else 'DISABLED: pass-through'}), "
                               f"teammates {[sc.robots[j].name for j in self.mates]}")

    # -- parameters --------------------------------------------------------------------------
    def on_set_parameters(self, params) -> SetParametersResult:
        for p in params:
            if p.name == "enabled":
                if not isinstance(p.value, bool):
                    return SetParametersResult(successful=False, reason="enabled must be a bool")
                self.enabled = p.value
                self.get_logger().warning(f"filter {'enabled' if p.value else 'DISABLED'}")
        return SetParametersResult(successful=True)

    # -- inputs ------------------------------------------------------------------------------
    def on_obstacles(self, msg: MarkerArray) -> None:
        stamp, obstacles, lifetime = convert.read_obstacle_markers(msg)
        self.book.add_obstacles(stamp, obstacles, lifetime)
        if self.pending is not None and self.ready(self.pending[0]):
            stamp, v_nom, w_nom, _ = self.pending
            self.pending = None
            self.process(stamp, v_nom, w_nom, self.timing.start())

    def on_gains(self, msg: Float64MultiArray) -> None:
        self.gains = np.array(msg.data, dtype=np.float64)

    def on_odom(self, robot: int, data: bytes) -> None:
        t0 = self.timing.start()
        stamp, x, y, theta, v, omega = convert.decode_odometry(data)
        self.states.put(robot, stamp, (x, y, theta, v, omega))
        if robot == self.index:
            if stamp == self.answered:
                self.repeat_answer(stamp)
                return
            self._received_at[stamp] = self.last_input_at = time.monotonic()
            if len(self._received_at) > 32:
                del self._received_at[min(self._received_at)]
            if self.dead and stamp > self.answered:
                self.stop(stamp, "nominal_timeout", t0)
                return
        if self.pending is not None and self.ready(self.pending[0]):
            stamp, v_nom, w_nom, _ = self.pending
            self.pending = None
            self.process(stamp, v_nom, w_nom, t0)
            return
        self.timing.carry(t0)

    def on_nominal(self, data: bytes) -> None:
        t0 = self.timing.start()
        stamp, v, omega = convert.decode_twist(data)
        self.last_nominal_at = self.last_input_at = time.monotonic()
        if self.dead:
            self.dead = False
            self.get_logger().info("nominal commands are back")
        if stamp <= self.answered:
            # Each state is answered once (lockstep determinism): this one already was, e.g.
            # by a watchdog stop, or a newer one was. A repeat of the last one (the sim resent
            # its state) gets the same answer again.
            self.repeat_answer(stamp)
            self.timing.carry(t0)
            return
        if self.ready(stamp) or self.newer_state(stamp):
            self.process(stamp, v, omega, t0)
        else:
            self.pending = (stamp, v, omega, self.last_nominal_at)
            self.timing.carry(t0)

    def ready(self, stamp: int) -> bool:
        return self.states.has_all(stamp, self.needed) and self.book.obstacles_at(stamp) is not None

    def newer_state(self, stamp: int) -> bool:
        latest = self.states.latest(self.index)
        return latest is not None and latest[0] > stamp

    # -- the step ----------------------------------------------------------------------------
    def process(self, stamp: int, v: float, omega: float, t0: tuple[float, float]) -> None:
        """Filter the nominal command answering the state of ``stamp``: with that state, or
        this robot's newest state if the command is late and its state is gone."""
        state_stamp = stamp
        own = self.states.get(self.index, stamp)
        if own is None:
            latest = self.states.latest(self.index)
            if latest is None or latest[0] < stamp:
                self.stop(stamp, "missing_state", t0, u_nom=(v, omega))
                return
            state_stamp, own = latest
        obstacles = self.book.obstacles_at(state_stamp)
        if obstacles is None:
            self.stop(stamp, "missing_obstacles", t0, u_nom=(v, omega))
            return
        age_s = max(0, self._ros_clock.now().nanoseconds - state_stamp) * 1e-9
        pose = np.array(own[:3])
        u_nom = np.array((v, omega))
        if self.mates:
            mates = np.empty((len(self.mates), 3))
            for k, j in enumerate(self.mates):
                s = self.states.get(j, state_stamp)
                if s is None:
                    latest = self.states.latest(j)
                    s = latest[1] if latest is not None else (math.nan,) * 5
                mates[k] = s[:3]
            res = self.filter.filter(pose, u_nom, obstacles, mates, self.mate_radii,
                                     self.gains_for(obstacles), state_age=age_s,
                                     teammate_reach=self.mate_reach)
        else:
            res = self.filter.filter(pose, u_nom, obstacles, gains=self.gains_for(obstacles),
                                     state_age=age_s)
        if self.enabled or res.backup_reason in ("nonfinite_command", "nonfinite_state", "stale_state"):
            u, intervened, size, reason, tier = (res.u_safe, res.intervened, res.correction_size,
                                                 res.backup_reason, res.tier)
            correction = res.correction
        else:
            u, intervened, size, reason, tier = u_nom, False, 0.0, None, "disabled"
            correction = np.zeros(2)
        if reason in ("nonfinite_command", "nonfinite_state", "stale_state"):
            self.get_logger().warning(f"stop for stamp {stamp}: {reason} (nominal {v!r}, {omega!r}; "
                                      f"state age {age_s * 1e3:.1f} ms)", throttle_duration_sec=1.0)
        level = "error" if reason else ("warn" if intervened else "ok")
        self.publish(stamp, float(u[0]), float(u[1]), level, reason or tier, {
            "intervened": intervened, "correction_v": float(correction[0]),
            "correction_omega": float(correction[1]), "correction_size": float(size),
            "backup": reason is not None, "backup_reason": reason or "", "tier": tier,
            "min_barrier": float(res.min_barrier), "state_age_ms": age_s * 1e3,
            "solve_time_ms": res.solve_time_s * 1e3, "enabled": self.enabled}, t0)

    def gains_for(self, obstacles: np.ndarray) -> np.ndarray | None:
        if not self.use_policy_gains or self.gains is None:
            return None
        if self.gains.size != obstacles.shape[0] + 4 + len(self.mates):
            return None
        return self.gains

    def stop(self, stamp: int, reason: str, t0: tuple[float, float] | None, log: bool = True,
             u_nom: tuple[float, float] | None = None, answers: bool = True) -> None:
        """Publish (0, 0) for ``stamp`` with ``reason``; the correction is measured against
        ``u_nom`` (clipped) when the nominal command is known."""
        if log:
            self.get_logger().warning(f"stop for stamp {stamp}: {reason}", throttle_duration_sec=1.0)
        dv = dw = size = 0.0
        if u_nom is not None and math.isfinite(u_nom[0]) and math.isfinite(u_nom[1]):
            r = self.spec
            dv = -min(max(u_nom[0], r.v_min), r.v_max)
            dw = -min(max(u_nom[1], -r.omega_max), r.omega_max)
            size = max(abs(dv) / r.v_max, abs(dw) / r.omega_max)
        self.publish(stamp, 0.0, 0.0, "error", reason, {
            "intervened": size > INTERVENTION_THRESHOLD, "correction_v": dv, "correction_omega": dw,
            "correction_size": size, "backup": True, "backup_reason": reason, "tier": "backup",
            "min_barrier": math.nan, "state_age_ms": math.nan, "solve_time_ms": 0.0,
            "enabled": self.enabled}, t0, answers)

    def publish(self, stamp: int, v: float, omega: float, level: str, message: str,
                values: dict, t0: tuple[float, float] | None, answers: bool = True) -> None:
        """Publish the command for ``stamp``, then its status (the command first: it is
        what the robot waits for); ``answers``: it answers the state (or nominal command)
        of that stamp, which is then never answered again."""
        cmd_data = self._cmd_writer.encode(stamp, float(v), float(omega))
        self.cmd_pub.publish(cmd_data)
        status_data = cdr.write_status_array(
            stamp, _LEVEL[level], self._fqn, message, self.spec.name,
            [(k, repr(x) if isinstance(x, float) else str(x)) for k, x in
             ((k, values[k]) for k in STATUS_KEYS)])
        self.status_pub.publish(status_data)
        self.timing.record_command(values["intervened"], values["backup_reason"])
        if answers:
            self._last_answer = (stamp, status_data, cmd_data)
        if answers and stamp > self.answered:
            self.answered = stamp
        self.last_published_stamp = max(self.last_published_stamp, stamp)
        self.last_published_at = time.monotonic()
        if self._silent and reason_is_input(message):
            self._silent = False
        if t0 is not None:
            self.timing.finish(t0)

    def repeat_answer(self, stamp: int) -> None:
        """Publish the answer to ``stamp`` again if it was the last one (idempotent)."""
        if self._last_answer is not None and self._last_answer[0] == stamp:
            self.cmd_pub.publish(self._last_answer[2])
            self.status_pub.publish(self._last_answer[1])

    # -- watchdog ----------------------------------------------------------------------------
    def on_watchdog(self) -> None:
        now = time.monotonic()
        if self.pending is not None and now - self.pending[3] > self.nominal_timeout:
            stamp, v, omega, _ = self.pending
            self.pending = None
            self.process(stamp, v, omega, self.timing.start())
        latest = self.states.latest(self.index)
        if latest is not None and latest[0] > self.answered:
            # The oldest state still waiting for its nominal command.
            received = min((t for s, t in self._received_at.items() if s > self.answered), default=now)
            if now - received > self.nominal_timeout:
                if not self.dead:
                    self.get_logger().error(f"no nominal command for {self.nominal_timeout} s: "
                                            "stopping until the policy is back")
                self.dead = True
                self.timing.count("nominal_timeouts")
                self.stop(latest[0], "nominal_timeout", None)
                return
        quiet = now - max(self.last_input_at, self.last_published_at)
        if quiet > self.nominal_timeout:
            # Neither states nor commands: a stop stamped "now", never a state's stamp (in
            # lockstep, sim time stands at the last state while the sim waits).
            stamp = self._ros_clock.now().nanoseconds
            newest = latest[0] if latest is not None else -1
            if stamp > max(self.last_published_stamp, newest):
                if not self._silent:
                    self.get_logger().warning(f"no input for {self.nominal_timeout} s: publishing "
                                              f"stops every {self.nominal_timeout} s")
                self._silent = True
                self.stop(stamp, "no_input", None, log=False, answers=False)

    def shutdown(self) -> None:
        if self.timing_file:
            self.timing.write(self.timing_file, {"enabled": self.enabled})


def reason_is_input(message: str) -> bool:
    """A published command that answered some input (not the no-input heartbeat)."""
    return message != "no_input"


def main(args: list[str] | None = None) -> int:
    return run_node(FilterNode, args)
