"""The ROS 2 graph with real nodes as separate processes over Fast DDS (launch-free).

* lockstep equivalence: the graph started by ``pe-launch``'s machinery plays the
  same episodes as the headless batch evaluation (records byte-equal, every
  state equal to 1e-9);
* the policy and filter nodes fed by this test over topics: commands flow,
  parameters from a YAML file are honoured, the filter stops on a NaN command,
  on a stale state and when the policy node is killed (watchdog);
* bad parameter values make a node refuse to start, naming the parameter.

Each test runs its graph on a DDS domain of its own, checked empty first (the
``ros_domain`` fixture), so parallel runs do not cross-talk. The
test talks to the nodes through a probe node running in a thread of the test
process. Nothing asserts on timing (the measured figures are printed only).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from ros_probe import Probe, world_odometry  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from pe_bringup.graph import EvalOptions, NodeSpec, eval_graph  # noqa: E402
from pe_bringup.launcher import Launcher  # noqa: E402
from pe_policy.policy import load_policy  # noqa: E402
from pe_ros import convert, qos  # noqa: E402
from pe_safety_filter.config import load_filter_config  # noqa: E402
from pe_safety_filter.filter import BatchSafetyFilter, SafetyFilter  # noqa: E402
from pe_sim.batch import BatchSim  # noqa: E402
from pe_sim.evaluation import EVAL_SEED_BASE, run_episodes  # noqa: E402
from pe_sim.metrics import read_jsonl  # noqa: E402
from pe_sim.scenario import load_scenario  # noqa: E402
from pe_sim.scripted import WorldView, make_scripted  # noqa: E402

SCENARIO = "seed_1v1_2obs"
REPO = Path(__file__).resolve().parents[1]


def _env(domain: int) -> dict[str, str]:
    return {**os.environ, "ROS_DOMAIN_ID": str(domain)}


def _log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""


# --------------------------------------------------------------------------- lockstep equivalence


def _headless_trajectory(scenario, policies, batch_filter, filtered, seed):
    """States (pose (N, 3), velocity (N, 2)) of one episode played by the batch core with
    B = 1, in the order of run_episodes' loop; the last one is the terminal state."""
    sim = BatchSim(scenario, 1, seed=seed)
    view = WorldView.of(sim)
    mask = np.zeros((1, scenario.num_robots), dtype=bool)
    mask[:, filtered] = True
    states = [(sim.pose[0].copy(), sim.velocity[0].copy())]
    while True:
        commands = np.stack([p.act(view) for p in policies], axis=1)
        safe, _ = batch_filter.filter(sim.pose, commands, sim.obstacles, sim.n_obstacles, robots=filtered)
        result = sim.step(np.where(mask[..., None], safe, commands), auto_reset=False)
        if result.done[0]:
            states.append((result.final_pose[0].copy(), result.final_velocity[0].copy()))
            return states
        states.append((sim.pose[0].copy(), sim.velocity[0].copy()))


