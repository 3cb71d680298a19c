"""Conversions between ROS messages and the arrays of the pure cores.

Everything numeric travels as float64 and comes back bit-identical, which the
lockstep equivalence with the headless evaluation needs (states equal to 1e-9
after hundreds of steps of a chaotic game leave no room for rounding):

* positions, velocities and obstacle centres are float64 fields, copied as is;
* an obstacle radius travels as the marker diameter ``scale.x = 2 r`` (doubling
  and halving are exact in binary floating point);
* the heading travels as a standard yaw quaternion (x = y = 0,
  z = sin(theta/2), w = cos(theta/2)) whose z and w are nudged by a few ulps
  (|q| stays 1 to ~1e-16) so that :func:`quaternion_to_yaw`, i.e.
  ``2 atan2(z, w)``, returns theta bit for bit. RViz, tf2 and every other
  reader see an ordinary unit quaternion. Only subnormal headings
  (|theta| < 2.2e-308) may come back off by less than 1e-308.

Stamps are handled as integer nanoseconds so a stamp identifies a step exactly.
The per-step messages travel serialized (:mod:`pe_ros.cdr`); the
``decode_*`` functions here read raw subscriptions with that fast path and fall
back to rclpy's deserializer.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from visualization_msgs.msg import Marker, MarkerArray

from pe_ros import cdr

NS_PER_S = 1_000_000_000
OBSTACLE_NS = "obstacles"
ARENA_NS = "arena"


# --------------------------------------------------------------------------- time


def seconds_to_ns(seconds: float) -> int:
    """A duration in seconds as whole nanoseconds (dt 0.05 -> 50_000_000)."""
    return round(seconds * NS_PER_S)


def stamp_to_ns(stamp: Time) -> int:
    return stamp.sec * NS_PER_S + stamp.nanosec


def set_stamp(stamp: Time, ns: int) -> Time:
    """Write integer nanoseconds ``ns`` (>= 0) into a ``builtin_interfaces/Time``."""
    stamp.sec, stamp.nanosec = divmod(int(ns), NS_PER_S)
    return stamp


def ns_to_stamp(ns: int) -> Time:
    return set_stamp(Time(), ns)


def clock_message(ns: int, msg: Clock | None = None) -> Clock:
    msg = msg or Clock()
    set_stamp(msg.clock, ns)
    return msg


# --------------------------------------------------------------------------- heading


def quaternion_to_yaw(z: float, w: float) -> float:
    """Yaw of a quaternion about the z axis (x = y = 0)."""
    return 2.0 * math.atan2(z, w)


def _step(value: float, k: int) -> float:
    direction = math.inf if k > 0 else -math.inf
    for _ in range(abs(k)):
        value = math.nextafter(value, direction)
    return value


_Z_STEPS = tuple(k for i in range(1, 9) for k in (i, -i))
_W_STEPS = (0, 1, -1, 2, -2, 3, -3)


def yaw_to_quaternion(theta: float) -> tuple[float, float]:
    """(z, w) of the yaw quaternion of ``theta`` such that ``quaternion_to_yaw(z, w) == theta``
    exactly (see the module doc); falls back to the plain quaternion if no nearby
    (z, w) decodes exactly (subnormal angles only)."""
    half = 0.5 * theta
    z, w = math.sin(half), math.cos(half)
    if 2.0 * math.atan2(z, w) == theta:
        return z, w
    for dw in _W_STEPS:
        ww = _step(w, dw)
        if dw and 2.0 * math.atan2(z, ww) == theta:
            return z, ww
        for dz in _Z_STEPS:
            zz = _step(z, dz)
            if 2.0 * math.atan2(zz, ww) == theta:
                return zz, ww
    return z, w


def odometry_yaw(msg: Odometry) -> float:
    """Yaw of an odometry pose: exact for the sim's planar quaternions, the standard
    formula for any other (e.g. a real robot's odometry with roll and pitch)."""
    q = msg.pose.pose.orientation
    if q.x == 0.0 and q.y == 0.0:
        return quaternion_to_yaw(q.z, q.w)
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


# --------------------------------------------------------------------------- odometry / twist


def fill_odometry(msg: Odometry, stamp_ns: int, x: float, y: float, theta: float,
                  v: float, omega: float) -> Odometry:
    """State of one robot: pose in ``header.frame_id``, twist (the applied command)
    in the body frame ``child_frame_id``. Frame ids are left as set by the caller."""
    set_stamp(msg.header.stamp, stamp_ns)
    pose = msg.pose.pose
    pose.position.x = float(x)
    pose.position.y = float(y)
    z, w = yaw_to_quaternion(float(theta))
    pose.orientation.z = z
    pose.orientation.w = w
    msg.twist.twist.linear.x = float(v)
    msg.twist.twist.angular.z = float(omega)
    return msg


def read_odometry(msg: Odometry) -> tuple[int, float, float, float, float, float]:
    """(stamp ns, x, y, theta, v, omega) of an odometry message."""
    p = msg.pose.pose.position
    t = msg.twist.twist
    return (stamp_to_ns(msg.header.stamp), p.x, p.y, odometry_yaw(msg), t.linear.x, t.angular.z)


def fill_twist(msg: TwistStamped, stamp_ns: int, v: float, omega: float) -> TwistStamped:
    set_stamp(msg.header.stamp, stamp_ns)
    msg.twist.linear.x = float(v)
    msg.twist.angular.z = float(omega)
    return msg


def read_twist(msg: TwistStamped) -> tuple[int, float, float]:
    """(stamp ns, v, omega) of a velocity command."""
    return stamp_to_ns(msg.header.stamp), msg.twist.linear.x, msg.twist.angular.z


def decode_odometry(data: bytes) -> tuple[int, float, float, float, float, float]:
    """(stamp ns, x, y, theta, v, omega) of a serialized Odometry (raw subscription): the
    :mod:`~pe_ros.cdr` fast path, rclpy's deserializer for anything it does not handle."""
    try:
        return cdr.read_odometry(data)
    except (cdr.CdrError, struct.error, UnicodeDecodeError):
        return read_odometry(deserialize_message(data, Odometry))


def decode_twist(data: bytes) -> tuple[int, float, float]:
    """(stamp ns, v, omega) of a serialized TwistStamped (raw subscription)."""
    try:
        return cdr.read_twist(data)
    except (cdr.CdrError, struct.error, UnicodeDecodeError):
        return read_twist(deserialize_message(data, TwistStamped))


def decode_status(data: bytes) -> tuple[int, dict[str, str]]:
    """(stamp ns, key -> value of the first status) of a serialized DiagnosticArray."""
    try:
        return cdr.read_first_status(data)
    except (cdr.CdrError, struct.error, UnicodeDecodeError):
        msg = deserialize_message(data, DiagnosticArray)
        values = {kv.key: kv.value for kv in msg.status[0].values} if msg.status else {}
        return stamp_to_ns(msg.header.stamp), values


# --------------------------------------------------------------------------- obstacles / arena


def obstacle_markers(obstacles: np.ndarray, stamp_ns: int, frame_id: str, half_width: float,
                     half_height: float, lifetime_ns: int = 0, height: float = 0.5) -> MarkerArray:
    """The obstacles (n, 3) as cylinders (namespace ``obstacles``, ids 0..n-1) and the
    arena as a closed line strip (namespace ``arena``), after a DELETEALL that clears
    the previous episode's markers. The stamp is that of the episode's first state;
    ``lifetime`` is the episode's slot of sim time in lockstep (the set is valid in
    [stamp, stamp + lifetime)), 0 (forever) otherwise."""
    stamp = ns_to_stamp(stamp_ns)
    lifetime = Duration(sec=int(lifetime_ns // NS_PER_S), nanosec=int(lifetime_ns % NS_PER_S))
    clear = Marker(action=Marker.DELETEALL)
    clear.header.frame_id = frame_id
    clear.header.stamp = stamp
    clear.lifetime = lifetime
    markers = [clear]
    for i, (x, y, r) in enumerate(np.asarray(obstacles, dtype=np.float64).reshape(-1, 3)):
        m = Marker(ns=OBSTACLE_NS, id=i, type=Marker.CYLINDER, action=Marker.ADD)
        m.header.frame_id = frame_id
        m.header.stamp = stamp
        m.pose.position.x = float(x)
        m.pose.position.y = float(y)
        m.pose.position.z = 0.5 * height
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = 2.0 * float(r)
        m.scale.z = height
        m.color.r, m.color.g, m.color.b, m.color.a = 0.55, 0.55, 0.6, 1.0
        m.lifetime = lifetime
        markers.append(m)
    arena = Marker(ns=ARENA_NS, id=0, type=Marker.LINE_STRIP, action=Marker.ADD)
    arena.header.frame_id = frame_id
    arena.header.stamp = stamp
    arena.pose.orientation.w = 1.0
    arena.scale.x = 0.05
    arena.color.r, arena.color.g, arena.color.b, arena.color.a = 0.1, 0.1, 0.1, 1.0
    arena.lifetime = lifetime
    arena.points = [Point(x=float(sx * half_width), y=float(sy * half_height))
                    for sx, sy in ((1, 1), (-1, 1), (-1, -1), (1, -1), (1, 1))]
    markers.append(arena)
    return MarkerArray(markers=markers)


OBSTACLE_TYPES = {Marker.CYLINDER: "CYLINDER", Marker.SPHERE: "SPHERE"}


@dataclass(frozen=True)
class ObstacleMarkers:
    """The obstacle set a MarkerArray describes.

    ``stamp``: ns of the newest obstacle marker (None: no obstacle marker);
    ``obstacles`` (n, 3) rows (cx, cy, r) in ``frame``; ``lifetime_ns`` (0: forever);
    ``frames``: every frame the obstacle markers used (one, normally); ``ignored``:
    count of ADD markers of other types in the accepted namespaces."""

    stamp: int | None
    obstacles: np.ndarray
    lifetime_ns: int
    frames: tuple[str, ...]
    ignored: int


def read_obstacle_markers(msg: MarkerArray, namespaces: Sequence[str] = ()) -> ObstacleMarkers:
    """The obstacles of a MarkerArray: CYLINDER and SPHERE markers (radius: half the larger
    of scale.x and scale.y, so an ellipse counts as its bounding circle) added after the
    last DELETEALL, keyed by (namespace, id), in the namespaces given (empty: any but
    ``arena``)."""
    found: dict[tuple[str, int], tuple[float, float, float]] = {}
    stamp: int | None = None
    lifetime = ignored = 0
    frames: set[str] = set()
    for m in msg.markers:
        if m.action == Marker.DELETEALL:
            found.clear()
        elif (namespaces and m.ns not in namespaces) or (not namespaces and m.ns == ARENA_NS):
            continue
        key = (m.ns, m.id)
        if m.action == Marker.DELETE:
            found.pop(key, None)
        elif m.action == Marker.ADD and m.type in OBSTACLE_TYPES:
            found[key] = (m.pose.position.x, m.pose.position.y, 0.5 * max(m.scale.x, m.scale.y))
            frames.add(m.header.frame_id)
        else:
            ignored += m.action == Marker.ADD
            continue
        stamp = stamp_to_ns(m.header.stamp)
        lifetime = m.lifetime.sec * NS_PER_S + m.lifetime.nanosec
    rows = [found[k] for k in sorted(found)]
    return ObstacleMarkers(stamp, np.array(rows, dtype=np.float64).reshape(-1, 3), lifetime,
                           tuple(sorted(frames)), ignored)


# --------------------------------------------------------------------------- episode events


def episode_start_event(index: int, seed: int, start_ns: int, scenario: str,
                        obstacles: np.ndarray, stride_ns: int = 0) -> str:
    """JSON of an episode start: its seed, the stamp of its first state and its slot
    of sim time (``stride_ns``, lockstep; 0: open-ended)."""
    return json.dumps({"event": "start", "index": int(index), "seed": int(seed),
                       "start_ns": int(start_ns), "stride_ns": int(stride_ns), "scenario": scenario,
                       "obstacles": np.asarray(obstacles, dtype=float).tolist()})


def episode_end_event(index: int, seed: int, end_ns: int, record_json: str,
                      final_pose: Sequence[Sequence[float]], final_velocity: Sequence[Sequence[float]],
                      missed_commands: Sequence[int]) -> str:
    """JSON of an episode end: the :class:`~pe_sim.metrics.EpisodeRecord` and the final state."""
    return json.dumps({"event": "end", "index": int(index), "seed": int(seed), "end_ns": int(end_ns),
                       "record": json.loads(record_json),
                       "final_pose": np.asarray(final_pose, dtype=float).tolist(),
                       "final_velocity": np.asarray(final_velocity, dtype=float).tolist(),
                       "missed_commands": [int(m) for m in missed_commands]})


def parse_event(text: str) -> dict[str, Any]:
    return json.loads(text)
