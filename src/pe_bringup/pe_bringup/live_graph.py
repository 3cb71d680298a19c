"""A running ROS 2 graph, live in Foxglove: an rclpy node that listens to the graph's
topics and serves them on a :class:`~pe_bringup.live.LiveView` (``pe-live --graph``).

It subscribes, with the graph's QoS (:mod:`pe_ros.qos`), to ``/<robot>/odom`` of
every robot of the scenario, ``/<robot>/filter_status``, ``/obstacles`` and
``/episode``. When every robot's odometry of one stamp has arrived it sends the
scene of that stamp (robots at their poses, a red ring on robots whose last
command the filter corrected), once: a state the sim publishes again (lockstep
resends a state whose commands are late) adds no scene. Episode events are
forwarded as they come. It only
listens: in lockstep the sim does not wait for it (it may miss the first states of
the first episode if it joins late).
"""

from __future__ import annotations

import json
import queue
import threading
from collections import deque
from typing import Any

import numpy as np

from pe_bringup.live import LiveView, SceneLayout, scene_of_state
from pe_sim.scenario import Scenario

MAX_INCOMPLETE = 200


class GraphScene:
    """Assembles scenes from the graph's messages (no ROS here: fed by :class:`GraphBridge`)."""

    def __init__(self, scenario: Scenario, view: LiveView) -> None:
        self.layout = SceneLayout.of_scenario(scenario)
        self.view = view
        n = scenario.num_robots
        self.obstacles = np.zeros((0, 3))
        self.corrected = [False] * n
        self._poses: dict[int, dict[int, tuple[float, float, float]]] = {}
        self._sent_order: deque[int] = deque(maxlen=MAX_INCOMPLETE)
        self._sent: set[int] = set()
        self.scenes_sent = 0
        self.lock = threading.Lock()
        # Complete states wait here for the sender thread, so the ROS callbacks stay cheap
        # (in lockstep the graph runs at ~1000 steps/s and keeps only 10 samples per topic).
        self._pending: queue.Queue = queue.Queue()
        self._sender = threading.Thread(target=self._send_loop, daemon=True)
        self._sender.start()

    def on_odometry(self, robot: int, stamp: int, x: float, y: float, theta: float) -> None:
        with self.lock:
            if stamp in self._sent:
                return
            poses = self._poses.setdefault(stamp, {})
            poses[robot] = (x, y, theta)
            if len(poses) < len(self.layout.names):
                return
            del self._poses[stamp]
            self._remember_sent(stamp)
            # Topics are not ordered with each other: keep incomplete stamps a while, not forever.
            for old in sorted(self._poses)[:-MAX_INCOMPLETE]:
                del self._poses[old]
            pose = np.array([poses[i] for i in range(len(self.layout.names))])
            self._pending.put((stamp, self.obstacles, pose, list(self.corrected)))

    def _remember_sent(self, stamp: int) -> None:
        if len(self._sent_order) == self._sent_order.maxlen:
            self._sent.discard(self._sent_order[0])
        self._sent_order.append(stamp)
        self._sent.add(stamp)

    def _send_loop(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            stamp, obstacles, pose, corrected = item
            scene = scene_of_state(self.layout, stamp, obstacles, pose, corrected)
            self.view.scene.log(scene, log_time=stamp)
            self.scenes_sent += 1

    def flush(self, timeout: float = 10.0) -> None:
        """Send every pending scene, then stop the sender thread."""
        self._pending.put(None)
        self._sender.join(timeout)

    def on_filter_status(self, robot: int, values: dict[str, str]) -> None:
        with self.lock:
            self.corrected[robot] = values.get("intervened") == "True"

    def on_obstacles(self, obstacles: np.ndarray) -> None:
        with self.lock:
            self.obstacles = np.asarray(obstacles, dtype=float).reshape(-1, 3)

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "start" and "obstacles" in event:
            self.on_obstacles(np.array(event["obstacles"], dtype=float))
        self.view.events.log(json.dumps(event).encode())


class GraphBridge:
    """The rclpy node (in its own context on ``domain_id``) feeding a :class:`GraphScene`,
    spun in a background thread until :meth:`close`."""

    def __init__(self, scenario: Scenario, view: LiveView, domain_id: int) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry
        from rclpy.executors import SingleThreadedExecutor
        from std_msgs.msg import String
        from visualization_msgs.msg import MarkerArray

        from pe_ros import convert, qos

        self.scene = GraphScene(scenario, view)
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("foxglove_live_view", context=self.context)
        for i, robot in enumerate(scenario.robots):
            self.node.create_subscription(
                Odometry, f"/{robot.name}/odom",
                lambda m, i=i: self.scene.on_odometry(i, *convert.read_odometry(m)[:4]), qos.STATE)
            self.node.create_subscription(
                DiagnosticArray, f"/{robot.name}/filter_status",
                lambda m, i=i: self.scene.on_filter_status(
                    i, {kv.key: kv.value for kv in m.status[0].values} if m.status else {}), qos.STATUS)
        self.node.create_subscription(
            MarkerArray, "/obstacles",
            lambda m: self.scene.on_obstacles(convert.read_obstacle_markers(m).obstacles), qos.MAP)
        self.node.create_subscription(String, "/episode",
                                      lambda m: self.scene.on_event(convert.parse_event(m.data)), qos.EPISODE)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception as error:           # one bad message must not end the view
                self.errors.append(repr(error))

    def close(self) -> None:
        import rclpy

        self._stop.set()
        self._thread.join(timeout=5.0)
        self.scene.flush()
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
