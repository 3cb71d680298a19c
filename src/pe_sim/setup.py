from glob import glob

from setuptools import find_packages, setup

package_name = "pe_sim"


def repository_data(folder: str) -> tuple[str, list[str]]:
    """A top-level folder of the repository (run from this folder, as pip and colcon do),
    installed to share/<package>/<folder>, where pe_sim.package_data finds it."""
    return (f"share/{package_name}/{folder}", sorted(glob(f"../../{folder}/*.*")))


setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        repository_data("config/scenarios"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="pe-stack developers",
    maintainer_email="dev@pe-stack.example",
    description="Pursuit-evasion simulation core, RL environments and ROS 2 sim node.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "pe-sim-bench = pe_sim.bench:main",
        ],
    },
)
