"""A fast path for the messages of every step: serialized CDR in, serialized CDR out.

rclpy turns each received message into nested Python objects (an Odometry
costs ~50 us to deserialize here, a TwistStamped ~15 us) and builds them again
to publish. The nodes of this stack read and write the few fields they use
straight from and into the serialized bytes instead (``raw=True``
subscriptions, publishing ``bytes``): the wire format, topic types and QoS are
unchanged, so any other ROS 2 tool sees ordinary messages.

Format: XCDR1 little endian (encapsulation ``00 01 00 00``), what rmw_fastrtps
and every Tier-1 RMW produce on x86/ARM; alignment of each primitive to its
size, counted from the end of the 4-byte encapsulation header; strings as a
uint32 length (with the terminating NUL) and the bytes. Anything else raises
:class:`CdrError`, and callers fall back to rclpy's (de)serializer.
``tests/test_ros_units.py`` checks both directions against rclpy.
"""

from __future__ import annotations

import math
import struct

ENCAP_LE = b"\x00\x01\x00\x00"
_STAMP = struct.Struct("<iI")
_U32 = struct.Struct("<I")
_POSE = struct.Struct("<7d")
_TWIST = struct.Struct("<6d")
NS_PER_S = 1_000_000_000


class CdrError(ValueError):
    """Bytes this fast path does not handle (the caller falls back to rclpy)."""


def _align(offset: int, size: int) -> int:
    return (offset + size - 1) & ~(size - 1)


def _string(buf: bytes, offset: int) -> tuple[str, int]:
    """(string, data offset after it) of the CDR string at data ``offset``."""
    offset = _align(offset, 4)
    (n,) = _U32.unpack_from(buf, 4 + offset)
    start = 4 + offset + 4
    if n == 0 or start + n > len(buf):
        raise CdrError("bad string")
    return buf[start:start + n - 1].decode(), offset + 4 + n


def _skip_string(buf: bytes, offset: int) -> int:
    offset = _align(offset, 4)
    (n,) = _U32.unpack_from(buf, 4 + offset)
    return offset + 4 + n


def _check(buf: bytes) -> None:
    if buf[:4] != ENCAP_LE:
        raise CdrError(f"unsupported encapsulation {buf[:4].hex()}")


def _header_bytes(frame_id: str) -> bytearray:
    raw = frame_id.encode() + b"\x00"
    return bytearray(ENCAP_LE + _STAMP.pack(0, 0) + _U32.pack(len(raw)) + raw)


def _pad(buf: bytearray, size: int) -> int:
    """Zero-pad ``buf`` so its data length is a multiple of ``size``; the data offset."""
    offset = _align(len(buf) - 4, size)
    buf.extend(b"\x00" * (offset - (len(buf) - 4)))
    return offset


def _yaw(qx: float, qy: float, qz: float, qw: float) -> float:
    if qx == 0.0 and qy == 0.0:
        return 2.0 * math.atan2(qz, qw)
    return math.atan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))


# --------------------------------------------------------------------------- nav_msgs/Odometry


class OdometryWriter:
    """Serialized nav_msgs/Odometry with fixed frame ids: a template whose stamp, pose and
    twist are patched in place (covariances stay zero)."""

    def __init__(self, frame_id: str, child_frame_id: str) -> None:
        buf = _header_bytes(frame_id)
        _pad(buf, 4)
        raw = child_frame_id.encode() + b"\x00"
        buf.extend(_U32.pack(len(raw)) + raw)
        self._pose = 4 + _pad(buf, 8)
        buf.extend(bytes(8 * (7 + 36)))
        self._twist = len(buf)
        buf.extend(bytes(8 * (6 + 36)))
        self._buf = buf

    def encode(self, stamp_ns: int, x: float, y: float, qz: float, qw: float, v: float,
               omega: float) -> bytes:
        buf = self._buf
        _STAMP.pack_into(buf, 4, *divmod(stamp_ns, NS_PER_S))
        _POSE.pack_into(buf, self._pose, x, y, 0.0, 0.0, 0.0, qz, qw)
        _TWIST.pack_into(buf, self._twist, v, 0.0, 0.0, 0.0, 0.0, omega)
        return bytes(buf)


