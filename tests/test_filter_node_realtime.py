"""The safety-filter node on a robot's message timing, driven by a separate rclpy client.

This test is the robot and its navigation stack, as a third party would write
them: a base that integrates every command it receives on the exact arc and
publishes odometry at 50 Hz (best effort, ``odom`` frame ``world``), a
controller that publishes "now"-stamped TwistStamped commands at 20 Hz straight
on, into an obstacle 10 cm away (30 degrees left of the heading), and a map from
a volatile publisher (SPHERE markers, empty namespace). The node runs in its own
process with its shipped defaults (``pairing: latest``) and a 2 cm margin (the
odometry's age when a command is applied, at 1 m/s). Through each phase the test checks what the node
published and when:

1. zero-stamped commands: each answered with its own value; one beyond the
   robot's bounds is clipped and reported as such;
2. normal flow at the obstacle: every command answered; the body never overlaps;
3. odometry stops: every command still answered at once, by a stop
   (``stale_state``) as soon as the state is older than ``max_state_age``;
   never a moving command on a stale state;
4. one odometry message stamped 5 s ahead: stops (``future_state``) until the
   next ordinary message;
5. a plain ``Twist`` publisher on the command topic: reported;
6. ``use_sim_time`` switched on with no ``/clock``: stops (``no_clock``).

The base holds a command for at most one filter step (0.05 s) and then stops, as
a base controller's command timeout does.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import Twist, TwistStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_probe import Probe, world_odometry  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from pe_bringup.graph import NodeSpec  # noqa: E402
from pe_bringup.launcher import Launcher  # noqa: E402
from pe_ros import convert  # noqa: E402
from pe_safety_filter.config import filter_config_path  # noqa: E402
from pe_sim.dynamics import arc_step  # noqa: E402
from pe_sim.scenario import load_scenario  # noqa: E402

SCENARIO = "seed_1v1_2obs"
OBSTACLE = (1.0, 0.0, 0.5)              # cx, cy, r (m)
BASE_RATE_HZ = 50.0
COMMAND_RATE_HZ = 20.0
HOLD_S = 0.05                           # the base's command timeout: one filter step
MAX_STATE_AGE_S = 0.25                  # the shipped filter config's


class Base:
    """The robot: integrates the latest command (held at most HOLD_S) on the exact arc and
    publishes odometry; records the body's clearance from the obstacle."""

    def __init__(self, probe: Probe, radius: float, start: tuple[float, float, float]) -> None:
        self.probe = probe
        self.radius = radius
        self.pose = list(start)
        self.command = (0.0, 0.0)
        self.command_at = -math.inf
        self.min_clearance = math.inf
        self.publishing = True
        self.future_once = False
        self.pause_until = -math.inf
        self.pub = probe.node.create_publisher(
            Odometry, "/pursuer/odom", QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))

    def on_command(self, v: float, omega: float) -> None:
        self.command, self.command_at = (v, omega), time.monotonic()

    def step(self, dt: float) -> None:
        v, omega = self.command if time.monotonic() - self.command_at <= HOLD_S else (0.0, 0.0)
        for _ in range(10):   # sub-steps: the clearance along the arc, not only at its end
            self.pose = list(arc_step(*self.pose, v, omega, dt / 10))
            gap = math.hypot(self.pose[0] - OBSTACLE[0], self.pose[1] - OBSTACLE[1])
            self.min_clearance = min(self.min_clearance, gap - OBSTACLE[2] - self.radius)
        if self.publishing and time.monotonic() >= self.pause_until:
            now = self.probe.node.get_clock().now().nanoseconds
            stamp = now + 5_000_000_000 if self.future_once else now
            if self.future_once:   # then nothing for 0.2 s: commands meet only this state
                self.future_once, self.pause_until = False, time.monotonic() + 0.2
            self.pub.publish(world_odometry(stamp, *self.pose, v, omega))


def _sphere_map() -> MarkerArray:
    m = Marker(ns="", id=7, type=Marker.SPHERE, action=Marker.ADD)
    m.header.frame_id = "world"
    m.pose.position.x, m.pose.position.y = OBSTACLE[0], OBSTACLE[1]
    m.pose.orientation.w = 1.0
    m.scale.x = m.scale.y = m.scale.z = 2 * OBSTACLE[2]
    return MarkerArray(markers=[m])


