"""A live view of an episode in Foxglove, through ``foxglove-sdk``'s WebSocket server
(no ROS install needed): ``pe-live``, then in Foxglove "Open connection" ->
``ws://localhost:8765``.

Channels: ``/scene`` (``foxglove.SceneUpdate``, every step: the arena outline, the
obstacles, each robot's body, heading and, for pursuers, capture radius, and a red
ring on robots whose command the safety filter corrected in that step; frame
``world``, metres) and ``/episode`` (JSON events: start, violations, end; as in the
recordings). The episode is any episode ``pe-play`` takes (a recording, a record of
``episodes.jsonl`` replayed from its seed, or one simulated with any policies),
played at ``--speed`` x real time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pe_bringup.recording import COLOURS, episode_events, step_ns
from pe_sim.cli import console_main
from pe_sim.episode_log import EpisodeLog

SCENE_TOPIC = "/scene"
EVENTS_TOPIC = "/episode"
FRAME = "world"


def _pose(x: float, y: float, theta: float = 0.0, z: float = 0.0):
    from foxglove.messages import Pose, Quaternion, Vector3

    return Pose(position=Vector3(x=float(x), y=float(y), z=float(z)),
                orientation=Quaternion(x=0.0, y=0.0, z=math.sin(0.5 * theta), w=math.cos(0.5 * theta)))


def _cylinder(x: float, y: float, diameter: float, height: float, rgba: Sequence[float], z: float = 0.0):
    from foxglove.messages import Color, CylinderPrimitive, Vector3

    return CylinderPrimitive(pose=_pose(x, y, 0.0, z), size=Vector3(x=diameter, y=diameter, z=height),
                             bottom_scale=1.0, top_scale=1.0, color=Color(r=rgba[0], g=rgba[1], b=rgba[2],
                                                                          a=rgba[3]))


@dataclass(frozen=True)
class SceneLayout:
    """What does not change during an episode: arena (m), robots and capture radius."""

    arena: tuple[float, float]
    names: tuple[str, ...]
    roles: tuple[str, ...]
    radii: tuple[float, ...]
    capture_radius: float

    @classmethod
    def of_log(cls, log: EpisodeLog) -> SceneLayout:
        return cls(tuple(log.arena), tuple(log.robot_names), tuple(log.robot_roles), tuple(log.robot_radii),
                   log.capture_radius)

    @classmethod
    def of_scenario(cls, scenario) -> SceneLayout:
        return cls((scenario.arena_width, scenario.arena_height), tuple(r.name for r in scenario.robots),
                   tuple(r.role for r in scenario.robots), tuple(r.radius for r in scenario.robots),
                   scenario.capture_radius)


def scene_update(log: EpisodeLog, k: int) -> Any:
    """The ``foxglove.SceneUpdate`` of step row ``k`` of ``log`` (k = 0: the start)."""
    corrected = [log.intervened is not None and k > 0 and bool(log.intervened[k - 1, i])
                 for i in range(len(log.robot_names))]
    return scene_of_state(SceneLayout.of_log(log), step_ns(log, k), log.obstacles, log.pose[k], corrected)


def scene_of_state(layout: SceneLayout, stamp: int, obstacles: np.ndarray, poses: np.ndarray,
                   corrected: Sequence[bool]) -> Any:
    """A ``foxglove.SceneUpdate``: arena, ``obstacles`` (M, 3: x, y, r in m), each robot at
    ``poses`` (N, 3: x, y, theta), rings on the ``corrected`` ones; stamped ``stamp`` ns."""
    from foxglove.messages import (
        ArrowPrimitive,
        Color,
        LinePrimitive,
        LinePrimitiveLineType,
        Point3,
        SceneEntity,
        SceneUpdate,
        Timestamp,
    )

    when = Timestamp(sec=stamp // 1_000_000_000, nsec=stamp % 1_000_000_000)
    hw, hh = 0.5 * layout.arena[0], 0.5 * layout.arena[1]
    arena = LinePrimitive(type=LinePrimitiveLineType.LineStrip, pose=_pose(0, 0), thickness=0.05,
                          scale_invariant=False, color=Color(r=0.0, g=0.0, b=0.0, a=1.0),
                          points=[Point3(x=x, y=y, z=0.0) for x, y in
                                  ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh), (-hw, -hh))])
    entities = [
        SceneEntity(timestamp=when, frame_id=FRAME, id="arena", lines=[arena]),
        SceneEntity(timestamp=when, frame_id=FRAME, id="obstacles",
                    cylinders=[_cylinder(x, y, 2 * r, 0.5, (0.5, 0.5, 0.5, 1.0), 0.25)
                               for x, y, r in obstacles]),
    ]
    robots = zip(layout.names, layout.roles, layout.radii, strict=True)
    for i, (name, role, radius) in enumerate(robots):
        x, y, th = poses[i]
        r, g, b = COLOURS.get(role, (0.3, 0.3, 0.3))
        cylinders = [_cylinder(x, y, 2 * radius, 0.2, (r, g, b, 1.0), 0.1)]
        if role == "pursuer":
            cylinders.append(_cylinder(x, y, 2 * layout.capture_radius, 0.02, (r, g, b, 0.25), 0.01))
        if corrected[i]:
            cylinders.append(_cylinder(x, y, 4 * radius, 0.02, (0.9, 0.1, 0.1, 0.8), 0.3))
        arrow = ArrowPrimitive(pose=_pose(x, y, th, 0.2), shaft_length=2.0 * radius, shaft_diameter=0.06,
                               head_length=radius, head_diameter=0.15,
                               color=Color(r=0.0, g=0.0, b=0.0, a=1.0))
        entities.append(SceneEntity(timestamp=when, frame_id=FRAME, id=f"robot/{name}",
                                    cylinders=cylinders, arrows=[arrow]))
    return SceneUpdate(entities=entities)


class LiveView:
    """A Foxglove WebSocket server with the scene and event channels of one view
    (its own SDK context, so several views can run in one process). ``port`` 0 picks
    a free port; :attr:`port` tells which."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, name: str = "pe-stack") -> None:
        import foxglove
        from foxglove.channels import SceneUpdateChannel

        self.context = foxglove.Context()
        self.server = foxglove.start_server(name=name, host=host, port=port, context=self.context)
        self.scene = SceneUpdateChannel(SCENE_TOPIC, context=self.context)
        self.events = foxglove.Channel(EVENTS_TOPIC, message_encoding="json", context=self.context)

    @property
    def port(self) -> int:
        return int(self.server.port)

    def show(self, log: EpisodeLog, k: int) -> None:
        """Send step row ``k`` of ``log`` (and the events stamped at it)."""
        stamp = step_ns(log, k)
        self.scene.log(scene_update(log, k), log_time=stamp)
        for event_stamp, event in episode_events(log):
            if event_stamp == stamp:
                self.events.log(json.dumps(event).encode(), log_time=stamp)

    def play(self, log: EpisodeLog, *, speed: float = 1.0, stop: threading.Event | None = None) -> None:
        """Send every step of ``log`` at ``speed`` x real time (until ``stop`` is set)."""
        start = time.monotonic()
        for k in range(log.steps + 1):
            if stop is not None and stop.is_set():
                return
            delay = start + k * log.dt / speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.show(log, k)

    def close(self) -> None:
        self.server.stop()


