#!/usr/bin/env bash
# Build the image and run the evaluation graph in it (UNTESTED, see docker/README.md).
# Extra arguments go to `ros2 launch pe_bringup eval.launch.py`, e.g.
#   docker/run.sh episodes:=20 mode:=realtime duration:=60
set -euo pipefail
cd "$(dirname "$0")/.."
docker build -f docker/Dockerfile -t pe-stack:kilted .
mkdir -p results
exec docker run --rm -it -e ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}" -v "$PWD/results:/results" pe-stack:kilted \
    ros2 launch pe_bringup eval.launch.py out:=/results/ros-eval "$@"
