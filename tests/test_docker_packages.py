"""The docker image's Python package set, built and run without Docker.

No Docker engine runs on our machines, so the image is checked part by part: a
fresh venv gets exactly the Python packages ``docker/Dockerfile`` installs
(``docker/requirements.txt``, pinned by ``requirements/constraints.txt``), plus
pip stand-ins for what ``ros:kilted-ros-base`` and the Dockerfile's Debian
packages bring (the ROS 2 wheels of requirements/base.txt, the launch system and
``ros2`` CLI, numpy, PyYAML, SciPy). The workspace is copied as the Dockerfile
copies it, built with the Dockerfile's ``colcon build`` line, and then every node
executable starts and the image's CMD (``ros2 launch ...``, with fewer episodes)
finishes with records.

Needs ../shared/ros2-cli (the launch system and ``ros2`` CLI are on no registry);
elsewhere the test skips and says so. It is the suite's slowest test (a venv
install, about a minute with a warm pip cache).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO.parent / "shared" / "ros2-cli"
BASE_IMAGE_STAND_INS = ("numpy", "PyYAML", "scipy", "colcon-common-extensions")


def dockerfile() -> str:
    return (REPO / "docker" / "Dockerfile").read_text()


def copied_paths() -> list[str]:
    """The workspace paths the Dockerfile copies to /ws."""
    return [src for src, dst in re.findall(r"^COPY (\S+) (/ws/\S+)$", dockerfile(), re.M)]


def image_cmd() -> list[str]:
    return [*__import__("json").loads(re.search(r"^CMD (\[.*\])$", dockerfile(), re.M).group(1))]


def ros_wheels() -> list[str]:
    return [line.strip() for line in (REPO / "requirements" / "base.txt").read_text().splitlines()
            if line.startswith("ros-kilted-")]


@pytest.mark.skipif(not (WHEELS / "install.sh").is_file(),
                    reason="../shared/ros2-cli (the launch system and ros2 CLI wheels) is not here")
def test_the_images_packages_run_the_nodes_and_its_cmd(tmp_path, domain_claim):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "-c", str(REPO / "requirements" / "constraints.txt")]
    subprocess.run([*pip, "-r", str(REPO / "docker" / "requirements.txt"), *ros_wheels(),
                    *BASE_IMAGE_STAND_INS], check=True, timeout=900)
    subprocess.run(["bash", str(WHEELS / "install.sh"), str(venv)], check=True, timeout=300,
                   capture_output=True)
    ws = tmp_path / "ws"
    for path in copied_paths():
        if path.startswith("docker/") or path.startswith("requirements/"):
            continue
        shutil.copytree(REPO / path, ws / path, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", ROS_DOMAIN_ID=str(domain_claim.domain_id))
    build_line = re.search(r"&& (colcon build [^\\\n]*)", dockerfile()).group(1)
    build = subprocess.run(["bash", "-c", build_line], cwd=ws, env=env, capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    def sourced(command: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", f"set +u; source install/setup.bash; {command}"], cwd=ws,
                              env=env, capture_output=True, text=True, timeout=timeout)

    for executable in ("pe_sim_node", "pe_policy_node", "pe_safety_filter_node"):
        bad = sourced(f"ros2 run pe_ros {executable} --ros-args -p executor:=nonsense", 120)
        assert bad.returncode == 2 and "executor" in bad.stderr, (executable, bad.stdout, bad.stderr)
    cmd = [*image_cmd(), "episodes:=2", f"out:={tmp_path / 'results'}"]
    run = sourced(shlex.join(cmd), 300)
    sourced("ros2 daemon stop", 60)   # if a ros2 command started one on this domain
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = (tmp_path / "results" / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 2
