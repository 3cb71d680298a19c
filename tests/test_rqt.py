"""The saved view in the real rqt, on a running real-time graph.

Under Xvfb, with the real-time graph on its own DDS domain, rqt opens
``config/rqt/pe_stack.perspective``. A test node checks from the ROS graph that
rqt's node (``rqt_gui_py_node_<pid>``) subscribed to every timing topic (each
node's ``~/compute_time_ms``, each robot's ``/sim/<robot>/loop_latency_ms``) and to
``/diagnostics``; then a screenshot of the screen is taken, checked to be
non-blank and kept (its path is printed; a copy goes to ``results/rqt/``).

Needs the real rqt (``bash ../shared/rqt/install.sh .venv``: rqt's upstream Python
plugins, PyQt5, Xvfb, xdotool, imagemagick); skips with the reason otherwise. rqt
ignores SIGTERM and SIGINT inside its Qt loop: it is ended with SIGKILL, by PID.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pe_bringup.graph import EvalOptions, eval_graph
from pe_bringup.launcher import Launcher
from pe_bringup.rqt_view import SHIPPED_SCENARIO, diagnostic_status_names, timing_topics
from pe_sim.package_data import data_path

ROOT = Path(__file__).resolve().parents[1]
RQT = Path(sys.executable).parent / "rqt"
SCREEN = (1600, 1000)
RESULTS = ROOT / "results" / "rqt"


def _missing() -> str | None:
    if not RQT.is_file() or importlib.util.find_spec("rqt_plot") is None:
        return "the real rqt is not installed (bash ../shared/rqt/install.sh .venv)"
    for tool in ("Xvfb", "xdotool", "import"):
        if shutil.which(tool) is None:
            return f"{tool} not found (bash ../shared/rqt/install.sh .venv installs it, as root)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def _start_xvfb() -> tuple[subprocess.Popen, str]:
    """Xvfb on a free display (it picks the number and writes it to a pipe)."""
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not report a display")
    return proc, f":{number}"


def _kill(proc: subprocess.Popen | None, sig: int = signal.SIGKILL) -> None:
    if proc is not None and proc.poll() is None:
        os.kill(proc.pid, sig)
        proc.wait(timeout=10)


def _rqt_subscriptions(node, topics: list[str]) -> dict[str, list[str]]:
    """Per topic, the names of the rqt nodes subscribed to it."""
    return {t: [i.node_name for i in node.get_subscriptions_info_by_topic(t)
                if i.node_name.startswith("rqt_gui_py_node_")] for t in topics}


def _open_view(env: dict[str, str], display: str, log: Path) -> subprocess.Popen:
    """``pe-rqt`` (rqt, once the graph is discovered) with the shipped view, as a user
    starts it (AMENT_PREFIX_PATH: where rqt finds its plugins)."""
    return subprocess.Popen([sys.executable, "-m", "pe_bringup.rqt_open", "--perspective-file",
                             str(data_path("pe_bringup", "config/rqt") / "pe_stack.perspective")],
                            env={**env, "DISPLAY": display, "AMENT_PREFIX_PATH": sys.prefix,
                                 "QT_QPA_PLATFORM": "xcb"},
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_subscriptions(node, rqt: subprocess.Popen, topics: list[str], launcher: Launcher,
                            tmp_path: Path, timeout_s: float) -> list[str]:
    """Wait until rqt subscribed to every topic; the topics still missing at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        mine = f"rqt_gui_py_node_{rqt.pid}"   # a killed earlier rqt stays in the graph a while
        missing = [t for t, names in _rqt_subscriptions(node, topics).items() if mine not in names]
        if not missing or time.monotonic() > deadline or rqt.poll() is not None:
            return missing
        assert not launcher.exited(), f"a node died: {(tmp_path / 'nodes.log').read_text()[-3000:]}"
        time.sleep(0.25)