def test_lockstep_graph_reproduces_headless_evaluation(tmp_path, ros_domain):
    domain = ros_domain
    scenario = load_scenario(SCENARIO)
    seed, episodes = EVAL_SEED_BASE + 40, 3
    sources = ["scripted:proportional_navigation", "scripted:random"]
    # The sim waits for the usual subscribers on each odom (2 policies + the robot's filter) plus
    # this test's probe, so the probe sees every state.
    options = EvalOptions(scenario=SCENARIO, pursuer=sources[0], evader=sources[1], episodes=episodes,
                          seed=seed, filter="all", mode="lockstep", out=str(tmp_path / "out"),
                          extra=(("/sim", (("wait_for_subscribers", 4),)),))
    names = [r.name for r in scenario.robots]

    probe = Probe(domain)
    odom: dict[str, dict[int, tuple]] = {n: {} for n in names}
    events: list[dict] = []
    def on_odom(name: str, msg: Odometry) -> None:
        stamp, *state = convert.read_odometry(msg)
        odom[name][stamp] = tuple(state)

    for n in names:
        probe.node.create_subscription(Odometry, f"/{n}/odom", lambda m, n=n: on_odom(n, m), qos.STATE)
    probe.node.create_subscription(String, "/episode", lambda m: events.append(convert.parse_event(m.data)),
                                   qos.EPISODE)
    probe.start()
    log = tmp_path / "graph.log"
    with log.open("w") as sink:
        launcher = Launcher(eval_graph(options), _env(domain), output=sink)
        try:
            launcher.start()
            ok, reason = launcher.wait("sim", timeout=180.0)
        finally:
            launcher.stop()
            probe.close()
    assert ok, f"{reason}\n{_log_tail(log)}"

    # Records: byte-equal to the headless batch evaluation (256-wide batches, auto-reset).
    policies = [load_policy(s, scenario, i) for i, s in enumerate(sources)]
    batch_filter = BatchSafetyFilter(load_filter_config("vcp_cbf"), scenario)
    filtered = [0, 1]
    headless = run_episodes(
        scenario, [p.act for p in policies], episodes, seed=seed, num_envs=episodes,
        action_filter=lambda p, u, o, n: batch_filter.filter(p, u, o, n, robots=filtered),
        filtered_robots=filtered, policy_names=[p.name + " +filter" for p in policies])
    ros = read_jsonl(tmp_path / "out" / "episodes.jsonl")
    warnings = "\n".join(line for line in log.read_text().splitlines()
                         if ("WARN" in line or "ERROR" in line) and "no input" not in line)
    assert [r.to_json() for r in ros] == [r.to_json() for r in headless], warnings
    assert any(r.captured for r in ros)

    # States: every state the sim published and every final state equal the batch core's.
    starts = {e["index"]: e for e in events if e["event"] == "start"}
    ends = {e["index"]: e for e in events if e["event"] == "end"}
    assert sorted(starts) == sorted(ends) == list(range(episodes))
    dt_ns = convert.seconds_to_ns(scenario.dt)
    compared = published = 0
    worst = 0.0
    for k in range(episodes):
        assert starts[k]["seed"] == ends[k]["seed"] == seed + k
        states = _headless_trajectory(scenario, policies, batch_filter, filtered, seed + k)
        assert ends[k]["missed_commands"] == [0, 0]
        final_pose, final_vel = states[-1]
        worst = max(worst, np.abs(np.array(ends[k]["final_pose"]) - final_pose).max(),
                    np.abs(np.array(ends[k]["final_velocity"]) - final_vel).max())
        for step, (pose, vel) in enumerate(states[:-1]):
            published += 1
            stamp = starts[k]["start_ns"] + step * dt_ns
            for i, n in enumerate(names):
                got = odom[n].get(stamp)
                if got is None:
                    continue
                compared += 1
                worst = max(worst, np.abs(np.array(got[:3]) - pose[i]).max(),
                            np.abs(np.array(got[3:]) - vel[i]).max())
    print(f"\nlockstep equivalence: {len(ros)} episodes, {published} states x {len(names)} robots "
          f"published, {compared} compared, max |ROS - headless| = {worst:.3g}")
    assert worst <= 1e-9
    # The observer does not hold the graph back: on a loaded machine it misses states (keep-last
    # 10 at ~1000 steps/s), so how many it saw is not asserted, only that it saw some.
    assert 0 < compared <= published * len(names)


# --------------------------------------------------------------------------- nodes fed by the test


PARAMS_YAML = """\
/**:
  ros__parameters:
    use_sim_time: false
    scenario: seed_1v1_2obs
/**/policy:
  ros__parameters:
    policy: scripted:pure_pursuit
/**/safety_filter:
  ros__parameters:
    pairing: stamp
    nominal_timeout: 0.3
    watchdog_rate: 25.0
"""