def test_filter_node_answers_a_robots_message_timing_safely(tmp_path, ros_domain):
    scenario = load_scenario(SCENARIO)
    robot = scenario.robots[0]
    # 10 cm from the obstacle, which is 30 degrees left of the heading: straight on hits it.
    gap = OBSTACLE[2] + robot.radius + 0.10
    near = (OBSTACLE[0] - gap * math.cos(math.pi / 6), OBSTACLE[1] - gap * math.sin(math.pi / 6), 0.0)
    probe = Probe(ros_domain)
    node = probe.node
    base = Base(probe, robot.radius, (-3.0, 0.0, math.pi))             # far from everything
    answers: list[tuple[float, float, float]] = []      # (wall time, v, omega)
    statuses: list[tuple[float, dict, str]] = []         # (wall time, values, message)

    def on_cmd(msg: TwistStamped) -> None:
        with probe.lock:
            answers.append((time.monotonic(), msg.twist.linear.x, msg.twist.angular.z))
            base.on_command(msg.twist.linear.x, msg.twist.angular.z)

    def on_status(msg: DiagnosticArray) -> None:
        s = msg.status[0]
        with probe.lock:
            statuses.append((time.monotonic(), {kv.key: kv.value for kv in s.values}, s.message))

    node.create_subscription(TwistStamped, "/pursuer/cmd_vel", on_cmd, 10)
    node.create_subscription(DiagnosticArray, "/pursuer/filter_status", on_status, 10)
    nominal = node.create_publisher(TwistStamped, "/pursuer/cmd_vel_nominal", 10)
    map_pub = node.create_publisher(MarkerArray, "/obstacles", 10)   # volatile, default QoS
    clock = node.get_clock()
    sent: list[tuple[float, int]] = []                          # (wall time, stamp) of each command
    command = {"v": 0.3, "omega": 0.5, "zero_stamp": True}
    stop = threading.Event()

    def drive() -> None:
        next_base = next_cmd = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_base:
                with probe.lock:
                    base.step(1.0 / BASE_RATE_HZ)
                next_base += 1.0 / BASE_RATE_HZ
            if now >= next_cmd:
                stamp = 0 if command["zero_stamp"] else clock.now().nanoseconds
                nominal.publish(convert.fill_twist(TwistStamped(), stamp, command["v"], command["omega"]))
                with probe.lock:
                    sent.append((now, stamp))
                map_pub.publish(_sphere_map())
                next_cmd += 1.0 / COMMAND_RATE_HZ
            time.sleep(0.002)

    # The robot's odometry is up to one period (20 ms) plus the transport old when a command
    # is applied: the filter's margin covers v_max times that (docs/ros_graph.md).
    config = yaml.safe_load(filter_config_path("vcp_cbf").read_text())
    config["exact_check"]["margin"] = 0.02
    (tmp_path / "filter.yaml").write_text(yaml.safe_dump(config))
    spec = NodeSpec("pe_ros", "pe_safety_filter_node", "safety_filter", "/pursuer",
                    parameters=(("scenario", SCENARIO), ("robot", "pursuer"),
                                ("filter_config", str(tmp_path / "filter.yaml"))))
    sink = (tmp_path / "node.log").open("w")
    launcher = Launcher([spec], {"ROS_DOMAIN_ID": str(ros_domain), **_env()}, output=sink)
    driver = threading.Thread(target=drive, daemon=True)
    try:
        launcher.start()
        probe.start()
        probe.wait_until(lambda: node.count_subscribers("/pursuer/cmd_vel_nominal") >= 1, 60.0,
                         "the filter node")
        driver.start()

        def phase(seconds: float, label: str = "") -> tuple[list, list, list]:
            with probe.lock:
                a0, s0, c0 = len(answers), len(statuses), len(sent)
            start = time.monotonic()
            time.sleep(seconds)
            with probe.lock:
                got, status, cmds = answers[a0:], statuses[s0:], sent[c0:]
            if label:   # what the node published, and when (pytest -s shows it)
                moving = [t - start for t, v, w in got if (v, w) != (0.0, 0.0)]
                reasons = sorted({v.get("backup_reason") for _, v, _ in status if v.get("backup_reason")})
                print(f"\n{label}: {len(cmds)} commands, {len(got)} answers, {len(moving)} moving "
                      f"(last at {max(moving, default=math.nan):.2f} s), stop reasons {reasons}, "
                      f"longest silence {np.diff([start, *(t for t, _, _ in got)]).max():.3f} s")
            return got, status, cmds

        # 1. Zero-stamped commands, far from everything: each answered with its own value.
        probe.wait_until(lambda: len(answers) >= 5, 20.0, "the first answers")
        for omega in (0.5, -0.25):
            command.update(v=0.3, omega=omega)
            phase(0.2)
            got, _, _ = phase(0.5, f"zero stamps, omega {omega}")
            assert got and all((v, w) == (0.3, omega) for _, v, w in got), got
        # ... and one beyond the robot's bounds: clipped, and reported as clipped.
        command.update(v=2.0, omega=0.0)
        phase(0.2)
        got, status, _ = phase(0.4, "2 m/s nominal")
        assert got and all((v, w) == (robot.v_max, 0.0) for _, v, w in got), got
        assert all(v["clipped"] == "True" for _, v, _ in status if v), status
        # 2. Normal flow, now-stamped, straight on into an obstacle 10 cm away.
        with probe.lock:
            base.pose = list(near)
        command.update(v=robot.v_max, omega=0.0, zero_stamp=False)
        got, status, cmds = phase(1.0, "now stamps, straight on into an obstacle 10 cm away")
        assert len(got) >= len(cmds) - 5, (len(got), len(cmds))   # answered (late ones: next phase)
        assert any(v > 0.05 for _, v, _ in got)                          # it moves, steered
        assert any(v["intervened"] == "True" for _, v, _ in status if v)
        # 3. Odometry stops: stops as soon as the state is older than max_state_age, every
        #    command still answered, never a moving command on a stale state.
        command.update(v=0.0, omega=1.0)      # turning in place: safe, passes while the state is fresh
        got, _, _ = phase(0.4, "turning in place")
        assert got and (0.0, 1.0) == got[-1][1:], got
        base.publishing = False
        stopped_at = time.monotonic()
        got, status, cmds = phase(1.0, "odometry stopped")
        base.publishing = True
        assert len(got) >= len(cmds) - 5, (len(got), len(cmds))
        for _, values, _ in status:
            if values and float(values["state_age_ms"]) > MAX_STATE_AGE_S * 1e3:
                assert values["backup"] == "True", values
        late = [(v, w) for t, v, w in got if t - stopped_at > MAX_STATE_AGE_S + 1.0 / COMMAND_RATE_HZ]
        assert late and all(c == (0.0, 0.0) for c in late), late
        assert any(t - stopped_at < MAX_STATE_AGE_S - 0.05 and (v, w) == (0.0, 1.0) for t, v, w in got)
        assert {v.get("backup_reason") for t, v, _ in status
                if t - stopped_at > MAX_STATE_AGE_S + 0.1} == {"stale_state"}
        assert np.diff([t for t, _, _ in got]).max() < 0.2                # never silent
        phase(0.5)
        # 4. One odometry message stamped 5 s ahead: refused until the next ordinary one.
        with probe.lock:
            base.future_once = True
        got, status, _ = phase(1.0, "one odometry 5 s ahead")
        reasons = [v.get("backup_reason") for _, v, _ in status if v]
        assert "future_state" in reasons, reasons
        assert reasons[-1] != "future_state", reasons
        # 5. A plain Twist publisher on the command topic is reported.
        other = Probe(ros_domain)          # another process's participant (one topic, one type)
        try:
            other.node.create_publisher(Twist, "/pursuer/cmd_vel_nominal", 10)
            probe.wait_until(lambda: any("geometry_msgs/msg/Twist on" in m for _, _, m in statuses),
                             10.0, "the wrong-type report")
        finally:
            other.close()
        # 6. use_sim_time on at run time, no /clock: stops.
        from rclpy.parameter import Parameter
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(node, "/pursuer/safety_filter")
        assert client.wait_for_services(timeout_sec=10.0)
        future = client.set_parameters([Parameter("use_sim_time", value=True)])
        probe.wait_until(future.done, 10.0, "use_sim_time")
        command.update(v=robot.v_max, omega=0.0, zero_stamp=False)
        phase(0.3)
        got, status, _ = phase(0.6, "use_sim_time without /clock")
        assert got and all(c[1:] == (0.0, 0.0) for c in got)
        assert {v.get("backup_reason") for _, v, _ in status if v} == {"no_clock"}
    finally:
        stop.set()
        driver.join(timeout=2.0) if driver.is_alive() else None
        launcher.stop()
        sink.close()
        probe.close()
    assert len(answers) >= len(sent) - 3, (len(answers), len(sent))     # every command answered
    print(f"\nbase: min clearance from the obstacle {base.min_clearance * 1e3:.2f} mm over "
          f"{len(answers)} answered commands")
    assert base.min_clearance >= 0.0


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "ROS_DOMAIN_ID"}