def _diagnostics(node, names: set[str], timeout_s: float) -> dict:
    """The latest ``/diagnostics`` status of each name, once every one of ``names`` reported
    steps (a rate in its message; before its first step a node says it is waiting)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor

    from pe_ros import qos

    latest: dict = {}
    sub = node.create_subscription(DiagnosticArray, "/diagnostics",
                                   lambda m: latest.update({s.name: s for s in m.status}), qos.DIAGNOSTICS)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout_s
    while (not all(n in latest and " Hz" in latest[n].message for n in names)
           and time.monotonic() < deadline):
        executor.spin_once(timeout_sec=0.1)
    for _ in range(10):   # a little longer: a status under an unexpected name would show up
        executor.spin_once(timeout_sec=0.1)
    executor.remove_node(node)
    node.destroy_subscription(sub)
    return latest


def _screenshot(display: str, path: Path) -> np.ndarray:
    from PIL import Image

    subprocess.run(["import", "-display", display, "-window", "root", str(path)], check=True, timeout=30)
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def test_rqt_opens_the_saved_view_on_a_running_graph(tmp_path, ros_domain):
    import rclpy

    env = {**os.environ, "ROS_DOMAIN_ID": str(ros_domain)}
    options = EvalOptions(scenario=SHIPPED_SCENARIO, pursuer="scripted:proportional_navigation",
                          evader="scripted:flee", mode="realtime", episodes=0, duration=600.0, filter="all")
    topics = [*timing_topics(SHIPPED_SCENARIO), "/diagnostics"]
    launcher = Launcher(eval_graph(options), env, output=(tmp_path / "nodes.log").open("w"))
    xvfb = rqt = None
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain)
    node = rclpy.create_node("rqt_test_probe", context=context)
    try:
        launcher.start()
        xvfb, display = _start_xvfb()
        # The view is opened on a running graph, as a user would.
        deadline = time.monotonic() + 60.0
        while not all(node.count_publishers(t) for t in topics):
            assert not launcher.exited(), f"a node died: {(tmp_path / 'nodes.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the graph did not advertise every timing topic"
            time.sleep(0.25)
        assert not any(_rqt_subscriptions(node, topics).values())   # nothing but rqt subscribes
        # What the runtime monitor will list: every node's status, under the names the
        # aggregator's analyzers group (tests/test_rqt_view.py), with the operator's numbers.
        statuses = _diagnostics(node, set(diagnostic_status_names(SHIPPED_SCENARIO)), 20.0)
        assert set(statuses) == set(diagnostic_status_names(SHIPPED_SCENARIO)), sorted(statuses)
        assert all("Hz, compute p50" in statuses[n].message for n in ("/sim", "/pursuer/policy"))
        assert "interventions" in statuses["/pursuer/safety_filter"].message
        assert {kv.key for kv in statuses["/evader/safety_filter"].values} >= {
            "rate_hz", "compute_p99_ms", "misses", "interventions", "backups"}
        # rqt's node subscribes to every timing topic (rqt_plot) and /diagnostics (runtime monitor).
        rqt = _open_view(env, display, tmp_path / "rqt.log")
        missing = _wait_for_subscriptions(node, rqt, topics, launcher, tmp_path, 40.0)
        assert rqt.poll() is None, f"rqt exited with {rqt.returncode}; its output: {tmp_path / 'rqt.log'}"
        assert not missing, f"rqt did not subscribe to {missing}; its output: {tmp_path / 'rqt.log'}"
        # Xvfb has no window manager: give rqt's window the whole screen, let the plots fill.
        subprocess.run(["xdotool", "search", "--sync", "--onlyvisible", "--name", "rqt", "windowmove", "%@",
                        "0", "0", "windowsize", "%@", str(SCREEN[0]), str(SCREEN[1])],
                       env={**env, "DISPLAY": display}, check=True, timeout=30, capture_output=True)
        # Open the runtime monitor's OK and WARN groups (rows at fixed places of this layout;
        # best effort: the checks below do not depend on it), then let the plots fill.
        for x, y in ((975, 110), (990, 91)):
            subprocess.run(["xdotool", "mousemove", str(x), str(y), "click", "--repeat", "2", "1"],
                           env={**env, "DISPLAY": display}, timeout=10, capture_output=True)
            time.sleep(0.5)
        time.sleep(6.0)
        shot = tmp_path / "rqt_view.png"
        pixels = _screenshot(display, shot)
        RESULTS.mkdir(parents=True, exist_ok=True)
        kept = RESULTS / shot.name
        shutil.copy(shot, kept)
        print(f"rqt screenshot: {shot} (copy: {kept})")
        assert pixels.shape[:2] == (SCREEN[1], SCREEN[0])
        # Non-blank: the screen is not one colour, and rqt's window covers it (not the black root).
        assert pixels.std() > 20.0, f"screenshot looks blank (std {pixels.std():.1f}): {kept}"
        assert (pixels.sum(axis=2) == 0).mean() < 0.05, f"screen mostly black: {kept}"
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, f"too few colours: {kept}"
        assert not launcher.exited()
    finally:
        _kill(rqt)   # rqt ignores SIGTERM/SIGINT: SIGKILL, by PID
        _kill(xvfb, signal.SIGTERM)
        node.destroy_node()
        rclpy.shutdown(context=context)
        launcher.stop()
