"""The saved rqt view (pe_bringup.rqt_view), the aggregator's analyzers and monitor.launch.py,
without a display (the view in the real rqt: tests/test_rqt.py)."""

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pe_bringup.rqt_view import (
    ROBOT_MONITOR,
    SHIPPED_SCENARIO,
    analyzers_file,
    compute_time_topics,
    diagnostic_status_names,
    loop_latency_topics,
    monitor_nodes,
    perspective,
    timing_topics,
)
from pe_sim.package_data import data_path

ROOT = Path(__file__).resolve().parents[1]
MONITOR_LAUNCH = ROOT / "launch" / "monitor.launch.py"


def _settings(data: dict) -> dict:
    """A perspective's values as qt_gui reads them (``repr`` literals evaluated)."""
    keys = {k: ast.literal_eval(v["repr"]) for k, v in data.get("keys", {}).items()}
    return {"keys": keys, "groups": {g: _settings(sub) for g, sub in data.get("groups", {}).items()}}


def test_view_plots_every_nodes_compute_time_and_every_robots_loop_latency():
    assert compute_time_topics("pursuit_2v1") == [
        "/sim/compute_time_ms", "/pursuer_0/policy/compute_time_ms",
        "/pursuer_0/safety_filter/compute_time_ms", "/pursuer_1/policy/compute_time_ms",
        "/pursuer_1/safety_filter/compute_time_ms", "/evader/policy/compute_time_ms",
        "/evader/safety_filter/compute_time_ms"]
    assert loop_latency_topics("pursuit_2v1") == [
        "/sim/pursuer_0/loop_latency_ms", "/sim/pursuer_1/loop_latency_ms", "/sim/evader/loop_latency_ms"]
    view = _settings(json.loads(json.dumps(perspective("pursuit_2v1"))))["groups"]["pluginmanager"]
    assert view["keys"]["running-plugins"] == {
        "rqt_plot/Plot": [1, 2], "rqt_runtime_monitor/RuntimeMonitor": [1], "rqt_topic/TopicPlugin": [1]}
    plots = [view["groups"][f"plugin__rqt_plot__Plot__{serial}"]["groups"]["plugin"] for serial in (1, 2)]
    plotted = [t for plot in plots for t in plot["keys"]["topics"]]
    assert plotted == [f"{t}/data" for t in timing_topics("pursuit_2v1")]
    with_monitor = perspective("pursuit_2v1", robot_monitor=True)["groups"]["pluginmanager"]
    assert ROBOT_MONITOR in ast.literal_eval(with_monitor["keys"]["running-plugins"]["repr"])


def test_shipped_perspective_is_the_generated_one():
    shipped = data_path("pe_bringup", "config/rqt") / "pe_stack.perspective"
    assert json.loads(shipped.read_text()) == perspective(SHIPPED_SCENARIO), (
        "regenerate: pe-rqt-perspective --out config/rqt/pe_stack.perspective")


def _matches(rule: dict, name: str) -> bool:
    """GenericAnalyzer's matching (startswith / contains on the status name)."""
    return (any(name.startswith(p) for p in rule.get("startswith", []))
            or any(c in name for c in rule.get("contains", [])))


def test_aggregator_groups_every_status_of_the_graph_into_one_group():
    params = yaml.safe_load(analyzers_file().read_text())["analyzers"]["ros__parameters"]
    rules = {v["path"]: v for v in params.values() if isinstance(v, dict)}
    assert all(r["type"] == "diagnostic_aggregator/GenericAnalyzer" for r in rules.values())
    # The status names pe_ros.diagnostics publishes (tests/test_rqt.py checks them on a live graph).
    names = diagnostic_status_names("pursuit_2v1")
    assert "/pursuer_1/safety_filter" in names and "/sim: loop_latency/evader" in names
    groups = {name: [path for path, rule in rules.items() if _matches(rule, name)] for name in names}
    assert all(len(g) == 1 for g in groups.values()), groups
    assert groups["/sim"] == groups["/sim: loop_latency/evader"] == ["Simulation"]
    assert groups["/pursuer_1/policy"] == ["Policies"]
    assert groups["/evader/safety_filter"] == ["Safety filters"]


def test_monitor_launch_opens_the_view_and_starts_the_aggregator(tmp_path):
    pytest.importorskip("launch_ros", reason="launch_ros not installed (bash ../shared/ros2-cli/install.sh "
                        ".venv, or a full ROS 2 install)")
    from launch import LaunchContext

    spec = importlib.util.spec_from_file_location("monitor_launch_under_test", MONITOR_LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = [e for e in description.entities if type(e).__name__ == "DeclareLaunchArgument"]
    assert [(a.name, a.default_value[0].text) for a in declared] == [
        ("scenario", SHIPPED_SCENARIO), ("aggregator", "true")]
    opaque = next(e for e in description.entities if type(e).__name__ == "OpaqueFunction")
    for aggregator in ("true", "false"):
        context = LaunchContext()
        context.launch_configurations.update(scenario="pursuit_2v1", aggregator=aggregator)
        actions = opaque.execute(context)
        nodes = [(a.node_package, a.node_executable) for a in actions if type(a).__name__ == "Node"]
        expected = [("pe_bringup", "pe-rqt")]
        if aggregator == "true":
            expected.append(("diagnostic_aggregator", "aggregator_node"))
        assert nodes == expected
    kwargs = monitor_nodes("pursuit_2v1", aggregator=True)
    assert kwargs[0]["arguments"] == ["--scenario", "pursuit_2v1", "--robot-monitor"]
    assert kwargs[1]["parameters"] == [str(analyzers_file())]
    assert monitor_nodes("open_1v1", aggregator=False)[0]["arguments"] == ["--scenario", "open_1v1"]


def test_perspective_command_writes_the_view_and_rejects_a_bad_scenario(tmp_path):
    out = tmp_path / "v.perspective"
    ok = subprocess.run([sys.executable, "-m", "pe_bringup.rqt_view", "--scenario", "pursuit_2v1",
                         "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(out.read_text()) == perspective("pursuit_2v1")
    bad = subprocess.run([sys.executable, "-m", "pe_bringup.rqt_view", "--scenario", "nope",
                          "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "pe-rqt-perspective: error: no scenario named 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_pe_rqt_waits_for_the_plotted_topics_of_the_view_and_rejects_a_bad_one(tmp_path):
    from pe_bringup.rqt_open import plotted_topics

    shipped = data_path("pe_bringup", "config/rqt") / "pe_stack.perspective"
    assert plotted_topics(shipped) == timing_topics(SHIPPED_SCENARIO)
    bad = tmp_path / "bad.perspective"
    bad.write_text("{not json")
    for args in (["--perspective-file", str(bad)], ["--perspective-file", str(tmp_path / "none")],
                 ["--scenario", "nope"]):
        run = subprocess.run([sys.executable, "-m", "pe_bringup.rqt_open", *args],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 2, run.stderr
        assert run.stderr.startswith("pe-rqt: error: cannot use the view:"), run.stderr
        assert "Traceback" not in run.stderr
