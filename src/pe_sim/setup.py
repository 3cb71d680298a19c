from setuptools import find_packages, setup

package_name = "pe_sim"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
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
            "pe-plot = pe_sim.render:main",
            "pe_sim_node = pe_sim.sim_node:main",
        ],
    },
)
