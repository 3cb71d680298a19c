from glob import glob

from setuptools import find_packages, setup

package_name = "pe_bringup"


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
        repository_data("config/ros"),
        repository_data("config/rqt"),
        repository_data("config/diagnostics"),
        repository_data("config/viz"),
        repository_data("launch"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="pe-stack developers",
    maintainer_email="dev@pe-stack.example",
    description="Bringup: the evaluation graph description, eval.launch.py, pe-launch, "
                "pe-ros-bench, pe-eval, and the rqt view (monitor.launch.py).",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        "pe-eval = pe_bringup.evaluate:main",
        "pe-launch = pe_bringup.launcher:main",
        "pe-ros-bench = pe_bringup.bench:main",
        "pe-rqt = pe_bringup.rqt_open:main",
        "pe-rqt-perspective = pe_bringup.rqt_view:main",
        "pe-report = pe_bringup.report.cli:main",
        "pe-record = pe_bringup.recording:main",
        "pe-live = pe_bringup.live:main",
    ]},
)
