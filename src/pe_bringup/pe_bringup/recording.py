"""Episodes as rosbag2 recordings with MCAP storage, as ``ros2 bag record -s mcap`` writes
them (a folder with ``metadata.yaml`` and one ``.mcap`` file), without a ROS install.

Written with the ``rosbags`` library (pure Python, PyPI): it writes rosbag2 folders
(metadata included, which the plain ``mcap`` writer does not) with the message
definitions of ROS 2 Kilted, so ``ros2 bag info/play``, Foxglove, RViz (via play) and
``mcap`` readers all open them. rclpy's own ``rosbag2_py`` is not on PyPI.

Topics (the graph's names, docs/ros_graph.md), world frame ``world``, metres, radians,
stamps = episode time (step k at ``START_NS + k dt``):

* ``/<robot>/odom`` ``nav_msgs/Odometry``: pose at every step (row 0 = start) and the
  applied command as twist (v along x, omega about z);
* ``/<robot>/cmd_vel_nominal`` and ``/<robot>/cmd_vel`` ``geometry_msgs/TwistStamped``:
  the policy's command and the command applied after the filter, every step;
* ``/<robot>/filter_status`` ``diagnostic_msgs/DiagnosticArray`` (filtered robots):
  level WARN when the filter corrected the command, with ``intervened`` and
  ``correction_size`` (inf-norm of (dv / v_max, domega / omega_max));
* ``/obstacles`` ``visualization_msgs/MarkerArray`` (once): the arena and obstacles;
* ``/robots`` ``visualization_msgs/MarkerArray`` (every step): bodies, headings,
  capture radius around pursuers, a red ring on robots the filter corrected;
* ``/episode`` ``std_msgs/String`` (JSON): start, each step with a violation, end.

Viewers: ``config/viz/pe_stack.foxglove.json`` (Foxglove layout: 3D scene, nominal vs
filtered commands, filter state, episode events) and ``config/viz/pe_stack.rviz``
(RViz: markers and odometry, top-down), installed with pe_bringup
(:func:`viewer_config`).

Trajectories come from :mod:`pe_policy.replay` (episode records are replayed from
their seed), so a recording of a ROS-graph run equals the graph's episode.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pe_sim.cli import console_main
from pe_sim.episode_log import EpisodeLog

START_NS = 1_000_000_000
FRAME = "world"
FILTER_SUFFIX = " +filter"
COLOURS = {"pursuer": (0.84, 0.15, 0.16), "evader": (0.12, 0.47, 0.71)}
NUMPY_TYPES = {"float64": np.float64, "float32": np.float32, "int8": np.int8, "uint8": np.uint8,
               "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
               "int64": np.int64, "uint64": np.uint64, "byte": np.uint8, "char": np.uint8, "bool": np.bool_}


class Messages:
    """Builds messages of the ROS 2 Kilted typestore with every unset field defaulted."""

    def __init__(self) -> None:
        from rosbags.typesys import Stores, get_typestore

        self.store = get_typestore(Stores.ROS2_KILTED)

    def make(self, msgtype: str, **fields: Any):
        from rosbags.interfaces import Nodetype

        _, defs = self.store.fielddefs[msgtype]
        values = {}
        for name, (kind, detail) in defs:
            if name in fields:
                values[name] = fields[name]
            elif kind == Nodetype.NAME:
                values[name] = self.make(detail)
            elif kind == Nodetype.BASE:
                base = detail[0]
                values[name] = "" if base == "string" else False if base == "bool" else \
                    0.0 if base.startswith("float") else 0
            else:
                (inner_kind, inner), length = detail
                if inner_kind == Nodetype.BASE and inner[0] in NUMPY_TYPES:
                    values[name] = np.zeros(length if kind == Nodetype.ARRAY else 0, NUMPY_TYPES[inner[0]])
                elif kind == Nodetype.ARRAY:
                    values[name] = [self.make(inner) if inner_kind == Nodetype.NAME else ""
                                    for _ in range(length)]
                else:
                    values[name] = []
        return self.store.types[msgtype](**values)

    def header(self, stamp_ns: int, frame: str = FRAME):
        return self.make("std_msgs/msg/Header", frame_id=frame, stamp=self.make(
            "builtin_interfaces/msg/Time", sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000))

    def point(self, x: float, y: float, z: float = 0.0):
        return self.make("geometry_msgs/msg/Point", x=float(x), y=float(y), z=float(z))

    def pose(self, x: float, y: float, theta: float = 0.0, z: float = 0.0):
        return self.make("geometry_msgs/msg/Pose", position=self.point(x, y, z),
                         orientation=self.make("geometry_msgs/msg/Quaternion", z=math.sin(0.5 * theta),
                                               w=math.cos(0.5 * theta)))

    def twist(self, v: float, omega: float):
        return self.make("geometry_msgs/msg/Twist", linear=self.make("geometry_msgs/msg/Vector3", x=float(v)),
                         angular=self.make("geometry_msgs/msg/Vector3", z=float(omega)))

    def constants(self, msgtype: str) -> dict[str, Any]:
        """The constants of ``msgtype`` by name (e.g. Marker.CYLINDER)."""
        return {name: value for name, _, value in self.store.fielddefs[msgtype][0]}

    def marker(self, stamp_ns: int, ns: str, marker_id: int, kind: str, pose,
               scale: tuple[float, float, float], rgba: tuple[float, float, float, float], points=()):
        constants = self.constants("visualization_msgs/msg/Marker")
        return self.make(
            "visualization_msgs/msg/Marker", header=self.header(stamp_ns), ns=ns, id=marker_id,
            type=constants[kind], action=constants["ADD"], pose=pose,
            scale=self.make("geometry_msgs/msg/Vector3", x=scale[0], y=scale[1], z=scale[2]),
            color=self.make("std_msgs/msg/ColorRGBA", r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3]),
            points=list(points))


def viewer_config(name: str) -> Path:
    """A shipped viewer config: ``pe_stack.foxglove.json`` or ``pe_stack.rviz``."""
    from pe_sim.package_data import data_path

    path = data_path("pe_bringup", "config/viz") / name
    if not path.is_file():
        raise FileNotFoundError(f"no viewer config {name!r} in {path.parent}")
    return path


def step_ns(log: EpisodeLog, k: int) -> int:
    """Stamp (ns) of step row ``k`` of ``log``."""
    return START_NS + k * round(log.dt * 1e9)


def filtered_robots(log: EpisodeLog) -> list[int]:
    """Robots whose recorded policy ran behind the filter (needs the filter's record)."""
    if not log.filter_recorded:
        return []
    return [i for i, name in enumerate(log.robot_names) if log.policies.get(name, "").endswith(FILTER_SUFFIX)]


def episode_events(log: EpisodeLog) -> list[tuple[int, dict[str, Any]]]:
    """(stamp ns, event) of the episode: start, each violation step, end."""
    events = [(step_ns(log, 0), {"event": "start", "scenario": log.scenario_name, "seed": log.seed,
                                 "policies": log.policies, "dt": log.dt})]
    for k in np.flatnonzero(log.violation.any(axis=1)) + 1:
        robots = [log.robot_names[i] for i in np.flatnonzero(log.violation[k - 1])]
        events.append((step_ns(log, int(k)), {"event": "violation", "step": int(k), "robots": robots}))
    events.append((step_ns(log, log.steps), {
        "event": "end", "outcome": "capture" if log.captured else "timeout", "steps": log.steps,
        "capture_step": log.capture_step, "time_s": log.steps * log.dt}))
    return events


def scene_markers(m: Messages, log: EpisodeLog) -> Any:
    """The arena outline and the obstacles (cylinders 0.5 m tall)."""
    hw, hh = 0.5 * log.arena[0], 0.5 * log.arena[1]
    corners = [m.point(x, y) for x, y in ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh), (-hw, -hh))]
    markers = [m.marker(step_ns(log, 0), "arena", 0, "LINE_STRIP", m.pose(0, 0), (0.05, 0.0, 0.0),
                        (0.0, 0.0, 0.0, 1.0), corners)]
    for j, (x, y, r) in enumerate(log.obstacles):
        markers.append(m.marker(step_ns(log, 0), "obstacles", j, "CYLINDER", m.pose(x, y, 0.0, 0.25),
                                (2 * r, 2 * r, 0.5), (0.5, 0.5, 0.5, 1.0)))
    return m.make("visualization_msgs/msg/MarkerArray", markers=markers)


