"""The real ROS 2 launch system and command-line tools, as a user runs them.

The workspace is built with ``colcon build`` into a temporary prefix and its
``setup.bash`` sourced; then

* ``ros2 launch pe_bringup eval.launch.py`` with arguments plays exactly the
  episodes asked for (seed, count, scenario, policies by installed name, filter),
  with the records of the headless evaluation;
* every node's effective parameters, read back over the parameter services,
  are the same under ``ros2 launch`` and under ``pe-launch``;
* ``ros2 node list``, ``ros2 topic list / echo / hz`` and ``ros2 param get / set``
  work on the running graph.

Needs the launch system, ``ros2`` and colcon (``bash ../shared/ros2-cli/install.sh
.venv``, which CI runs); elsewhere the tests skip and say so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")

from ros_probe import Probe  # noqa: E402

from pe_policy.evaluate import evaluate  # noqa: E402
from pe_sim.metrics import read_jsonl  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.prefix) / "bin"
NODES = ["/evader/policy", "/evader/safety_filter", "/pursuer/policy", "/pursuer/safety_filter", "/sim"]

needs_ros2_cli = pytest.mark.skipif(
    not (BIN / "ros2").exists() or not (BIN / "colcon").exists(),
    reason="the real ROS 2 launch system, ros2 CLI and colcon are not installed in this venv "
           "(bash ../shared/ros2-cli/install.sh .venv installs them; CI does)")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """The environment of a shell that sourced a colcon install of the workspace."""
    base = tmp_path_factory.mktemp("colcon")
    build = subprocess.run(
        [str(BIN / "colcon"), "--log-base", str(base / "log"), "build", "--base-paths", str(REPO / "src"),
         "--build-base", str(base / "build"), "--install-base", str(base / "install"),
         "--event-handlers", "console_direct-"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    path = f"{BIN}:{os.environ['PATH']}"
    shell = subprocess.run(["bash", "-c", f"set +u; source {base / 'install' / 'setup.bash'}; env -0"],
                           capture_output=True, timeout=60, env={**os.environ, "PATH": path})
    env = dict(item.split("=", 1) for item in shell.stdout.decode().split("\0") if "=" in item)
    env["PYTHONUNBUFFERED"] = "1"
    assert str(base / "install" / "pe_bringup") in env["AMENT_PREFIX_PATH"]
    return env


@pytest.fixture
def ros2_env(installed, domain_claim):
    """The sourced environment on this test's domain; the ``ros2`` daemon that the CLI
    starts on that domain is stopped when the test ends."""
    env = {**installed, "ROS_DOMAIN_ID": str(domain_claim.domain_id)}
    yield env
    ros2(env, "daemon", "stop")


def ros2(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ros2"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@needs_ros2_cli
def test_ros2_launch_plays_exactly_its_arguments(ros2_env, tmp_path):
    env = ros2_env
    out = tmp_path / "run"
    launch = subprocess.run(
        [str(BIN / "ros2"), "launch", "pe_bringup", "eval.launch.py", "episodes:=3", "seed:=424242",
         "scenario:=bench_1v1_flee", "pursuer:=pursuer_bench_flee_filter", "evader:=scripted:flee",
         "filter:=all", "mode:=lockstep", f"out:={out}"],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert launch.returncode == 0, launch.stdout[-3000:] + launch.stderr[-3000:]
    records = read_jsonl(out / "episodes.jsonl")
    assert [r.seed for r in records] == [424242, 424243, 424244]
    # The installed packages ran, with their own share folders (not this checkout).
    where = subprocess.run([sys.executable, "-c", "from pe_sim.package_data import data_root; "
                            "print(data_root('pe_policy'), data_root('pe_bringup'))"],
                           env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert where.stdout.split() == [str(Path(env["COLCON_PREFIX_PATH"]) / p / "share" / p)
                                    for p in ("pe_policy", "pe_bringup")], where.stdout + where.stderr
    headless = evaluate("bench_1v1_flee", {"pursuer": "pursuer_bench_flee_filter",
                                           "evader": "scripted:flee"}, 3, seed=424242, filter="all")
    assert [r.to_json() for r in records] == [r.to_json() for r in headless.records]


def _read_parameters(domain: int, nodes: list[str]) -> dict[str, dict[str, object]]:
    """Every parameter of every node in ``nodes``, read back over its parameter services."""
    from rclpy.parameter import parameter_value_to_python
    from rclpy.parameter_client import AsyncParameterClient

    probe = Probe(domain)
    probe.start()
    try:
        out: dict[str, dict[str, object]] = {}
        for fqn in nodes:
            client = AsyncParameterClient(probe.node, fqn)
            assert client.wait_for_services(timeout_sec=30.0), fqn
            names = _call(probe, client.list_parameters, f"{fqn} parameter names").result.names
            out[fqn] = {}
            for name in sorted(names):
                values = _call(probe, lambda c=client, n=name: c.get_parameters([n]), f"{fqn} {name}").values
                out[fqn][name] = parameter_value_to_python(values[0]) if values else "<unset>"
        return out
    finally:
        probe.close()


def _call(probe: Probe, request, what: str, tries: int = 6, timeout: float = 10.0):
    """A service call's result; the request is sent again when its answer does not come
    (a request sent while the service is still being matched can be lost)."""
    for _ in range(tries):
        future = request()
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            time.sleep(0.02)
        if future.done():
            return future.result()
    raise AssertionError(f"no answer for {what} after {tries} requests")


def _wait_for_nodes(env: dict[str, str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = ros2(env, "node", "list")
        if all(n in listed.stdout.split() for n in NODES):
            return
        time.sleep(0.5)
    raise AssertionError(f"nodes did not come up: {listed.stdout}")


def _stop(proc: subprocess.Popen) -> str:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return out


ARGS = {"scenario": "seed_1v1_2obs", "pursuer": "scripted:pure_pursuit", "evader": "scripted:random",
        "filter": "pursuer", "mode": "realtime", "episodes": "0", "seed": "77",
        "executor": "single_threaded", "filter_config": "vcp_cbf"}


@needs_ros2_cli
def test_launch_arguments_reach_every_node_under_both_launchers_and_the_cli_sees_the_graph(
        ros2_env, domain_claim, tmp_path):
    ros_domain = domain_claim.domain_id
    env = ros2_env
    out = tmp_path / "out"
    launch = subprocess.Popen(
        [str(BIN / "ros2"), "launch", "pe_bringup", "eval.launch.py",
         *(f"{k}:={v}" for k, v in ARGS.items()), f"out:={out}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_for_nodes(env)
        via_ros2_launch = _read_parameters(ros_domain, NODES)
        # The ros2 command-line tools on the running graph.
        topics = ros2(env, "topic", "list").stdout.split()
        assert {"/pursuer/cmd_vel", "/pursuer/odom", "/obstacles", "/diagnostics"} <= set(topics)
        echo = ros2(env, "topic", "echo", "--once", "/pursuer/cmd_vel",
                    "geometry_msgs/msg/TwistStamped", timeout=90)
        assert "linear:" in echo.stdout and "angular:" in echo.stdout, echo.stdout + echo.stderr
        hz = subprocess.run(["timeout", "-s", "INT", "6", str(BIN / "ros2"), "topic", "hz", "/pursuer/odom"],
                            env=env, capture_output=True, text=True, timeout=30)
        rates = [float(x) for x in re.findall(r"average rate: ([0-9.]+)", hz.stdout)]
        assert rates and 15.0 < rates[-1] < 25.0, hz.stdout       # the sim's 20 Hz
        got = ros2(env, "param", "get", "/sim", "first_seed")
        assert "77" in got.stdout, got.stdout + got.stderr
        assert ros2(env, "param", "set", "/pursuer/safety_filter", "enabled",
                    "false").returncode == 0
        assert "False" in ros2(env, "param", "get", "/pursuer/safety_filter",
                               "enabled").stdout
        dump = ros2(env, "param", "dump", "/pursuer/safety_filter").stdout
        assert "pairing: latest" in dump and "nominal_timeout: 0.25" in dump, dump
    finally:
        launch_output = _stop(launch)
    assert via_ros2_launch["/sim"]["episodes"] == 0 and via_ros2_launch["/sim"]["first_seed"] == 77, \
        launch_output[-2000:]
    domain_claim.close()   # pe-launch claims the domain itself

    pe_launch = subprocess.Popen(
        [str(BIN / "pe-launch"), "eval", "--domain-id", str(ros_domain),
         *(f"--{k.replace('_', '-')}={v}" for k, v in ARGS.items()), f"--out={out}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_for_nodes(env)
        via_pe_launch = _read_parameters(ros_domain, NODES)
    finally:
        _stop(pe_launch)
    assert via_pe_launch == via_ros2_launch
    assert via_pe_launch["/pursuer/safety_filter"]["enabled"] is True
    assert via_pe_launch["/evader/safety_filter"]["enabled"] is False
    assert via_pe_launch["/evader/policy"]["policy"] == "scripted:random"
    assert via_pe_launch["/pursuer/safety_filter"]["pairing"] == "latest"
    assert via_pe_launch["/sim"]["executor"] == "single_threaded"


def test_pe_launch_refuses_a_domain_that_holds_our_nodes(domain_claim, tmp_path, capsys):
    """Another graph with our node names on the chosen domain: a clear refusal, exit 2."""
    from pe_bringup.launcher import main as pe_launch

    ros_domain = domain_claim.domain_id
    domain_claim.close()   # pe-launch claims the domain itself
    probe = Probe(ros_domain)
    sim = rclpy.create_node("sim", context=probe.context)
    try:
        probe.start()
        assert pe_launch(["eval", "--domain-id", str(ros_domain), "--episodes", "1",
                          "--out", str(tmp_path)]) == 2
    finally:
        sim.destroy_node()
        probe.close()
    err = capsys.readouterr().err
    assert f"ROS domain {ros_domain} already has nodes named /sim" in err, err


def test_two_graphs_at_once_give_the_headless_records(tmp_path):
    """Two pe-launch runs at the same time on one machine (each picks its own domain) play
    their own episodes, equal to the headless evaluation."""
    runs = []
    for k, seed in enumerate((5000, 6000)):
        out = tmp_path / f"run{k}"
        runs.append((seed, out, subprocess.Popen(
            [str(BIN / "pe-launch"), "eval", "--scenario", "seed_1v1_2obs", "--episodes", "2",
             "--seed", str(seed), "--pursuer", "scripted:proportional_navigation", "--evader",
             "scripted:flee", "--quiet", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    domains = set()
    for seed, out, proc in runs:
        text, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, text[-3000:]
        domains.add(re.search(r"ROS domain (\d+)", text).group(1))
        headless = evaluate("seed_1v1_2obs", {"pursuer": "scripted:proportional_navigation",
                                              "evader": "scripted:flee"}, 2, seed=seed, filter="all")
        ros = [r.to_json() for r in read_jsonl(out / "episodes.jsonl")]
        assert ros == [r.to_json() for r in headless.records], differences(ros, headless.records, out)
    assert len(domains) == 2


def differences(ros: list[str], headless: list, out: Path) -> str:
    """Which fields of which episode differ, and what the nodes said (stops, resends)."""
    lines = []
    for k, (a, b) in enumerate(zip(ros, (r.to_json() for r in headless), strict=False)):
        a, b = json.loads(a), json.loads(b)
        lines += [f"episode {k}: {key}: ros {a[key]} headless {b[key]}" for key in a if a[key] != b.get(key)]
    log = (out / "nodes.log").read_text() if (out / "nodes.log").exists() else ""
    lines += [line for line in log.splitlines() if "WARN" in line or "ERROR" in line][:20]
    return "\n".join(lines)


def test_launch_file_declares_the_graph_arguments():
    """The launch file's arguments are the graph description's, with its defaults."""
    if shutil.which("ros2", path=str(BIN)) is None:
        pytest.skip("launch is not installed in this venv (bash ../shared/ros2-cli/install.sh .venv)")
    import importlib.util

    from pe_bringup.graph import LAUNCH_ARGUMENTS

    spec = importlib.util.spec_from_file_location("eval_launch", REPO / "launch" / "eval.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    declared = [(a.name, a.default_value[0].text if a.default_value else None)
                for a in module.generate_launch_description().entities
                if type(a).__name__ == "DeclareLaunchArgument"]
    assert declared == [(name, default) for name, default, _ in LAUNCH_ARGUMENTS]
