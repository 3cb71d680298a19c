"""``pe_sim_node``: the simulation as a ROS 2 node (a thin wrapper of
:class:`pe_sim.sim_runner.SimRunner`).

Publishes
  ``/<robot>/odom``             nav_msgs/Odometry: pose of the state, twist = the command
                                applied in the step that led to it; stamp = sim time of the state
  ``/obstacles``                visualization_msgs/MarkerArray (latched): obstacles and arena
  ``/episode``                  std_msgs/String, JSON: episode start (seed, start stamp,
                                obstacles) and end (EpisodeRecord, final state), then "finished"
  ``/clock``                    rosgraph_msgs/Clock, lockstep only: the sim time of each state
  ``~/compute_time_ms``         std_msgs/Float64 per step: step + publish time
  ``~/<robot>/loop_latency_ms`` std_msgs/Float64: state published -> its command received
  ``/diagnostics``              1 Hz summaries
Subscribes
  ``/<robot>/cmd_vel``          geometry_msgs/TwistStamped (stamp = the state it answers)
  ``/<robot>/filter_status``    diagnostic_msgs/DiagnosticArray, for robots in ``filtered_robots``

Before the first state it waits for the graph: a publisher on every
``cmd_vel`` (and ``filter_status`` of filtered robots) and ``cmd_vel_nominal``
(a policy advertises it once all its inputs are connected), at least
``wait_for_subscribers`` subscribers on every ``odom`` (and the policies and
filters on ``/episode`` and ``/obstacles``), then ``settle_time``.
An episode's start and obstacles are published before its first state; in
lockstep, episodes occupy fixed slots of sim time (see :mod:`pe_sim.sim_runner`)
so a node that gets the first state first knows to wait for them.
"""

from __future__ import annotations

import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.task import Future
from rosgraph_msgs.msg import Clock as ClockMsg
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from pe_ros import cdr, convert, qos
from pe_ros.diagnostics import NodeTiming
from pe_ros.params import ParameterError, declare, non_negative, positive
from pe_ros.runtime import EXECUTORS, run_node
from pe_sim.evaluation import EVAL_SEED_BASE
from pe_sim.scenario import load_scenario
from pe_sim.sim_runner import MODES, EpisodeEnd, EpisodeStart, SimRunner

LOCKSTEP_T0_NS = convert.NS_PER_S  # lockstep sim time starts at 1 s (0 reads as "unset" to ROS time)