def read_odometry(buf: bytes) -> tuple[int, float, float, float, float, float]:
    """(stamp ns, x, y, yaw, v, omega) from a serialized nav_msgs/Odometry."""
    _check(buf)
    sec, nsec = _STAMP.unpack_from(buf, 4)
    offset = _skip_string(buf, 8)
    offset = _align(_skip_string(buf, offset), 8)
    x, y, _, qx, qy, qz, qw = _POSE.unpack_from(buf, 4 + offset)
    v, _, _, _, _, omega = _TWIST.unpack_from(buf, 4 + offset + 8 * (7 + 36))
    return sec * NS_PER_S + nsec, x, y, _yaw(qx, qy, qz, qw), v, omega


def read_header_frame(buf: bytes) -> str:
    """``header.frame_id`` of any serialized message that starts with a std_msgs/Header."""
    _check(buf)
    return _string(buf, 8)[0]


# --------------------------------------------------------------------------- geometry_msgs/TwistStamped


class TwistWriter:
    """Serialized geometry_msgs/TwistStamped (planar: linear.x, angular.z) with a fixed frame."""

    def __init__(self, frame_id: str) -> None:
        buf = _header_bytes(frame_id)
        self._twist = 4 + _pad(buf, 8)
        buf.extend(bytes(8 * 6))
        self._buf = buf

    def encode(self, stamp_ns: int, v: float, omega: float) -> bytes:
        buf = self._buf
        _STAMP.pack_into(buf, 4, *divmod(stamp_ns, NS_PER_S))
        _TWIST.pack_into(buf, self._twist, v, 0.0, 0.0, 0.0, 0.0, omega)
        return bytes(buf)


def read_twist(buf: bytes) -> tuple[int, float, float]:
    """(stamp ns, linear.x, angular.z) from a serialized geometry_msgs/TwistStamped."""
    _check(buf)
    sec, nsec = _STAMP.unpack_from(buf, 4)
    offset = _align(_skip_string(buf, 8), 8)
    v, _, _, _, _, omega = _TWIST.unpack_from(buf, 4 + offset)
    return sec * NS_PER_S + nsec, v, omega


# --------------------------------------------------------------------------- diagnostic_msgs/DiagnosticArray


def read_first_status(buf: bytes) -> tuple[int, dict[str, str]]:
    """(header stamp ns, key -> value of the first status) of a serialized
    diagnostic_msgs/DiagnosticArray (empty dict if it has no status)."""
    _check(buf)
    sec, nsec = _STAMP.unpack_from(buf, 4)
    offset = _align(_skip_string(buf, 8), 4)
    (count,) = _U32.unpack_from(buf, 4 + offset)
    values: dict[str, str] = {}
    if count:
        offset += 4 + 1                      # sequence length, then level (octet)
        for _ in range(3):                   # name, message, hardware_id
            offset = _skip_string(buf, offset)
        offset = _align(offset, 4)
        (n,) = _U32.unpack_from(buf, 4 + offset)
        offset += 4
        for _ in range(n):
            key, offset = _string(buf, offset)
            value, offset = _string(buf, offset)
            values[key] = value
    return sec * NS_PER_S + nsec, values


def write_status_array(stamp_ns: int, level: int, name: str, message: str, hardware_id: str,
                       values: list[tuple[str, str]]) -> bytes:
    """Serialized diagnostic_msgs/DiagnosticArray with one status (empty header frame)."""
    buf = bytearray(ENCAP_LE + _STAMP.pack(*divmod(stamp_ns, NS_PER_S)) + _U32.pack(1) + b"\x00")

    def string(text: str) -> None:
        _pad(buf, 4)
        raw = text.encode() + b"\x00"
        buf.extend(_U32.pack(len(raw)))
        buf.extend(raw)

    _pad(buf, 4)
    buf.extend(_U32.pack(1))          # one status
    buf.append(level)
    string(name)
    string(message)
    string(hardware_id)
    _pad(buf, 4)
    buf.extend(_U32.pack(len(values)))
    for key, value in values:
        string(key)
        string(value)
    return bytes(buf)
