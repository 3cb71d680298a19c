"""Pure parts of the ROS 2 layer: message conversions (exactness), stamp bookkeeping,
the sim node's stepping logic, timing statistics, and the launch description.

Nothing here starts a node; the message classes of the pip ROS 2 wheels are used
as plain Python objects.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pe_bringup.graph import (
    EvalOptions,
)
from pe_ros import convert
from pe_ros.state import Episode, EpisodeBook, StateTable, step_index
from pe_ros.timing import TimingSeries, format_timing_table
from pe_sim.scenario import load_scenario
from pe_sim.sim_runner import SimRunner

SCENARIO = "seed_1v1_2obs"


# --------------------------------------------------------------------------- conversions


def test_yaw_quaternion_round_trip_is_bit_exact():
    rng = np.random.default_rng(5)
    angles = list((2.0 * rng.random(20000) - 1.0) * math.pi)
    angles += [-math.pi, 0.0, -0.0, 1e-300, 1e-9, math.pi - 1e-15, -math.pi + 1e-15, 0.5 * math.pi]
    for theta in angles:
        z, w = convert.yaw_to_quaternion(theta)
        assert convert.quaternion_to_yaw(z, w) == theta
        assert abs(z * z + w * w - 1.0) < 1e-15


def test_odometry_twist_and_markers_round_trip_exactly():
    from geometry_msgs.msg import TwistStamped
    from nav_msgs.msg import Odometry

    stamp = 1_234_567_890_123
    state = (3.141592653589793 / 7, -9.87654321e-3, -2.9999999999999996, 0.7071067811865476, -2.84)
    odom = convert.fill_odometry(Odometry(), stamp, *state)
    assert convert.read_odometry(odom) == (stamp, *state)
    twist = convert.fill_twist(TwistStamped(), stamp, 0.1 + 0.2, -1e-17)
    assert convert.read_twist(twist) == (stamp, 0.1 + 0.2, -1e-17)
    obstacles = np.array([[1.0 / 3.0, -4.2, 0.3000000000000001], [-7.5, 2.25, 0.987654321]])
    markers = convert.obstacle_markers(obstacles, stamp, "world", 10.0, 10.0, lifetime_ns=30_050_000_000)
    got = convert.read_obstacle_markers(markers)
    assert got.stamp == stamp and got.lifetime_ns == 30_050_000_000 and got.frames == ("world",)
    assert np.array_equal(got.obstacles, obstacles)
    empty = convert.read_obstacle_markers(
        convert.obstacle_markers(np.zeros((0, 3)), stamp, "world", 10.0, 10.0))
    assert empty.stamp == stamp and empty.obstacles.shape == (0, 3)


def test_cdr_fast_path_matches_rclpy_serialization():
    """The serialized-bytes fast path (pe_ros.cdr) reads and writes exactly what rclpy does."""
    import random

    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from geometry_msgs.msg import TwistStamped
    from nav_msgs.msg import Odometry
    from rclpy.serialization import deserialize_message, serialize_message

    from pe_ros import cdr

    rng = random.Random(3)
    for _ in range(200):
        frame, child = "w" * rng.randint(0, 9), "c" * rng.randint(0, 13)
        stamp = rng.randint(0, 2**40)
        theta = rng.uniform(-math.pi, math.pi)
        x, y, v, omega = (rng.uniform(-9, 9) for _ in range(4))
        qz, qw = convert.yaw_to_quaternion(theta)
        ref = convert.fill_odometry(Odometry(), stamp, x, y, theta, v, omega)
        ref.header.frame_id, ref.child_frame_id = frame, child
        ours = cdr.OdometryWriter(frame, child).encode(stamp, x, y, qz, qw, v, omega)
        theirs = serialize_message(ref)   # (its padding bytes are not initialised: compare fields)
        assert len(ours) == len(theirs)
        back = deserialize_message(ours, Odometry)
        assert (back.header.frame_id, back.child_frame_id) == (frame, child)
        assert convert.read_odometry(back) == cdr.read_odometry(theirs) == (stamp, x, y, theta, v, omega)
        twist = convert.fill_twist(TwistStamped(), stamp, v, omega)
        twist.header.frame_id = frame
        ours = cdr.TwistWriter(frame).encode(stamp, v, omega)
        assert len(ours) == len(serialize_message(twist))
        assert convert.read_twist(deserialize_message(ours, TwistStamped)) == (stamp, v, omega)
        assert cdr.read_twist(serialize_message(twist)) == (stamp, v, omega)
        status = DiagnosticArray(status=[DiagnosticStatus(
            level=b"\x02", name="n" * rng.randint(0, 5), message="m" * rng.randint(0, 7),
            values=[KeyValue(key=f"k{i}", value=repr(rng.random())) for i in range(rng.randint(0, 12))])])
        convert.set_stamp(status.header.stamp, stamp)
        assert cdr.read_first_status(serialize_message(status)) == \
            (stamp, {kv.key: kv.value for kv in status.status[0].values})
        st = status.status[0]
        ours = deserialize_message(cdr.write_status_array(
            stamp, 2, st.name, st.message, st.hardware_id, [(kv.key, kv.value) for kv in st.values]),
            DiagnosticArray)
        assert ours == status
    with pytest.raises(cdr.CdrError):
        cdr.read_twist(b"\x00\x00\x00\x00" + bytes(60))   # big endian: the rclpy fallback's job


# --------------------------------------------------------------------------- bookkeeping


def test_state_table_and_episode_book():
    table = StateTable(2, keep=4)
    table.put(0, 100, (1.0, 2.0, 0.0, 0.0, 0.0))
    assert not table.has_all(100, range(2))
    table.put(1, 100, (3.0, 4.0, 0.0, 0.0, 0.0))
    assert table.has_all(100, range(2)) and table.latest(1)[0] == 100
    table.discard_through(100)
    assert table.stamps() == []

    book = EpisodeBook()
    book.add_episode(Episode(0, 7, start_ns=1000, stride_ns=500))
    assert book.episode_at(999) is None
    assert book.episode_at(1499).seed == 7
    assert book.episode_at(1500) is None   # beyond the slot: an episode not heard of yet
    book.add_episode(Episode(1, 8, start_ns=1500, stride_ns=500))
    assert book.episode_at(1500).seed == 8
    book.add_obstacles(None, np.zeros((0, 3)))
    assert book.obstacles_at(10**15) is not None  # open-ended
    assert step_index(1000 + 3 * 50, 1000, 50) == 3


def test_sim_runner_lockstep_gathers_commands_and_strides_episodes():
    scenario = load_scenario(SCENARIO)
    runner = SimRunner(scenario, first_seed=11, episodes=2, filtered=[1], t0_ns=10**9, episode_stride=True)
    dt = runner.dt_ns
    assert runner.stamp_ns == 10**9 and runner.current_episode().stride_ns == (scenario.max_steps + 1) * dt
    stamp = runner.stamp_ns
    assert runner.offer_command(0, stamp, 0.5, 0.1)
    assert not runner.ready()
    assert runner.offer_command(1, stamp, 0.4, -0.2)
    assert not runner.ready()                       # robot 1 is filtered: its status is missing
    runner.offer_status(1, stamp, True, 0.25, False)
    assert runner.ready()
    outcome = runner.step()
    assert outcome.missed == () and runner.stamp_ns == stamp + dt
    np.testing.assert_array_equal(runner.velocity, [[0.5, 0.1], [0.4, -0.2]])
    # A stale command (older stamp) is ignored; a timeout step holds robots still.
    assert not runner.offer_command(0, stamp, 1.0, 1.0)
    outcome = runner.step(hold_missing=True)
    assert outcome.missed == (0, 1)
    np.testing.assert_array_equal(runner.velocity, 0.0)
    # Play to the end of the first episode with stops: the next one starts in its slot.
    while True:
        outcome = runner.step()
        if outcome.ended is not None:
            break
    assert outcome.started.index == 1 and outcome.started.seed == 12
    assert runner.stamp_ns == 10**9 + (scenario.max_steps + 1) * dt
    assert outcome.ended.record.robots[1].filter_calls == 1


def test_sim_runner_records_match_accumulator_semantics():
    """A filtered robot whose status did not arrive counts no filter call for that step."""
    scenario = load_scenario(SCENARIO)
    runner = SimRunner(scenario, first_seed=3, episodes=1, filtered=[0, 1])
    stamp = runner.stamp_ns
    runner.offer_command(0, stamp, 0.0, 0.0)
    runner.offer_command(1, stamp, 0.0, 0.0)
    runner.offer_status(0, stamp, False, 0.0, True)
    outcome = runner.step()
    while outcome.ended is None:
        outcome = runner.step()
    robots = outcome.ended.record.robots
    assert (robots[0].filter_calls, robots[0].backups, robots[1].filter_calls) == (1, 1, 0)
    assert runner.finished


def test_timing_series_summary():
    s = TimingSeries("compute_time", capacity=2)
    for ms in (1.0, 2.0, 3.0, 4.0, 100.0):
        s.add(ms)
    summary = s.summary()
    assert summary["count"] == 5 and summary["p50_ms"] == 3.0 and summary["max_ms"] == 100.0
    table = format_timing_table([{"node": "/sim", "series": "compute_time", **summary}])
    assert "/sim" in table and "compute_time" in table


# --------------------------------------------------------------------------- launch description


def test_pe_launch_defaults_are_the_launch_arguments():
    from pe_bringup.launcher import build_parser

    args = build_parser().parse_args(["eval"])
    defaults = EvalOptions()
    assert (args.scenario, args.pursuer, args.evader, args.mode, args.episodes, args.seed, args.filter,
            args.executor) == (defaults.scenario, defaults.pursuer, defaults.evader, defaults.mode,
                               defaults.episodes, defaults.seed, defaults.filter, defaults.executor)
    with pytest.raises(ValueError, match="mode"):
        EvalOptions(mode="sometimes")
