"""``pe_policy_node``: one robot's policy as a ROS 2 node (one per robot, namespaced).

Subscribes
  ``/episode``            std_msgs/String JSON (episode seed and first stamp: the random
                          policy's stream), created first so it is handled before states
  ``/obstacles``          visualization_msgs/MarkerArray (latched)
  ``/<robot>/odom``       nav_msgs/Odometry of every robot of the scenario
Publishes
  ``cmd_vel_nominal``     geometry_msgs/TwistStamped, stamp = the state it answers
  ``cbf_gains``           std_msgs/Float64MultiArray, only for policies that output
                          class-K gains (BarrierNet-style; see below)
  ``~/compute_time_ms``   std_msgs/Float64 per answered state, and ``/diagnostics`` at 1 Hz

A state of stamp s is answered once the odometry of stamp s of every robot, an
episode and an obstacle set valid at s are known; the callback then fills a
B = 1 :class:`~pe_sim.scripted.WorldView` (exact poses, see
:mod:`pe_ros.convert`), calls ``policy.act`` -- the same object the headless
evaluation calls -- and publishes. When it falls behind (real time) only the
newest complete state is answered.

BarrierNet hook: a policy object with a ``gains(view) -> (B, G)`` method (G =
obstacles + 4 walls + teammates, the filter's constraint order) gets its gains
published on ``cbf_gains`` just before each command; the filter node uses them
when its ``use_policy_gains`` parameter is true. No policy provides them yet.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String
from visualization_msgs.msg import MarkerArray

from pe_policy.policy import DEFAULT_SOURCES, load_policy
from pe_ros import cdr, convert, qos
from pe_ros.diagnostics import NodeTiming
from pe_ros.params import ParameterError, declare, robot_index
from pe_ros.runtime import EXECUTORS, run_node
from pe_ros.state import Episode, EpisodeBook, StateTable, step_index
from pe_sim.batch import BatchSim
from pe_sim.scenario import load_scenario
from pe_sim.scripted import WorldView


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__("policy")
        scenario_name = declare(self, "scenario", "seed_1v1_2obs",
                                "scenario name (config/scenarios/<name>.yaml) or YAML path",
                                check=lambda v: None if v else "must not be empty")
        robot = declare(self, "robot", "", "robot this node drives ('' : the last part of the "
                        "node's namespace, e.g. /pursuer -> pursuer)")
        source = declare(self, "policy", "", "'scripted:<kind>' or a path to an exported .onnx "
                         "policy ('' : the role's default)")
        self.use_episode_topic = declare(
            self, "use_episode_topic", True, "wait for /episode to know each state's episode seed "
            "and step (needed by the random policy and by lockstep reproducibility); false: seed 0, "
            "steps counted from the first state (a real robot)")
        self.timing_file = declare(self, "timing_file", "", "timing summary (JSON) written at exit")
        self.executor_kind = declare(self, "executor", "events", "rclpy executor", choices=EXECUTORS)

        fqn = self.get_fully_qualified_name()
        self.scenario = load_scenario(scenario_name)
        self.robot_index = robot_index(self, self.scenario, robot)
        spec = self.scenario.robots[self.robot_index]
        source = source or DEFAULT_SOURCES[spec.role]
        try:
            self.policy = load_policy(source, self.scenario, self.robot_index)
        except (ValueError, FileNotFoundError, OSError) as exc:
            raise ParameterError(f"{fqn}: parameter 'policy' = {source!r}: {exc}") from None
        self.dt_ns = convert.seconds_to_ns(self.scenario.dt)
        n = self.scenario.num_robots
        m = max(self.scenario.obstacles.max_count, 1)
        self.view = WorldView(pose=np.zeros((1, n, 3)), velocity=np.zeros((1, n, 2)),
                              obstacles=np.zeros((1, m, 3)), n_obstacles=np.zeros(1, dtype=np.int64),
                              step_count=np.zeros(1, dtype=np.int64),
                              episode_seed=np.zeros(1, dtype=np.int64))
        self.has_gains = callable(getattr(self.policy, "gains", None))
        # Warm up (numba compilation, onnxruntime allocations) before joining the graph, so
        # the sim, which waits for our subscriptions, never waits for a compiler.
        warm = BatchSim(self.scenario, 1, seed=0)
        self.policy.act(WorldView.of(warm))

        self.states = StateTable(n)
        self.book = EpisodeBook()
        self.answered = -1
        self._last_answer: bytes | None = None
        self._first_stamp: int | None = None
        # Episode and obstacles first: when their message and a state are ready together,
        # the executor serves the one created first.
        self._inputs = [self.create_subscription(MarkerArray, "/obstacles", self.on_obstacles, qos.MAP)]
        if self.use_episode_topic:
            self._inputs.insert(0, self.create_subscription(String, "/episode", self.on_episode,
                                                            qos.EPISODE))
        self.cmd_pub = None   # advertised once every input is connected (see check_inputs)
        self.gains_pub = None
        self._cmd_writer = cdr.TwistWriter(f"{spec.name}/base_link")
        self.timing = NodeTiming(self)
        for i, r in enumerate(self.scenario.robots):  # read serialized (pe_ros.cdr)
            self._inputs.append(self.create_subscription(
                Odometry, f"/{r.name}/odom", lambda data, i=i: self.on_odom(i, data), qos.STATE, raw=True))
        self._inputs_timer = self.create_timer(0.05, self.check_inputs,
                                               clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.done = None
        self.get_logger().info(f"robot {spec.name} ({spec.role}) runs {self.policy.name}")

    def check_inputs(self) -> None:
        """Advertise the command topic once every input topic has a publisher (as seen by
        this node's readers). Whoever waits for our commands (the filter, and through it
        the sim) then knows this node receives what it needs."""
        if any(sub.get_publisher_count() < 1 for sub in self._inputs):
            return
        self._inputs_timer.cancel()
        self.cmd_pub = self.create_publisher(TwistStamped, "cmd_vel_nominal", qos.COMMAND)
        if self.has_gains:
            self.gains_pub = self.create_publisher(Float64MultiArray, "cbf_gains", qos.COMMAND)
        self.get_logger().info("inputs connected; publishing commands")
        self.answer_newest()

    # -- callbacks ---------------------------------------------------------------------------
    def on_episode(self, msg: String) -> None:
        event = convert.parse_event(msg.data)
        if event.get("event") == "start":
            self.book.add_episode(Episode(event["index"], event["seed"], event["start_ns"],
                                          event.get("stride_ns", 0)))
            self.answer_newest()

    def on_obstacles(self, msg: MarkerArray) -> None:
        markers = convert.read_obstacle_markers(msg)
        self.book.add_obstacles(markers.stamp, markers.obstacles, markers.lifetime_ns)
        self.answer_newest()

    def on_odom(self, robot: int, data: bytes) -> None:
        t0 = self.timing.start()
        stamp, x, y, theta, v, omega = convert.decode_odometry(data)
        if stamp == self.answered and robot == self.robot_index and self._last_answer is not None:
            self.cmd_pub.publish(self._last_answer)   # the sim resent a state: repeat the answer
            return
        if stamp > self.answered:
            self.states.put(robot, stamp, (x, y, theta, v, omega))
            if self.states.has_all(stamp, range(self.states.n_robots)):
                self.answer(stamp, t0)
                return
        self.timing.carry(t0)

    def answer_newest(self) -> None:
        for stamp in reversed(self.states.stamps()):
            if stamp > self.answered and self.states.has_all(stamp, range(self.states.n_robots)):
                self.answer(stamp, self.timing.start())
                return

    # -- the step ----------------------------------------------------------------------------
    def answer(self, stamp: int, t0: tuple[float, float]) -> None:
        """Run the policy on the state of ``stamp`` (all robots' odometry present) if its
        episode and obstacles are known; publish the command."""
        obstacles = self.book.obstacles_at(stamp)
        if obstacles is None or self.cmd_pub is None:
            self.timing.carry(t0)
            return
        if self.use_episode_topic:
            episode = self.book.episode_at(stamp)
            if episode is None:
                self.timing.carry(t0)
                return
        else:
            if self._first_stamp is None:
                self._first_stamp = stamp
            episode = Episode(0, 0, self._first_stamp)
        view = self.view
        for i in range(self.states.n_robots):
            x, y, theta, v, omega = self.states.get(i, stamp)
            view.pose[0, i, 0] = x
            view.pose[0, i, 1] = y
            view.pose[0, i, 2] = theta
            view.velocity[0, i, 0] = v
            view.velocity[0, i, 1] = omega
        k = obstacles.shape[0]
        if k > view.obstacles.shape[1]:
            view.obstacles = np.zeros((1, k, 3))
        view.obstacles[0, :k] = obstacles
        view.obstacles[0, k:] = 0.0
        view.n_obstacles[0] = k
        view.step_count[0] = step_index(stamp, episode.start_ns, self.dt_ns)
        view.episode_seed[0] = episode.seed
        if self.gains_pub is not None:
            # The policy's gains cover every obstacle slot of the view (absent ones
            # padded); the filter node orders its constraints over present obstacles.
            padded = np.asarray(self.policy.gains(view), dtype=np.float64)[0]
            gains = np.concatenate([padded[:k], padded[view.obstacles.shape[1]:]])
            self.gains_pub.publish(Float64MultiArray(
                layout=_gains_layout(stamp, gains.size), data=gains.tolist()))
        u = self.policy.act(view)[0]
        self._last_answer = self._cmd_writer.encode(stamp, float(u[0]), float(u[1]))
        self.cmd_pub.publish(self._last_answer)
        self.answered = stamp
        self.states.discard_through(stamp)
        self.timing.finish(t0)

    def shutdown(self) -> None:
        if self.timing_file:
            self.timing.write(self.timing_file, {"policy": self.policy.name})


def _gains_layout(stamp: int, size: int):
    from std_msgs.msg import MultiArrayLayout

    return MultiArrayLayout(dim=[MultiArrayDimension(label=f"gains@{stamp}", size=size, stride=size)])


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyNode, args)