def robot_markers(m: Messages, log: EpisodeLog, k: int) -> Any:
    """Bodies, headings, capture radii and correction rings at step row ``k``."""
    stamp = step_ns(log, k)
    markers = []
    for i, (role, radius) in enumerate(zip(log.robot_roles, log.robot_radii, strict=True)):
        x, y, th = log.pose[k, i]
        r, g, b = COLOURS.get(role, (0.3, 0.3, 0.3))
        markers.append(m.marker(stamp, "bodies", i, "CYLINDER", m.pose(x, y, th, 0.1),
                                (2 * radius, 2 * radius, 0.2), (r, g, b, 1.0)))
        markers.append(m.marker(stamp, "headings", i, "ARROW", m.pose(x, y, th, 0.2),
                                (3 * radius, 0.06, 0.06), (0.0, 0.0, 0.0, 1.0)))
        if role == "pursuer":
            d = 2 * log.capture_radius
            markers.append(m.marker(stamp, "capture_radius", i, "CYLINDER", m.pose(x, y, 0.0, 0.01),
                                    (d, d, 0.02), (r, g, b, 0.25)))
        corrected = log.intervened is not None and k > 0 and bool(log.intervened[k - 1, i])
        ring = m.marker(stamp, "filter_corrections", i, "CYLINDER", m.pose(x, y, 0.0, 0.3),
                        (4 * radius, 4 * radius, 0.02), (0.9, 0.1, 0.1, 0.8 if corrected else 0.0))
        markers.append(ring)
    return m.make("visualization_msgs/msg/MarkerArray", markers=markers)


