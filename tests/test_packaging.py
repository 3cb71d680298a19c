"""Each ROS 2 package declares what it imports, and the cores import no ROS.

package.xml lists every dependency: workspace packages, ROS packages and rosdep
keys as ``<exec_depend>``, and Python packages that have no rosdep key in one
``<!-- pip: a, b -->`` comment. The check compares that list with the imports of
the package's modules (and, for pe_bringup, of the launch files it installs).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.name for p in (REPO / "src").iterdir() if (p / "package.xml").is_file())
CORES = ("pe_sim", "pe_safety_filter", "pe_policy", "pe_training")
ROSDEP = {"numpy": "python3-numpy", "yaml": "python3-yaml", "scipy": "python3-scipy",
          "matplotlib": "python3-matplotlib"}
PIP = {"stable_baselines3": "stable-baselines3", "google": "protobuf"}
ROS_PACKAGES = {"rclpy", "launch", "launch_ros", "ament_index_python", "rcl_interfaces", "builtin_interfaces",
                "std_msgs", "geometry_msgs", "nav_msgs", "visualization_msgs", "diagnostic_msgs",
                "rosgraph_msgs"}


def imports(files: list[Path]) -> set[str]:
    names: set[str] = set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "launch_testing"}


def sources(package: str) -> list[Path]:
    files = sorted((REPO / "src" / package / package).rglob("*.py"))
    if package == "pe_bringup":
        files += sorted((REPO / "launch").glob("*.launch.py"))
    return files


def declared(package: str) -> set[str]:
    text = (REPO / "src" / package / "package.xml").read_text()
    deps = set(re.findall(r"<exec_depend>([^<]+)</exec_depend>", text))
    for listed in re.findall(r"<!-- pip: ([^(]+?)(?: \(|-->)", text):
        deps |= {name.strip() for name in listed.split(",") if name.strip()}
    return deps


def launched(package: str) -> set[str]:
    """Packages that are run, not imported: monitor.launch.py's nodes and the rqt plugins
    of the view (pe_bringup.rqt_view)."""
    if package != "pe_bringup":
        return set()
    from pe_bringup.rqt_view import SHIPPED_SCENARIO, monitor_nodes, perspective

    nodes = {n["package"] for n in monitor_nodes(SHIPPED_SCENARIO, aggregator=True)}
    running = perspective(SHIPPED_SCENARIO, robot_monitor=True)["groups"]["pluginmanager"]["keys"]
    plugins = {plugin.split("/")[0] for plugin in ast.literal_eval(running["running-plugins"]["repr"])}
    return (nodes | plugins) - {package}


def expected(package: str) -> set[str]:
    out = launched(package)
    for name in imports(sources(package)) - {package}:
        out.add(ROSDEP.get(name) or PIP.get(name) or name)
    return out


@pytest.mark.parametrize("package", PACKAGES)
def test_package_xml_lists_exactly_what_the_package_imports(package):
    assert declared(package) == expected(package)


@pytest.mark.parametrize("package", CORES)
def test_cores_carry_no_ros(package):
    assert not (imports(sources(package)) & ROS_PACKAGES)
    assert not (declared(package) & ROS_PACKAGES)


def test_no_cycles_between_packages():
    graph = {p: {d for d in declared(p) if d in PACKAGES} for p in PACKAGES}
    def visit(p: str, path: tuple[str, ...]) -> None:
        assert p not in path, f"cycle: {' -> '.join((*path, p))}"
        for d in graph[p]:
            visit(d, (*path, p))

    for p in PACKAGES:
        visit(p, ())
