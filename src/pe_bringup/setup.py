import os
from glob import glob

from setuptools import find_packages, setup

package_name = "pe_bringup"
here = os.path.dirname(os.path.abspath(__file__))


def config_files():
    """config/** (a link to the workspace's config/) -> share/pe_bringup/config/**, where
    pe_sim.scenario.config_dir() finds it on a colcon or pip install."""
    out = {}
    for path in sorted(glob(os.path.join(here, "config", "**", "*.yaml"), recursive=True)):
        rel = os.path.relpath(path, here)
        out.setdefault(os.path.join("share", package_name, os.path.dirname(rel)), []).append(rel)
    return sorted(out.items())


setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch",
         sorted(os.path.relpath(p, here) for p in glob(os.path.join(here, "launch", "*.launch.py")))),
        *config_files(),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="pe-stack developers",
    maintainer_email="dev@pe-stack.example",
    description="Bringup: the evaluation graph description, eval.launch.py, pe-launch, pe-monitor, "
                "pe-ros-bench and pe-eval.",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        "pe-eval = pe_bringup.evaluate:main",
        "pe-launch = pe_bringup.launcher:main",
        "pe-monitor = pe_bringup.monitor:main",
        "pe-ros-bench = pe_bringup.bench:main",
    ]},
)
