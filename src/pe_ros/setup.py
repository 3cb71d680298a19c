from setuptools import find_packages, setup

package_name = "pe_ros"

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
    description="The ROS 2 runtime of the pursuit-evasion stack: the sim, policy and safety-filter "
                "nodes, their shared node code (parameters, QoS, conversions, timing, diagnostics) "
                "and pe-monitor.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "pe_sim_node = pe_ros.sim_node:main",
            "pe_policy_node = pe_ros.policy_node:main",
            "pe_safety_filter_node = pe_ros.filter_node:main",
            "pe-monitor = pe_ros.monitor:main",
        ],
    },
)
