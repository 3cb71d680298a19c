"""pe-report's ``ros`` backend: a row played through the ROS 2 graph (``pe-launch eval``
in a subprocess; it claims a free DDS domain itself, checked empty, so this test
takes no ``ros_domain``: a domain claimed here would be refused by pe-launch) gives
the batch backend's records.
The graph names an ONNX policy by its source as given, the batch by its file name;
everything else must be equal."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pe_bringup.report.cache import ResultCache
from pe_bringup.report.matrix import FLEE, Matrix, Method, bench_block
from pe_bringup.report.run import run_matrix

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def comparable(record) -> dict:
    data = json.loads(record.to_json())
    for robot in data["robots"]:
        robot["policy"] = robot["policy"].replace(".onnx", "")
    return data


def test_ros_backend_equals_batch_on_a_robustness_variant(tmp_path):
    block = bench_block(variants=True, opponents=(FLEE,))
    fast_evader = next(s for s in block.scenarios if s.key == "bench_fast_evader")
    block = dataclasses.replace(block, scenarios=(fast_evader,),
                                methods=(Method("ppo_posthoc", "PPO + filter", "pursuer_bench_flee"),))
    matrix = Matrix.of((block,), 2, 1_000_000_000)
    cache = ResultCache(tmp_path)
    ros = run_matrix(matrix, cache, backend="ros", progress=False)
    batch = run_matrix(matrix, cache, backend="batch", progress=False)
    assert ros[0].played_chunks == batch[0].played_chunks == 1      # different cache keys per backend
    assert len(ros[0].records) == 2
    assert [comparable(r) for r in ros[0].records] == [comparable(r) for r in batch[0].records]


def test_episodes_of_the_ros_graph_are_recorded(tmp_path):
    """What ``pe-launch eval --record`` will do: the graph's records (policies named by
    path) replayed exactly and written as rosbag2 folders."""
    import subprocess
    import sys
    from pathlib import Path

    from pe_bringup.recording import record_results
    from pe_policy.policy import resolve_source

    launcher = Path(sys.executable).with_name("pe-launch")
    done = subprocess.run([str(launcher), "eval", "--scenario", "bench_1v1_flee", "--episodes", "2",
                           "--pursuer", resolve_source("pursuer_bench_flee"), "--evader", "scripted:flee",
                           "--filter", "all", "--out", str(tmp_path), "--quiet"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    bags = record_results(tmp_path)                  # raises if a replay differs from its record
    assert len(bags) == 2 and all((b / "metadata.yaml").is_file() for b in bags)