def read_filter_status(data: bytes) -> tuple[int, bool, float, bool]:
    """(stamp ns, intervened, correction_size, backup) of a serialized filter status."""
    stamp, values = convert.decode_status(data)
    return (stamp, values["intervened"] == "True", float(values["correction_size"]),
            values["backup"] == "True")


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim")
        self.scenario_name = declare(self, "scenario", "seed_1v1_2obs",
                                     "scenario name (config/scenarios/<name>.yaml) or YAML path",
                                     check=lambda v: None if v else "must not be empty")
        self.mode = declare(self, "mode", "lockstep",
                            "lockstep: step when every command for the state arrived (or step_timeout); "
                            "realtime: step every dt with the latest commands", choices=MODES)
        first_seed = declare(self, "first_seed", EVAL_SEED_BASE, "seed of the first episode", low=0)
        episodes = declare(self, "episodes", 0, "episodes to play, then exit (0: play until stopped)", low=0)
        self.duration = declare(self, "duration", 0.0, "seconds of sim time to play, then exit (0: no "
                                "limit; with episodes, whichever ends first)", check=non_negative)
        filtered = declare(self, "filtered_robots", [], "robots behind a safety filter: the sim waits "
                           "for (lockstep) and records their filter status", array_of=str)
        policy_names = declare(self, "policy_names", [], "policy name of each robot, for the episode "
                               "records (empty: none)", array_of=str)
        self.step_timeout = declare(self, "step_timeout", 10.0, "lockstep: seconds to wait for the "
                                    "commands of a state before robots without one hold still (a miss)",
                                    check=positive)
        self.resend_period = declare(self, "resend_period", 0.5, "lockstep: publish the current "
                                     "state again every this many seconds while its commands are "
                                     "missing (repairs a lost message quickly)", check=positive)
        command_timeout = declare(self, "command_timeout", 0.5, "realtime: a latest command older "
                                  "than this (s of sim time) is replaced by a stop", check=positive)
        self.frame_id = declare(self, "frame_id", "world", "frame of poses and markers")
        self.wait_for_subscribers = declare(
            self, "wait_for_subscribers", -1, "subscribers every odom topic needs before the "
            "first state (-1: robots + 1, i.e. every policy node and the robot's filter; 0: no wait); "
            "/episode then needs min(this, robots) and /obstacles min(this, robots + 1)", low=-1)
        self.settle_time = declare(self, "settle_time", 0.5, "seconds to wait once the graph is "
                                   "complete, for the remaining endpoint matching", check=non_negative)
        self.startup_timeout = declare(self, "startup_timeout", 120.0, "seconds to wait for the "
                                       "graph before giving up (exit code 3)", check=positive)
        self.records_file = declare(self, "records_file", "", "episode records (JSON lines) are "
                                    "written here ('' : not written)")
        self.timing_file = declare(self, "timing_file", "", "timing summary (JSON) written at exit")
        self.executor_kind = declare(self, "executor", "events", "rclpy executor", choices=EXECUTORS)

        self.scenario = load_scenario(self.scenario_name)
        names = [r.name for r in self.scenario.robots]
        for name in filtered:
            if name not in names:
                raise ParameterError(f"{self.get_fully_qualified_name()}: parameter 'filtered_robots' "
                                     f"names {name!r}, not a robot of scenario {self.scenario.name} {names}")
        if policy_names and len(policy_names) != len(names):
            raise ParameterError(f"{self.get_fully_qualified_name()}: parameter 'policy_names' needs "
                                 f"{len(names)} entries (one per robot {names}), got {policy_names}")
        self.filtered = [names.index(n) for n in filtered]
        t0 = LOCKSTEP_T0_NS if self.mode == "lockstep" else 0  # realtime: set at the first state
        self.runner = SimRunner(self.scenario, first_seed, episodes, self.filtered, policy_names, t0,
                                command_timeout, episode_stride=self.mode == "lockstep")
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._system = Clock(clock_type=ClockType.SYSTEM_TIME)

        self.odom_pubs = [self.create_publisher(Odometry, f"/{n}/odom", qos.STATE) for n in names]
        self._odom_writers = [cdr.OdometryWriter(self.frame_id, f"{n}/base_link") for n in names]
        self.map_pub = self.create_publisher(MarkerArray, "/obstacles", qos.MAP)
        self.episode_pub = self.create_publisher(String, "/episode", qos.EPISODE)
        self.clock_pub = (self.create_publisher(ClockMsg, "/clock", qos.CLOCK)
                          if self.mode == "lockstep" else None)
        self._clock_msg = ClockMsg()
        # Per-step topics are read serialized (raw=True, see pe_ros.cdr).
        self.cmd_subs = [
            self.create_subscription(TwistStamped, f"/{n}/cmd_vel",
                                     lambda m, i=i: self.on_command(i, m), qos.COMMAND, raw=True)
            for i, n in enumerate(names)]
        self.status_subs = [
            self.create_subscription(DiagnosticArray, f"/{names[i]}/filter_status",
                                     lambda m, i=i: self.on_status(i, m), qos.STATUS, raw=True)
            for i in self.filtered]

        self.timing = NodeTiming(self)
        self.latency = [self.timing.series(f"loop_latency/{n}", f"~/{n}/loop_latency_ms") for n in names]
        self._published_at = [0.0] * len(names)
        self._last_state = [b""] * len(names)
        self._resent_at = 0.0
        self._latency_done = [False] * len(names)
        self._records = None
        if self.records_file:
            Path(self.records_file).parent.mkdir(parents=True, exist_ok=True)
            self._records = open(self.records_file, "w")
        self.done = Future()
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self._running = False
        self._unpublished = False
        self._graph_since = time.monotonic()
        self._complete_since: float | None = None
        self._wait_timer = self.create_timer(0.05, self.check_graph, clock=self._steady)
        self._step_timer = None
        self.get_logger().info(
            f"scenario {self.scenario.name}, mode {self.mode}, seeds {first_seed}.."
            + (f"{first_seed + episodes - 1}" if episodes else "") + f", filtered {filtered or 'none'}")

    # -- startup -----------------------------------------------------------------------------
    def missing_endpoints(self) -> list[str]:
        names = [r.name for r in self.scenario.robots]
        need = self.wait_for_subscribers if self.wait_for_subscribers >= 0 else len(names) + 1
        missing = [f"/{names[i]}/cmd_vel publisher" for i, s in enumerate(self.cmd_subs)
                   if s.get_publisher_count() < 1]
        missing += [f"/{names[i]}/filter_status publisher" for i, s in zip(self.filtered, self.status_subs,
                                                                            strict=True)
                    if s.get_publisher_count() < 1]
        if need:
            # A policy advertises its commands once all its inputs are connected.
            missing += [f"/{n}/cmd_vel_nominal publisher" for n in names
                        if self.count_publishers(f"/{n}/cmd_vel_nominal") < 1]
            missing += [f"/{names[i]}/odom subscribers ({p.get_subscription_count()}/{need})"
                        for i, p in enumerate(self.odom_pubs) if p.get_subscription_count() < need]
            # Policies read /episode, policies and filters /obstacles (both latched, but a
            # node must have them before the first state, or it waits for them).
            for topic, pub, want in (("/episode", self.episode_pub, min(need, len(names))),
                                     ("/obstacles", self.map_pub, min(need, len(names) + 1))):
                if pub.get_subscription_count() < want:
                    missing.append(f"{topic} subscribers ({pub.get_subscription_count()}/{want})")
        return missing

    def check_graph(self) -> None:
        now = time.monotonic()
        missing = self.missing_endpoints() if self.wait_for_subscribers else []
        if missing:
            self._complete_since = None
            if now - self._graph_since > self.startup_timeout:
                self.get_logger().error(f"graph incomplete after {self.startup_timeout:.0f} s; "
                                        f"missing: {', '.join(missing)}")
                self._wait_timer.cancel()
                self.done.set_result(3)
            return
        if self._complete_since is None:
            self._complete_since = now
        if now - self._complete_since < self.settle_time:
            return
        self._wait_timer.cancel()
        self.begin()

    def begin(self) -> None:
        self.get_logger().info("graph complete; starting")
        self._running = True
        self._started_at = time.perf_counter()
        if self.mode == "realtime":
            self.runner.t0_ns = self._system.now().nanoseconds
            self._step_timer = self.create_timer(self.scenario.dt, self.on_tick, clock=self._steady)
        else:
            self._step_timer = self.create_timer(min(0.1, self.step_timeout / 4, self.resend_period / 2),
                                                 self.on_timeout_check, clock=self._steady)
        self.announce(self.runner.current_episode())
        self.publish_state()

    # -- publishing --------------------------------------------------------------------------
    def announce(self, start: EpisodeStart) -> None:
        """Publish an episode's start and obstacles (valid for its slot of sim time)."""
        self.map_pub.publish(convert.obstacle_markers(
            start.obstacles, start.start_ns, self.frame_id, self.scenario.half_width,
            self.scenario.half_height, lifetime_ns=start.stride_ns))
        self.episode_pub.publish(String(data=convert.episode_start_event(
            start.index, start.seed, start.start_ns, self.scenario.name, start.obstacles,
            start.stride_ns)))

    def publish_state(self) -> None:
        stamp = self.runner.stamp_ns
        if self.clock_pub is not None:
            self.clock_pub.publish(convert.clock_message(stamp, self._clock_msg))
        pose, vel = self.runner.pose, self.runner.velocity
        for i, pub in enumerate(self.odom_pubs):
            qz, qw = convert.yaw_to_quaternion(float(pose[i, 2]))
            data = self._odom_writers[i].encode(stamp, float(pose[i, 0]), float(pose[i, 1]), qz, qw,
                                                float(vel[i, 0]), float(vel[i, 1]))
            pub.publish(data)
            self._published_at[i] = time.perf_counter()
            self._last_state[i] = data
        self._resent_at = self._published_at[-1]
        self._latency_done = [False] * len(self.odom_pubs)

    def resend_state(self) -> None:
        """Lockstep: publish the current state again (same stamp and bytes). Nodes treat a
        state they answered as a request to repeat their answer, so a message lost to a
        DDS discovery race costs ``resend_period``, not a miss."""
        if self.clock_pub is not None:
            self.clock_pub.publish(convert.clock_message(self.runner.stamp_ns, self._clock_msg))
        for pub, data in zip(self.odom_pubs, self._last_state, strict=True):
            pub.publish(data)
        self._resent_at = time.perf_counter()
        self.timing.count("resent_states")

    def episode_ended(self, end: EpisodeEnd) -> None:
        record_json = end.record.to_json()
        self.episode_pub.publish(String(data=convert.episode_end_event(
            end.index, end.seed, end.end_ns, record_json, end.final_pose, end.final_velocity, end.missed)))
        if self._records is not None:
            self._records.write(record_json + "\n")
            self._records.flush()
        total = self.runner.episodes
        if not total or total <= 20 or (end.index + 1) % max(1, total // 10) == 0:
            outcome = (f"captured at {end.record.capture_time_s:.2f} s" if end.record.captured
                       else f"not captured in {end.record.duration_s:.2f} s")
            self.get_logger().info(f"episode {end.index + 1}{'/' + str(total) if total else ''} "
                                   f"(seed {end.seed}): {outcome}")

    # -- inputs ------------------------------------------------------------------------------
    def on_command(self, robot: int, data: bytes) -> None:
        received = time.perf_counter()
        stamp, v, omega = convert.decode_twist(data)
        if self.runner.offer_command(robot, stamp, v, omega) and not self._latency_done[robot]:
            self._latency_done[robot] = True
            self.latency[robot].add((received - self._published_at[robot]) * 1e3)
        if self._running and self.mode == "lockstep" and self.runner.ready():
            self.advance(hold_missing=True)

    def on_status(self, robot: int, data: bytes) -> None:
        stamp, intervened, size, backup = read_filter_status(data)
        self.runner.offer_status(robot, stamp, intervened, size, backup)
        if self._running and self.mode == "lockstep" and self.runner.ready():
            self.advance(hold_missing=True)

    # -- stepping ----------------------------------------------------------------------------
    def advance(self, hold_missing: bool) -> None:
        t0 = self.timing.start()
        stamp = self.runner.stamp_ns
        outcome = self.runner.step(hold_missing)
        for i in outcome.missed:
            self.latency[i].stats.misses += 1
        if outcome.missed:
            self.get_logger().warning(
                f"step {self.runner.steps_total} (stamp {stamp}): no command in time from "
                f"{[self.scenario.robots[i].name for i in outcome.missed]}", throttle_duration_sec=1.0)
        if outcome.ended is not None:
            self.episode_ended(outcome.ended)
        if self.runner.finished or (
                self.duration and self.runner.steps_total * self.scenario.dt >= self.duration - 1e-9):
            self.finish()
            return
        if outcome.started is not None:
            self.announce(outcome.started)
            if self.mode == "realtime":  # the first state goes out at its own tick
                self._unpublished = True
                self.timing.finish(t0)
                return
        self.publish_state()
        self.timing.finish(t0)

    def on_timeout_check(self) -> None:
        if not self._running:
            return
        now = time.perf_counter()
        if now - max(self._published_at) < self.step_timeout:
            if now - self._resent_at >= self.resend_period:
                self.resend_state()
            return
        waiting = [self.scenario.robots[i].name for i in self.runner.waiting_for()]
        self.get_logger().warning(f"lockstep: no command/status for stamp {self.runner.stamp_ns} from "
                                  f"{waiting} within {self.step_timeout} s; they hold still (miss)")
        self.advance(hold_missing=True)

    def on_tick(self) -> None:
        if not self._running:
            return
        if self._unpublished:
            self._unpublished = False
            self.publish_state()
            return
        due = self.runner.realtime_ticks_due(self._system.now().nanoseconds)
        if due > 1:
            self.timing.compute.stats.misses += due - 1
            self.timing.count("late_ticks", due - 1)
        for _ in range(min(due, 10)):
            self.advance(hold_missing=False)
            if not self._running or self._unpublished:
                return

    def finish(self) -> None:
        self._running = False
        self._finished_at = time.perf_counter()
        self.episode_pub.publish(String(data='{"event": "finished"}'))
        # The last episode's end event must reach its subscribers before the process exits.
        self.episode_pub.wait_for_all_acked(Duration(seconds=2.0))
        what = (f"all {self.runner.episodes} episodes" if self.runner.finished
                else f"{self.duration:g} s of sim time ({self.runner.episode_index} episodes)")
        self.get_logger().info(f"{what} done ({self.runner.steps_total} steps)")
        if not self.done.done():
            self.done.set_result(0)

    def shutdown(self) -> None:
        if self._records is not None:
            self._records.close()
        if self.timing_file:
            end = self._finished_at or time.perf_counter()
            wall = end - self._started_at if self._started_at else 0.0
            self.timing.write(self.timing_file, {
                "mode": self.mode, "steps": self.runner.steps_total, "wall_time_s": wall,
                "steps_per_s": self.runner.steps_total / wall if wall > 0 else None,
                "episodes_done": self.runner.episode_index,
                "missed_commands": {r.name: int(m) for r, m in
                                    zip(self.scenario.robots, self.runner.missed_total, strict=True)},
            })


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, args)
