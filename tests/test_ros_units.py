"""Pure parts of the ROS 2 layer: message conversions (exactness), stamp bookkeeping,
the sim node's stepping logic, timing statistics, and the launch description.

Nothing here starts a node; the message classes of the pip ROS 2 wheels are used
as plain Python objects.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from pe_bringup.graph import (
    LAUNCH_ARGUMENTS,
    EvalOptions,
    eval_graph,
    launch_node_kwargs,
    options_from_strings,
    overrides_yaml,
    ros_arguments,
)
from pe_ros import convert
from pe_ros.state import Episode, EpisodeBook, StateTable, step_index
from pe_ros.timing import TimingSeries, format_timing_table
from pe_sim.scenario import load_scenario
from pe_sim.sim_runner import SimRunner

SCENARIO = "seed_1v1_2obs"
LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "eval.launch.py"


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


def _stub_launch_modules() -> tuple[dict[str, types.ModuleType], list]:
    """Minimal stand-ins for ``launch``/``launch_ros`` (not on PyPI): each class records
    its arguments. Used only to execute eval.launch.py on a pip-only machine."""
    nodes: list = []

    class Recorder:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    class Node(Recorder):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            nodes.append(kwargs)

    class LaunchConfiguration:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context.launch_configurations[self.name]

    class OpaqueFunction(Recorder):
        def __init__(self, function):
            super().__init__(function=function)
            self.function = function

    class LaunchDescription(Recorder):
        def __init__(self, entities):
            super().__init__(entities)
            self.entities = entities

    mods = {name: types.ModuleType(name) for name in (
        "launch", "launch.actions", "launch.event_handlers", "launch.events", "launch.substitutions",
        "launch_ros", "launch_ros.actions")}
    mods["launch"].LaunchDescription = LaunchDescription
    for cls in ("DeclareLaunchArgument", "EmitEvent", "LogInfo", "RegisterEventHandler"):
        setattr(mods["launch.actions"], cls, type(cls, (Recorder,), {}))
    mods["launch.actions"].OpaqueFunction = OpaqueFunction
    mods["launch.event_handlers"].OnProcessExit = type("OnProcessExit", (Recorder,), {})
    mods["launch.events"].Shutdown = type("Shutdown", (Recorder,), {})
    mods["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    mods["launch_ros.actions"].Node = Node
    return mods, nodes


def _launch_file_nodes(values: dict[str, str], monkeypatch) -> tuple[list[dict], list]:
    """Node kwargs that eval.launch.py creates for launch-argument ``values``, and its
    launch arguments. With launch_ros installed the real one is used, else stubs."""
    if importlib.util.find_spec("launch_ros") is not None:  # a full ROS 2 install
        from launch import LaunchContext

        module = _import_launch_file()
        description = module.generate_launch_description()
        context = LaunchContext()
        declared = [e for e in description.entities if type(e).__name__ == "DeclareLaunchArgument"]
        context.launch_configurations.update({a.name: a.default_value[0].text for a in declared})
        context.launch_configurations.update(values)
        opaque = next(e for e in description.entities if type(e).__name__ == "OpaqueFunction")
        actions = opaque.execute(context)
        nodes = [{"package": a.node_package, "executable": a.node_executable}
                 for a in actions if type(a).__name__ == "Node"]
        return nodes, [(a.name, a.default_value[0].text) for a in declared]
    mods, nodes = _stub_launch_modules()
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    module = _import_launch_file()
    description = module.generate_launch_description()
    declared = [e for e in description.entities if type(e).__name__ == "DeclareLaunchArgument"]
    context = types.SimpleNamespace(launch_configurations={
        **{a.args[0]: a.kwargs["default_value"] for a in declared}, **values})
    opaque = next(e for e in description.entities if type(e).__name__ == "OpaqueFunction")
    actions = opaque.function(context)
    handlers = [a for a in actions if type(a).__name__ == "RegisterEventHandler"]
    assert len(handlers) == len(nodes), "every node needs an exit handler (end / fail loudly)"
    return nodes, [(a.args[0], a.kwargs["default_value"]) for a in declared]


def _import_launch_file():
    spec = importlib.util.spec_from_file_location("eval_launch_under_test", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_file_and_pe_launch_share_one_description(monkeypatch, tmp_path):
    values = {"scenario": SCENARIO, "episodes": "3", "filter": "pursuer", "mode": "realtime",
              "evader": "scripted:random", "out": str(tmp_path), "launch_prefix": "chrt -b 0"}
    nodes, declared = _launch_file_nodes(values, monkeypatch)
    # The launch arguments are the description's, with its defaults.
    assert declared == [(name, default) for name, default, _ in LAUNCH_ARGUMENTS]
    specs = eval_graph(options_from_strings(values))
    expected = [launch_node_kwargs(s) for s in specs]
    if nodes and set(nodes[0]) == {"package", "executable"}:   # real launch_ros: compare what it exposes
        expected = [{"package": e["package"], "executable": e["executable"]} for e in expected]
    assert nodes == expected
    assert [s.fqn for s in specs] == ["/sim", "/pursuer/policy", "/pursuer/safety_filter",
                                      "/evader/policy", "/evader/safety_filter"]
    params = {s.fqn: s.parameter_dict for s in specs}
    assert params["/sim"]["mode"] == "realtime" and params["/sim"]["episodes"] == 3
    assert params["/sim"]["filtered_robots"] == ["pursuer"]
    assert params["/pursuer/safety_filter"]["enabled"] is True
    assert params["/evader/safety_filter"]["enabled"] is False
    assert params["/evader/policy"]["policy"] == "scripted:random"
    # pe-launch renders the same specs as launch_ros would: name, namespace, params files,
    # then the overrides as a params file keyed by the node's full name.
    spec = specs[1]
    args = ros_arguments(spec, "/tmp/overrides.yaml")
    assert args == ["--ros-args", "-r", "__node:=policy", "-r", "__ns:=/pursuer",
                    "--params-file", spec.params_files[0], "--params-file", "/tmp/overrides.yaml"]
    assert overrides_yaml(spec).startswith("/pursuer/policy:\n  ros__parameters:\n")
    # The launch prefix: launch_ros' Node(prefix=...), pe-launch's command-line head.
    assert all(s.prefix == "chrt -b 0" for s in specs)
    assert launch_node_kwargs(spec)["prefix"] == "chrt -b 0"
    from pe_bringup.launcher import Launcher, resolve_executable

    assert Launcher([spec]).command(spec, 0)[:4] == ["chrt", "-b", "0", str(resolve_executable(
        spec.package, spec.executable))]
    assert Path(spec.params_files[0]).name == "realtime.yaml"


def test_pe_launch_defaults_are_the_launch_arguments():
    from pe_bringup.launcher import build_parser

    args = build_parser().parse_args(["eval"])
    defaults = EvalOptions()
    assert (args.scenario, args.pursuer, args.evader, args.mode, args.episodes, args.seed, args.filter,
            args.executor) == (defaults.scenario, defaults.pursuer, defaults.evader, defaults.mode,
                               defaults.episodes, defaults.seed, defaults.filter, defaults.executor)
    with pytest.raises(ValueError, match="mode"):
        EvalOptions(mode="sometimes")