@console_main("pe-live")
def main(argv: Sequence[str] | None = None) -> int:
    """``pe-live``: one episode, live in Foxglove."""
    from pe_policy.viewer import add_episode_arguments, describe, load_episode

    parser = argparse.ArgumentParser(prog="pe-live", description="Serve one pursuit-evasion episode live to "
                                     "Foxglove (WebSocket, foxglove-sdk; no ROS needed).")
    add_episode_arguments(parser)
    parser.add_argument("--graph", action="store_true",
                        help="serve a running ROS 2 graph of --scenario instead of one episode")
    parser.add_argument("--domain-id", type=int, default=None,
                        help="with --graph: the graph's DDS domain (default: ROS_DOMAIN_ID or 0)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--speed", type=float, default=1.0, help="x real time")
    parser.add_argument("--loop", action="store_true", help="replay the episode until stopped")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error("--speed must be positive")
    if args.graph:
        return serve_graph(args, parser)
    try:
        log = load_episode(args, parser)
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"pe-live: error: {error}", file=sys.stderr)
        return 2
    try:
        view = LiveView(args.host, args.port)
    except RuntimeError as error:
        print(f"pe-live: error: cannot serve on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    print(f"{describe(log)}\nFoxglove: open connection ws://{args.host}:{view.port} "
          "(layout: config/viz/pe_stack.foxglove.json); Ctrl-C stops", flush=True)
    try:
        while True:
            view.play(log, speed=args.speed)
            if not args.loop:
                break
    except KeyboardInterrupt:
        pass
    finally:
        view.close()
    return 0


def serve_graph(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``pe-live --graph``: forward a running graph until Ctrl-C."""
    import os

    from pe_bringup.live_graph import GraphBridge
    from pe_sim.scenario import load_scenario

    if not args.scenario:
        parser.error("--graph needs --scenario (the graph's robots)")
    domain = args.domain_id if args.domain_id is not None else int(os.environ.get("ROS_DOMAIN_ID", "0"))
    try:
        scenario = load_scenario(args.scenario)
        view = LiveView(args.host, args.port)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"pe-live: error: {error}", file=sys.stderr)
        return 2
    bridge = GraphBridge(scenario, view, domain)
    print(f"ROS domain {domain} -> Foxglove: open connection ws://{args.host}:{view.port}; Ctrl-C stops",
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        bridge.close()
        view.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
