from setuptools import find_packages, setup

package_name = "pe_bringup"

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
    description="TODO",
    license="Apache-2.0",
    entry_points={"console_scripts": ["pe-eval = pe_bringup.evaluate:main"]},
)