def filter_status(m: Messages, log: EpisodeLog, i: int, k: int) -> Any:
    """The filter's report for robot ``i`` in step ``k`` (0-based)."""
    intervened = bool(log.intervened[k, i])
    size = float(log.correction[k, i]) if log.correction is not None else math.nan
    constants = m.constants("diagnostic_msgs/msg/DiagnosticStatus")
    values = [m.make("diagnostic_msgs/msg/KeyValue", key=key, value=value) for key, value in (
        ("step", str(k + 1)), ("intervened", str(intervened).lower()), ("correction_size", repr(size)))]
    status = m.make("diagnostic_msgs/msg/DiagnosticStatus", level=constants["WARN" if intervened else "OK"],
                    name=f"{log.robot_names[i]}/safety_filter",
                    message="corrected" if intervened else "nominal",
                    hardware_id=log.robot_names[i], values=values)
    return m.make("diagnostic_msgs/msg/DiagnosticArray", header=m.header(step_ns(log, k)), status=[status])


def write_episode_bag(log: EpisodeLog, folder: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``log`` as a rosbag2 folder with MCAP storage at ``folder``; returns it."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    folder = Path(folder)
    if folder.exists():
        if not overwrite:
            raise FileExistsError(f"{folder} exists (rosbag2 writes a new folder)")
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    m = Messages()
    store = m.store
    filtered = filtered_robots(log)
    with Writer(folder, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        def connection(topic: str, msgtype: str):
            return writer.add_connection(topic, msgtype, typestore=store)

        def write(conn, stamp: int, message, msgtype: str) -> None:
            writer.write(conn, stamp, store.serialize_cdr(message, msgtype))

        odom_type, twist_type = "nav_msgs/msg/Odometry", "geometry_msgs/msg/TwistStamped"
        marker_type, diag_type = "visualization_msgs/msg/MarkerArray", "diagnostic_msgs/msg/DiagnosticArray"
        string_type = "std_msgs/msg/String"
        events = connection("/episode", string_type)
        obstacles = connection("/obstacles", marker_type)
        robots = connection("/robots", marker_type)
        odom = [connection(f"/{n}/odom", odom_type) for n in log.robot_names]
        nominal = [connection(f"/{n}/cmd_vel_nominal", twist_type) for n in log.robot_names]
        applied = [connection(f"/{n}/cmd_vel", twist_type) for n in log.robot_names]
        status = {i: connection(f"/{log.robot_names[i]}/filter_status", diag_type) for i in filtered}
        events_at = episode_events(log)
        write(events, events_at[0][0], m.make(string_type, data=json.dumps(events_at[0][1])), string_type)
        write(obstacles, step_ns(log, 0), scene_markers(m, log), marker_type)
        nominal_command = log.nominal_command if log.nominal_command is not None else log.command
        for k in range(log.steps + 1):
            stamp = step_ns(log, k)
            for i, name in enumerate(log.robot_names):
                x, y, th = log.pose[k, i]
                v, w = log.command[k - 1, i] if k > 0 else (0.0, 0.0)
                message = m.make(odom_type, header=m.header(stamp), child_frame_id=name,
                                 pose=m.make("geometry_msgs/msg/PoseWithCovariance", pose=m.pose(x, y, th)),
                                 twist=m.make("geometry_msgs/msg/TwistWithCovariance", twist=m.twist(v, w)))
                write(odom[i], stamp, message, odom_type)
            write(robots, stamp, robot_markers(m, log, k), marker_type)
            if k < log.steps:
                for i in range(len(log.robot_names)):
                    write(nominal[i], stamp, m.make(twist_type, header=m.header(stamp),
                                                    twist=m.twist(*nominal_command[k, i])), twist_type)
                    write(applied[i], stamp, m.make(twist_type, header=m.header(stamp),
                                                    twist=m.twist(*log.command[k, i])), twist_type)
                for i, conn in status.items():
                    write(conn, stamp, filter_status(m, log, i, k), diag_type)
            for event_stamp, event in events_at[1:]:
                if event_stamp == stamp:
                    write(events, stamp, m.make(string_type, data=json.dumps(event)), string_type)
    return folder


def bag_name(log: EpisodeLog) -> str:
    return f"{log.scenario_name}_seed{log.seed}"


def record_results(results_dir: str | Path, *, limit: int | None = None, scenario: str | None = None,
                   filter_config: str = "vcp_cbf", overrides: dict[str, str] | None = None) -> list[Path]:
    """Recordings of the episodes of an evaluation folder (``episodes.jsonl`` of ``pe-eval``
    or ``pe-launch eval --out DIR``): the first ``limit`` episodes (all if None) are
    replayed from their seeds (a replay that differs from its record raises
    RuntimeError) and written to ``DIR/bags/<scenario>_seed<S>/``.
    ``scenario`` (name or YAML path) when the records' scenario name is not a shipped
    one; ``overrides`` maps robot names to policy sources the records do not name."""
    from pe_policy.replay import check_replay, replay_record
    from pe_sim.metrics import read_jsonl

    results_dir = Path(results_dir)
    records = read_jsonl(results_dir / "episodes.jsonl")
    out = []
    for record in records[:limit]:
        log = replay_record(record, scenario=scenario, overrides=overrides, filter_config=filter_config)
        problems = check_replay(log, record)
        if problems:
            raise RuntimeError(f"episode {record.seed} replays differently: {'; '.join(problems)}")
        out.append(write_episode_bag(log, results_dir / "bags" / bag_name(log), overwrite=True))
    return out


@console_main("pe-record")
def main(argv: Sequence[str] | None = None) -> int:
    """``pe-record``: one episode as a rosbag2 (MCAP) folder."""
    from pe_policy.viewer import add_episode_arguments, describe, load_episode

    parser = argparse.ArgumentParser(prog="pe-record", description="Write one pursuit-evasion episode as a "
                                     "rosbag2 folder with MCAP storage (ros2 bag / Foxglove open it).")
    add_episode_arguments(parser)
    parser.add_argument("-o", "--output", help="bag folder (default <scenario>_seed<S>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag folder")
    args = parser.parse_args(argv)
    try:
        log = load_episode(args, parser)
        if args.save_episode:
            log.save(args.save_episode)
        path = write_episode_bag(log, args.output or bag_name(log), overwrite=args.overwrite)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as error:
        print(f"pe-record: error: {error}", file=sys.stderr)
        return 2
    print(f"{path}/: {describe(log)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