def test_policy_and_filter_nodes(tmp_path, ros_domain):
    domain = ros_domain
    scenario = load_scenario(SCENARIO)
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS_YAML)
    specs = [
        NodeSpec("pe_ros", "pe_policy_node", "policy", "/pursuer", (str(params),),
                 (("robot", "pursuer"),)),
        NodeSpec("pe_ros", "pe_safety_filter_node", "safety_filter", "/pursuer", (str(params),),
                 (("robot", "pursuer"),)),
        NodeSpec("pe_ros", "pe_safety_filter_node", "safety_filter", "/evader", (str(params),),
                 (("robot", "evader"),)),
    ]
    probe = Probe(domain)
    node = probe.node
    got: dict[str, dict[int, tuple]] = {"nominal": {}, "pursuer": {}, "evader": {}}
    status: dict[str, dict[int, dict]] = {"pursuer": {}, "evader": {}}
    arrival: dict[str, dict[int, float]] = {"pursuer": {}}

    def on_cmd(key: str, msg: TwistStamped) -> None:
        stamp, v, w = convert.read_twist(msg)
        with probe.lock:
            got[key][stamp] = (v, w)
            if key == "pursuer":
                arrival["pursuer"].setdefault(stamp, time.monotonic())

    def on_status(robot: str, msg: DiagnosticArray) -> None:
        values = {kv.key: kv.value for kv in msg.status[0].values}
        with probe.lock:
            status[robot][convert.stamp_to_ns(msg.header.stamp)] = values

    node.create_subscription(TwistStamped, "/pursuer/cmd_vel_nominal", lambda m: on_cmd("nominal", m),
                             qos.COMMAND)
    for r in ("pursuer", "evader"):
        node.create_subscription(TwistStamped, f"/{r}/cmd_vel", lambda m, r=r: on_cmd(r, m), qos.COMMAND)
        node.create_subscription(DiagnosticArray, f"/{r}/filter_status", lambda m, r=r: on_status(r, m),
                                 qos.STATUS)
    odom_pub = {r: node.create_publisher(Odometry, f"/{r}/odom", qos.STATE) for r in ("pursuer", "evader")}
    nominal_pub = node.create_publisher(TwistStamped, "/evader/cmd_vel_nominal", qos.COMMAND)
    map_pub = node.create_publisher(MarkerArray, "/obstacles", qos.MAP)
    episode_pub = node.create_publisher(String, "/episode", qos.EPISODE)
    probe.start()

    sim = BatchSim(scenario, 1, seed=EVAL_SEED_BASE + 3)
    n_obs = int(sim.n_obstacles[0])
    obstacles = sim.obstacles[0, :n_obs].copy()
    clock = node.get_clock()

    def publish_state(stamp: int, robots=("pursuer", "evader")) -> None:
        for i, r in enumerate(("pursuer", "evader")):
            if r in robots:
                p, v = sim.pose[0, i], sim.velocity[0, i]
                odom_pub[r].publish(world_odometry(stamp, *p, *v))

    log = tmp_path / "nodes.log"
    sink = log.open("w")
    launcher = Launcher(specs, _env(domain), output=sink)
    try:
        launcher.start()
        probe.wait_until(lambda: all(node.count_publishers(t) >= 1 for t in (
            "/pursuer/cmd_vel_nominal", "/pursuer/cmd_vel", "/evader/cmd_vel"))
            and node.count_subscribers("/pursuer/odom") >= 2, 90.0, "the nodes to come up")
        start = clock.now().nanoseconds
        map_pub.publish(convert.obstacle_markers(obstacles, 0, "world", 10.0, 10.0))
        episode_pub.publish(String(data=convert.episode_start_event(0, EVAL_SEED_BASE + 3, start, SCENARIO,
                                                                    obstacles)))
        time.sleep(0.3)

        # 1. Commands flow: nominal (the YAML's pure pursuit) and filtered, with the state's stamp.
        #    (States at 20 Hz until 10 in a row were answered: the very first ones may go
        #    out before DDS matched every reader with every writer.)
        stamps: list[int] = []
        flowing: list[int] = []
        deadline = time.monotonic() + 30.0
        while len(flowing) < 10 and time.monotonic() < deadline:
            stamp = clock.now().nanoseconds
            stamps.append(stamp)
            publish_state(stamp)
            time.sleep(0.05)
            with probe.lock:
                recent = stamps[-12:-2]   # the last two may still be in flight
                # answered with the policy's command, not by a startup watchdog stop
                if len(recent) == 10 and all(s in got["pursuer"] and s in got["nominal"]
                                             and status["pursuer"].get(s, {}).get("backup") == "False"
                                             for s in recent):
                    flowing = recent
        assert len(flowing) >= 10, f"commands did not flow: {len(flowing)} of {len(stamps)} states answered"
        last_stamp = stamps[-1]
        stamps = flowing
        expected = make_scripted("pure_pursuit", scenario, 0)(WorldView.of(sim))[0]
        with probe.lock:
            assert all(got["nominal"][s] == tuple(expected) for s in stamps)
            safe = SafetyFilter(load_filter_config("vcp_cbf"), scenario.robots[0], scenario.half_width,
                                scenario.half_height, scenario.dt).filter(sim.pose[0, 0], expected, obstacles)
            assert all(got["pursuer"][s] == tuple(safe.u_safe) for s in stamps)
            assert all(status["pursuer"][s]["backup"] == "False" for s in stamps)

        # 1b. pe-monitor (the terminal stand-in for rqt) sees every node's timing: the 1 Hz
        #     /diagnostics summaries with their per-step counts (6 s: DDS discovery, then
        #     at least one 1 Hz summary of every node).
        monitor = subprocess.run([sys.executable, "-m", "pe_ros.monitor", "--once", "6"],
                                 env=_env(domain), capture_output=True, text=True, timeout=60)
        assert monitor.returncode == 0, monitor.stderr
        rows = {tuple(line.split()[:2]): line.split() for line in monitor.stdout.splitlines()
                if line.startswith("/")}
        for fqn in ("/pursuer/policy", "/pursuer/safety_filter", "/evader/safety_filter"):
            assert (fqn, "compute_time") in rows, monitor.stdout
        assert int(rows[("/pursuer/safety_filter", "compute_time")][3]) >= 10   # count column

        # 2. Parameters from the YAML file are honoured (read back over the parameter service).
        from rclpy.parameter_client import AsyncParameterClient

        for target, name, value in (("/pursuer/policy", "policy", "scripted:pure_pursuit"),
                                    ("/pursuer/safety_filter", "nominal_timeout", 0.3),
                                    ("/evader/safety_filter", "watchdog_rate", 25.0)):
            client = AsyncParameterClient(node, target)
            assert client.wait_for_services(timeout_sec=10.0)
            future = client.get_parameters([name])
            probe.wait_until(future.done, 10.0, f"{target} {name}")
            param = future.result().values[0]
            assert (param.string_value if isinstance(value, str) else param.double_value) == value

        # 3. Stale state -> stop; 4. NaN command -> stop. The evader has no policy node: the
        #    test is its policy, and sends each nominal command before its state (the filter
        #    answers every state once, and answers states nobody commands with stops).
        old = clock.now().nanoseconds - 400_000_000          # 0.4 s old (max_state_age 0.25 s)
        if old <= last_stamp:
            time.sleep((last_stamp - old) * 1e-9 + 0.01)
            old = clock.now().nanoseconds - 400_000_000
        nominal_pub.publish(convert.fill_twist(TwistStamped(), old, 0.5, 0.5))
        time.sleep(0.05)
        publish_state(old, robots=("evader",))
        fresh = clock.now().nanoseconds
        nominal_pub.publish(convert.fill_twist(TwistStamped(), fresh, math.nan, 0.5))
        time.sleep(0.05)
        publish_state(fresh, robots=("evader",))
        probe.wait_until(
            lambda: status["evader"].get(fresh, {}).get("backup_reason") == "nonfinite_command"
            and status["evader"].get(old, {}).get("backup_reason") == "stale_state"
            and fresh in got["evader"] and old in got["evader"], 10.0, "the evader filter's stops")
        with probe.lock:
            assert got["evader"][fresh] == (0.0, 0.0)
            assert status["evader"][fresh]["backup_reason"] == "nonfinite_command"
            assert got["evader"][old] == (0.0, 0.0)
            assert status["evader"][old]["backup_reason"] == "stale_state"

        # 4b. The `enabled` parameter at run time (as an operator would set it): off, the
        #     nominal command passes unchanged; a non-bool is refused; on again, the CBF acts.
        #     The evader's state: 2 cm from the +x wall, facing it; the command: full speed.
        from rclpy.parameter import Parameter

        evader = scenario.robots[1]
        near_wall = (scenario.half_width - evader.radius - 0.02, 0.0, 0.0, 0.0, 0.0)
        client = AsyncParameterClient(node, "/evader/safety_filter")
        assert client.wait_for_services(timeout_sec=10.0)

        def set_enabled(value) -> bool:
            future = client.set_parameters([Parameter("enabled", value=value)])
            probe.wait_until(future.done, 10.0, f"set enabled={value!r}")
            return future.result().results[0].successful

        def into_the_wall() -> int:
            stamp = clock.now().nanoseconds
            nominal_pub.publish(convert.fill_twist(TwistStamped(), stamp, evader.v_max, 0.0))
            time.sleep(0.05)
            odom_pub["evader"].publish(world_odometry(stamp, *near_wall))
            probe.wait_until(lambda: stamp in got["evader"] and stamp in status["evader"], 10.0,
                             "the evader filter's answer")
            return stamp

        assert set_enabled(False)
        passed = into_the_wall()
        assert not set_enabled("yes")
        assert set_enabled(True)
        guarded = into_the_wall()
        with probe.lock:
            assert got["evader"][passed] == (evader.v_max, 0.0)
            assert status["evader"][passed]["tier"] == "disabled"
            assert status["evader"][passed]["enabled"] == "False"
            assert got["evader"][guarded][0] < 0.5 * evader.v_max   # braked before the wall
            assert status["evader"][guarded]["intervened"] == "True"

        # 5. Kill the policy node: the filter's watchdog stops the robot and keeps stopping it.
        policy = next(r for r in launcher.running if r.spec.name == "policy")
        policy.process.kill()
        policy.process.wait(10.0)
        killed_at = time.monotonic()
        after = []
        for _ in range(30):
            stamp = clock.now().nanoseconds
            after.append(stamp)
            publish_state(stamp)
            time.sleep(0.05)
        probe.wait_until(lambda: sum(s in got["pursuer"] for s in after) >= 10, 10.0, "stops after the kill")
        with probe.lock:
            answered = [s for s in after if s in got["pursuer"]]
            reasons = [status["pursuer"].get(s, {}).get("backup_reason") for s in answered]
            assert all(got["pursuer"][s] == (0.0, 0.0) for s in answered)
            assert all(r == "nominal_timeout" for r in reasons), reasons
            first_stop = min(arrival["pursuer"][s] for s in answered) - killed_at
        print(f"\nwatchdog: first stop {first_stop * 1e3:.0f} ms after the policy was killed "
              f"(nominal_timeout 300 ms); {len(answered)}/{len(after)} later states answered with a stop")
        assert launcher.exited() == [policy]
    finally:
        launcher.stop()
        sink.close()
        probe.close()


