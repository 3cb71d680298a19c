from glob import glob

from setuptools import find_packages, setup

package_name = "pe_training"


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
        repository_data("config/training"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="pe-stack developers",
    maintainer_email="dev@pe-stack.example",
    description=(
        "Offline PPO training (SB3 on the batch VecEnv), ONNX export with the "
        "observation contract, model cards and training/inference benchmarks"
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "pe-train = pe_training.train:main",
            "pe-export = pe_training.export:main",
            "pe-train-bench = pe_training.bench:main",
            "pe-policy-bench = pe_training.policy_bench:main",
            "pe-barriernet-train = pe_training.barriernet.cli:main",
            "pe-barriernet-bench = pe_training.barriernet.bench:main",
            "pe-exploit = pe_training.exploit:main",
            "pe-crossplay = pe_training.crossplay:main",
            "pe-selfplay = pe_training.selfplay:main",
        ],
    },
)
