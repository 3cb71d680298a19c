"""``pe_safety_filter_node``: one robot's VCP-CBF safety filter as a ROS 2 node (one
per robot, in the robot's namespace), in the spirit of Nav2's collision_monitor.

Subscribes
  ``odom``               nav_msgs/Odometry of this robot, and ``/<teammate>/odom`` of
                         every teammate (same role)
  ``/obstacles``         visualization_msgs/MarkerArray: CYLINDER and SPHERE markers
                         (any namespace but ``arena``, or those of ``obstacle_namespaces``),
                         from latched and volatile publishers alike
  ``cmd_vel_nominal``    geometry_msgs/TwistStamped, or Twist with
                         ``enable_stamped_cmd_vel`` false (Nav2's convention)
  ``cbf_gains``          std_msgs/Float64MultiArray, only with ``use_policy_gains``
Publishes
  ``cmd_vel``            geometry_msgs/TwistStamped, stamp = the state the command was
                         filtered with (a stop without a state: the node's time)
  ``filter_status``      diagnostic_msgs/DiagnosticArray, one per command, just after it:
                         level OK (passed), WARN (corrected or clipped), ERROR (stop);
                         values :data:`STATUS_KEYS`
  ``~/compute_time_ms``  std_msgs/Float64 per command, and ``/diagnostics`` at 1 Hz

Which state a command is filtered with, and when the node stops instead, is
decided by a gate (:mod:`pe_ros.filter_gate`; ``pairing``: ``latest`` on a
robot, ``stamp`` for the lockstep evaluation). This node only converts messages,
calls the gate and :class:`~pe_safety_filter.filter.SafetyFilter`, and publishes;
every stop is logged with its reason (throttled to 1/s per reason) and published.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Twist, TwistStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from visualization_msgs.msg import MarkerArray

from pe_ros import cdr, convert, qos
from pe_ros.diagnostics import NodeTiming
from pe_ros.filter_gate import PAIRINGS, Filter, GateLimits, Repeat, Stop, make_gate
from pe_ros.params import ParameterError, declare, non_negative, positive, robot_index
from pe_ros.runtime import EXECUTORS, run_node
from pe_safety_filter.config import load_filter_config
from pe_safety_filter.filter import INTERVENTION_THRESHOLD, SafetyFilter
from pe_sim.scenario import load_scenario

_LEVEL = {"ok": ord(DiagnosticStatus.OK), "warn": ord(DiagnosticStatus.WARN),
          "error": ord(DiagnosticStatus.ERROR)}
#: Values of a filter status message, in order (floats as repr: exact).
STATUS_KEYS = ("intervened", "correction_v", "correction_omega", "correction_size", "backup",
               "backup_reason", "tier", "min_barrier", "state_age_ms", "solve_time_ms", "enabled",
               "clipped")
#: Reasons that stop the robot even with ``enabled`` false (bad or missing input).
INPUT_REASONS = ("nonfinite_command", "nonfinite_state", "stale_state")
#: Half-size (m) of the "arena" the filter uses when ``use_arena_walls`` is false: far
#: enough that no wall constraint is ever active.
NO_WALLS_HALF_SIZE = 1.0e6


class FilterNode(Node):
    def __init__(self) -> None:
        super().__init__("safety_filter")
        self._declare_parameters()
        sc = self.scenario
        spec = sc.robots[self.index]
        self.spec = spec
        half_w, half_h = (sc.half_width, sc.half_height) if self.use_walls else (NO_WALLS_HALF_SIZE,) * 2
        self.filter = SafetyFilter(self.config, spec, half_w, half_h, sc.dt)
        self.mates = [j for j, r in enumerate(sc.robots) if j != self.index and r.role == spec.role]
        self.mate_radii = np.array([sc.robots[j].radius for j in self.mates])
        self.mate_reach = np.array([sc.robots[j].v_max * sc.dt for j in self.mates])
        self.gate = make_gate(self.pairing, self.index, self.mates, sc.num_robots, GateLimits(
            self.config.max_state_age, self.nominal_timeout, self.future_tolerance))
        self._warm_up()

        self._last_answer: tuple[int, bytes, bytes] | None = None
        self.gains: np.ndarray | None = None
        self._ros_clock = self.get_clock()
        self._fqn = self.get_fully_qualified_name()
        self._reported: set[str] = set()
        self.timing = NodeTiming(self)
        self.status_pub = self.create_publisher(DiagnosticArray, "filter_status", qos.STATUS)
        self.cmd_pub = self.create_publisher(TwistStamped, "cmd_vel", qos.COMMAND)
        self._cmd_writer = cdr.TwistWriter(f"{spec.name}/base_link")
        self._subscribe()
        self.watchdog = self.create_timer(1.0 / self.watchdog_rate, self.on_watchdog,
                                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.create_timer(1.0, self.check_command_publishers, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.done = None
        self.get_logger().info(
            f"guarding {spec.name} with {self.config.name} "
            f"({'enabled' if self.enabled else 'DISABLED: pass-through'}), pairing {self.pairing}, "
            f"walls {'on' if self.use_walls else 'off'}, teammates {[sc.robots[j].name for j in self.mates]}")

    # -- setup -------------------------------------------------------------------------------
    def _declare_parameters(self) -> None:
        scenario_name = declare(self, "scenario", "seed_1v1_2obs",
                                "scenario name (config/scenarios/<name>.yaml) or YAML path: the "
                                "robots, their bounds and the arena",
                                check=lambda v: None if v else "must not be empty")
        robot = declare(self, "robot", "", "robot this filter guards ('' : the last part of the "
                        "node's namespace)")
        self.enabled = declare(self, "enabled", True, "true: VCP-CBF filter; false: pass the nominal "
                               "command through (NaN, stale-state and watchdog stops stay)",
                               read_only=False)
        self.pairing = declare(self, "pairing", "latest", "latest: answer every nominal command at "
                               "once with the newest state (a robot); stamp: a command answers the "
                               "state of its stamp (lockstep evaluation)", choices=PAIRINGS)
        config_name = declare(self, "filter_config", "vcp_cbf",
                              "filter config name (config/filter/<name>.yaml) or YAML path")
        max_age = declare(self, "max_state_age", 0.0, "oldest state (s, ROS time) a command may be "
                          "filtered with (0: the filter config's max_state_age)", check=non_negative)
        self.future_tolerance = declare(self, "future_tolerance", 0.05, "a state stamped more than "
                                        "this (s) ahead of the node's clock is refused",
                                        check=non_negative)
        self.nominal_timeout = declare(self, "nominal_timeout", 0.25, "no nominal command for this "
                                       "long (s, wall time) gives a stop", check=positive)
        self.watchdog_rate = declare(self, "watchdog_rate", 20.0, "watchdog timer rate (Hz)",
                                     check=positive)
        self.stamped = declare(self, "enable_stamped_cmd_vel", True, "nominal commands are "
                               "TwistStamped (true) or Twist (false), as Nav2's parameter")
        namespaces = declare(self, "obstacle_namespaces", "", "comma-separated marker namespaces "
                             "that hold obstacles ('' : any but 'arena')")
        self.obstacle_namespaces = tuple(n.strip() for n in namespaces.split(",") if n.strip())
        self.use_walls = declare(self, "use_arena_walls", True, "keep the robot inside the "
                                 "scenario's arena (false: no wall constraints)")
        self.use_policy_gains = declare(self, "use_policy_gains", False, "use class-K gains from "
                                        "cbf_gains (BarrierNet hook) instead of the config's")
        self.timing_file = declare(self, "timing_file", "", "timing summary (JSON) written at exit")
        self.executor_kind = declare(self, "executor", "events", "rclpy executor", choices=EXECUTORS)
        fqn = self.get_fully_qualified_name()
        if self.pairing == "stamp" and not self.stamped:
            raise ParameterError(f"{fqn}: parameter 'enable_stamped_cmd_vel' = False: pairing "
                                 "'stamp' needs stamped commands")
        self.scenario = load_scenario(scenario_name)
        self.index = robot_index(self, self.scenario, robot)
        try:
            config = load_filter_config(config_name)
        except FileNotFoundError as exc:
            raise ParameterError(f"{fqn}: parameter 'filter_config' = {config_name!r}: {exc}") from None
        self.config = dataclasses.replace(config, max_state_age=max_age) if max_age > 0 else config

    def _warm_up(self) -> None:
        """Compile the filter's kernels before joining the graph."""
        if self.mates:
            far = np.tile([5.0, 5.0, 0.0], (len(self.mates), 1))
            self.filter.filter(np.zeros(3), np.array([0.5, 0.1]), np.array([[3.0, 0.0, 0.5]]), far,
                               self.mate_radii, teammate_reach=self.mate_reach)
        else:
            self.filter.filter(np.zeros(3), np.array([0.5, 0.1]), np.array([[3.0, 0.0, 0.5]]))

    def _subscribe(self) -> None:
        """Inputs with QoS by pairing: lockstep needs every sample (reliable); a robot needs
        the newest one from any publisher (best effort matches reliable and best-effort
        writers)."""
        lockstep = self.pairing == "stamp"
        state_qos = qos.STATE if lockstep else qos.SENSOR_STATE
        command_qos = qos.COMMAND if lockstep else qos.SENSOR_COMMAND
        events = SubscriptionEventCallbacks(incompatible_qos=self.on_incompatible_qos)
        if lockstep:
            self.create_subscription(MarkerArray, "/obstacles", self.on_obstacles, qos.MAP,
                                     event_callbacks=events)
        else:   # the latched map, and volatile map publishers (a latched reader misses those)
            quiet = SubscriptionEventCallbacks(incompatible_qos=lambda event: None)
            self.create_subscription(MarkerArray, "/obstacles", self.on_obstacles, qos.MAP,
                                     event_callbacks=quiet)
            self.create_subscription(MarkerArray, "/obstacles", self.on_obstacles, qos.MAP_VOLATILE)
        self.create_subscription(Odometry, "odom", lambda m: self.on_odom(self.index, m), state_qos,
                                 raw=True, event_callbacks=events)
        for j in self.mates:
            self.create_subscription(Odometry, f"/{self.scenario.robots[j].name}/odom",
                                     lambda m, j=j: self.on_odom(j, m), state_qos, raw=True,
                                     event_callbacks=events)
        if self.use_policy_gains:
            self.create_subscription(Float64MultiArray, "cbf_gains", self.on_gains, command_qos)
        if self.stamped:
            self.create_subscription(TwistStamped, "cmd_vel_nominal", self.on_nominal, command_qos,
                                     raw=True, event_callbacks=events)
        else:
            self.create_subscription(Twist, "cmd_vel_nominal", self.on_nominal_twist, command_qos,
                                     event_callbacks=events)

    # -- parameters --------------------------------------------------------------------------
    def on_set_parameters(self, params) -> SetParametersResult:
        for p in params:
            if p.name == "enabled":
                if not isinstance(p.value, bool):
                    return SetParametersResult(successful=False, reason="enabled must be a bool")
                self.enabled = p.value
                self.get_logger().warning(f"filter {'enabled' if p.value else 'DISABLED'}")
        return SetParametersResult(successful=True)

    # -- time --------------------------------------------------------------------------------
    def ros_now(self) -> int | None:
        """The node's ROS time (ns), or None while sim time is on and no clock arrived."""
        now = self._ros_clock.now().nanoseconds
        if now == 0 and self._ros_clock.ros_time_is_active:
            return None
        return now

    # -- inputs ------------------------------------------------------------------------------
    def on_obstacles(self, msg: MarkerArray) -> None:
        markers = convert.read_obstacle_markers(msg, self.obstacle_namespaces)
        if markers.ignored:
            self.report_once("ignored_markers", f"ignored {markers.ignored} markers on /obstacles "
                             "that are not CYLINDER or SPHERE")
        if markers.stamp is None:   # no obstacle marker and no DELETEALL: nothing to say
            return
        if len(markers.frames) > 1:
            self.report_once("mixed_frames", f"obstacle markers in several frames {markers.frames}: "
                             "refused (frame_mismatch)")
        frame = "|".join(markers.frames) or None   # several frames never match the odometry's
        self.apply(self.gate.on_obstacles(markers.stamp, markers.obstacles, markers.lifetime_ns,
                                          frame, self.ros_now(), time.monotonic()), None)

    def on_gains(self, msg: Float64MultiArray) -> None:
        self.gains = np.array(msg.data, dtype=np.float64)

    def on_odom(self, robot: int, data: bytes) -> None:
        t0 = self.timing.start()
        stamp, x, y, theta, v, omega = convert.decode_odometry(data)
        frame = cdr.read_header_frame(data) if robot == self.index else ""
        decisions = self.gate.on_state(robot, stamp, (x, y, theta, v, omega), frame, self.ros_now(),
                                       time.monotonic())
        self.apply(decisions, t0) if decisions else self.timing.carry(t0)

    def on_nominal(self, data: bytes) -> None:
        t0 = self.timing.start()
        stamp, v, omega = convert.decode_twist(data)
        self.command(stamp, v, omega, t0)

    def on_nominal_twist(self, msg: Twist) -> None:
        self.command(0, msg.linear.x, msg.angular.z, self.timing.start())

    def command(self, stamp: int, v: float, omega: float, t0: tuple[float, float]) -> None:
        decisions = self.gate.on_nominal(stamp, v, omega, self.ros_now(), time.monotonic())
        self.apply(decisions, t0) if decisions else self.timing.carry(t0)

    def on_watchdog(self) -> None:
        self.apply(self.gate.on_tick(self.ros_now(), time.monotonic()), None)

    # -- graph checks ------------------------------------------------------------------------
    def on_incompatible_qos(self, event) -> None:
        self.report_once(f"qos_{event.last_policy_kind}", "a publisher with incompatible QoS "
                         f"(policy {event.last_policy_kind}) on one of this node's inputs: its "
                         "messages are not received")

    def check_command_publishers(self) -> None:
        """Report a publisher of the other command type on ``cmd_vel_nominal``."""
        expected = "geometry_msgs/msg/TwistStamped" if self.stamped else "geometry_msgs/msg/Twist"
        topic = self.resolve_topic_name("cmd_vel_nominal")
        for info in self.get_publishers_info_by_topic(topic):
            if info.topic_type != expected:
                self.report_once(f"type_{info.topic_type}", f"{info.node_namespace}/{info.node_name} "
                                 f"publishes {info.topic_type} on {topic}, this node reads {expected} "
                                 "(parameter enable_stamped_cmd_vel): its commands are not received")

    def report_once(self, key: str, text: str) -> None:
        """Log ``text`` once and publish it as an ERROR status (no command)."""
        if key in self._reported:
            return
        self._reported.add(key)
        self.get_logger().error(text)
        self.timing.count(key)
        now = self.ros_now() or 0
        self.status_pub.publish(cdr.write_status_array(now, _LEVEL["error"], self._fqn, text,
                                                       self.spec.name, []))

    # -- decisions ---------------------------------------------------------------------------
    def apply(self, decisions: list, t0: tuple[float, float] | None) -> None:
        for d in decisions:
            if isinstance(d, Filter):
                self.run_filter(d, t0)
            elif isinstance(d, Stop):
                self.stop(d, t0)
            elif isinstance(d, Repeat):
                self.repeat_answer(d.stamp)
            t0 = None

    def run_filter(self, d: Filter, t0: tuple[float, float] | None) -> None:
        pose = np.array(d.state[:3])
        u_nom = np.array(d.u_nom)
        gains = self.gains_for(d.obstacles)
        if self.mates:
            mates = np.array([s[:3] for s in d.teammates])
            res = self.filter.filter(pose, u_nom, d.obstacles, mates, self.mate_radii, gains,
                                     state_age=d.age_s, teammate_reach=self.mate_reach)
        else:
            res = self.filter.filter(pose, u_nom, d.obstacles, gains=gains, state_age=d.age_s)
        if self.enabled or res.backup_reason in INPUT_REASONS:
            u, intervened, size, reason, tier = (res.u_safe, res.intervened, res.correction_size,
                                                 res.backup_reason, res.tier)
            correction = res.correction
        else:
            u, intervened, size, reason, tier = u_nom, False, 0.0, None, "disabled"
            correction = np.zeros(2)
        if reason and self.use_walls and not self.inside_arena(pose):
            reason = "outside_arena"   # what made the QP infeasible: say so
        if reason:
            self.log_stop(d.stamp, reason, d.u_nom, d.age_s)
        clipped = self.clipped(d.u_nom)
        level = "error" if reason else ("warn" if intervened or clipped else "ok")
        self.publish(d.stamp, float(u[0]), float(u[1]), level, reason or tier, {
            "intervened": intervened, "correction_v": float(correction[0]),
            "correction_omega": float(correction[1]), "correction_size": float(size),
            "backup": reason is not None, "backup_reason": reason or "", "tier": tier,
            "min_barrier": float(res.min_barrier), "state_age_ms": d.age_s * 1e3,
            "solve_time_ms": res.solve_time_s * 1e3, "enabled": self.enabled,
            "clipped": clipped}, t0, answers=True)

    def inside_arena(self, pose: np.ndarray) -> bool:
        r = self.spec.radius
        return (abs(pose[0]) <= self.scenario.half_width - r + 1e-9
                and abs(pose[1]) <= self.scenario.half_height - r + 1e-9)

    def clipped(self, u_nom: tuple[float, float]) -> bool:
        """Whether the nominal command lies outside the robot's bounds (clipped to them)."""
        v, omega = u_nom
        r = self.spec
        return bool(v > r.v_max or v < r.v_min or abs(omega) > r.omega_max)

    def gains_for(self, obstacles: np.ndarray) -> np.ndarray | None:
        if not self.use_policy_gains or self.gains is None:
            return None
        if self.gains.size != obstacles.shape[0] + 4 + len(self.mates):
            return None
        return self.gains

    def log_stop(self, stamp: int, reason: str, u_nom: tuple[float, float] | None, age_s: float) -> None:
        self.timing.count(f"stop_{reason}")
        nominal = "" if u_nom is None else f" (nominal {u_nom[0]!r}, {u_nom[1]!r})"
        age = "" if math.isnan(age_s) else f"; state age {age_s * 1e3:.1f} ms"
        self.get_logger().warning(f"stop for stamp {stamp}: {reason}{nominal}{age}",
                                  throttle_duration_sec=1.0)

    def stop(self, d: Stop, t0: tuple[float, float] | None) -> None:
        """Publish (0, 0) for ``d.stamp`` with ``d.reason``; the correction is measured against
        the nominal command (clipped) when there is one."""
        self.log_stop(d.stamp, d.reason, d.u_nom, d.age_s)
        dv = dw = size = 0.0
        clipped = False
        if d.u_nom is not None and math.isfinite(d.u_nom[0]) and math.isfinite(d.u_nom[1]):
            r = self.spec
            dv = -min(max(d.u_nom[0], r.v_min), r.v_max)
            dw = -min(max(d.u_nom[1], -r.omega_max), r.omega_max)
            size = max(abs(dv) / r.v_max, abs(dw) / r.omega_max)
            clipped = self.clipped(d.u_nom)
        self.publish(d.stamp, 0.0, 0.0, "error", d.reason, {
            "intervened": size > INTERVENTION_THRESHOLD, "correction_v": dv, "correction_omega": dw,
            "correction_size": size, "backup": True, "backup_reason": d.reason, "tier": "backup",
            "min_barrier": math.nan, "state_age_ms": d.age_s * 1e3, "solve_time_ms": 0.0,
            "enabled": self.enabled, "clipped": clipped}, t0, d.answers)

    def publish(self, stamp: int, v: float, omega: float, level: str, message: str,
                values: dict, t0: tuple[float, float] | None, answers: bool) -> None:
        """Publish the command for ``stamp``, then its status (the command first: it is
        what the robot waits for)."""
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
        if values["intervened"]:
            self.timing.count("interventions")
        if t0 is not None:
            self.timing.finish(t0)

    def repeat_answer(self, stamp: int) -> None:
        """Publish the answer to ``stamp`` again if it was the last one (idempotent)."""
        if self._last_answer is not None and self._last_answer[0] == stamp:
            self.cmd_pub.publish(self._last_answer[2])
            self.status_pub.publish(self._last_answer[1])

    def shutdown(self) -> None:
        if self.timing_file:
            self.timing.write(self.timing_file, {"enabled": self.enabled})


def main(args: list[str] | None = None) -> int:
    return run_node(FilterNode, args)