# --------------------------------------------------------------------------- bad parameters


BAD = [
    ("pe_policy_node", "/pursuer/policy", "policy", "scripted:teleport", "unknown scripted policy"),
    ("pe_safety_filter_node", "/pursuer/safety_filter", "nominal_timeout", -1.0, "must be > 0"),
    ("pe_sim_node", "/sim", "mode", "sometimes", "must be one of"),
    ("pe_sim_node", "/sim", "episodes", -3, "out of range"),
]


def test_bad_parameters_are_refused_with_a_clear_error(tmp_path, ros_domain):
    from pe_bringup.launcher import resolve_executable

    domain = ros_domain
    procs = []
    for k, (exe, fqn, name, value, _) in enumerate(BAD):
        ns, _, node_name = fqn.rpartition("/")
        params = tmp_path / f"bad{k}.yaml"
        params.write_text(f"{fqn}:\n  ros__parameters:\n    scenario: {SCENARIO}\n    {name}: {value!r}\n"
                          .replace("'", '"'))
        cmd = [resolve_executable(exe.split("_node")[0], exe), "--ros-args", "-r", f"__node:={node_name}",
               *(["-r", f"__ns:={ns}"] if ns else []), "--params-file", str(params)]
        procs.append(subprocess.Popen(cmd, env=_env(domain), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    for proc, (_, fqn, name, _, reason) in zip(procs, BAD, strict=True):
        try:
            out, _ = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 2, out
        assert f"{fqn}: parameter '{name}'" in out and reason in out, out


def test_pe_launch_shows_why_a_node_died(tmp_path, capsys):
    """A node that refuses to start fails the launch (exit 1), and pe-launch prints that
    node's last output, even under --quiet (which writes every node's output to
    <out>/nodes.log); a missing params file is refused before any node starts (exit 2)."""
    from pe_bringup.launcher import main as pe_launch

    out = tmp_path / "run"
    code = pe_launch(["eval", "--scenario", SCENARIO, "--episodes", "1", "--quiet", "--out", str(out),
                      "--robot", "pursuer=scripted:teleport"])
    err = capsys.readouterr().err
    assert code == 1
    assert "FAILED: node pursuer/policy died with exit code 2" in err, err
    assert "unknown scripted policy" in err, err   # the node's own words, from its tail
    assert "scripted:teleport" in (out / "nodes.log").read_text()
    assert pe_launch(["eval", "--params-file", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
