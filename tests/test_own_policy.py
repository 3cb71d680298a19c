"""The bring-your-own-policy example (examples/own_policy.py, docs/own_policy.md): a
network not trained here, exported with the contract, runs through pe-eval."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from pe_bringup.evaluate import main as pe_eval
from pe_policy.contract import PolicyContractError, PolicyMetadata, attach_metadata
from pe_policy.policy import load_policy
from pe_sim.scenario import load_scenario

EXAMPLE = Path(__file__).parents[1] / "examples" / "own_policy.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("own_policy", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_own_policy_loads_and_steers_towards_the_opponent(example, tmp_path):
    path = example.export(tmp_path / "mine.onnx")
    scenario = load_scenario("bench_1v1_flee")
    policy = load_policy(str(path), scenario, 0)
    assert policy.metadata.config_hash == "external" and policy.metadata.envelope is not None
    obs = np.zeros((2, policy.spec.dim), dtype=np.float32)
    obs[0, 11], obs[1, 11] = 0.2, -0.2  # opponent to the left, to the right
    action = policy.predict(obs)
    assert action[0, 0] > 0.99 and action[0, 1] > 0.5 and action[1, 1] < -0.5


def test_own_policy_runs_in_pe_eval(example, tmp_path):
    path = example.export(tmp_path / "mine.onnx")
    out = tmp_path / "eval"
    assert pe_eval(["--pursuer", str(path), "--episodes", "8", "--num-envs", "8", "--out", str(out),
                    "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 8 and summary["policies"]["pursuer"] == "mine.onnx +filter"
    assert summary["policy_files"]["pursuer"]["sha256"]


def test_attach_metadata_refuses_a_graph_of_the_wrong_width(example, tmp_path):
    path = example.export(tmp_path / "mine.onnx")
    other = load_scenario("pursuit_2v1")  # more robots: a wider observation
    with pytest.raises(PolicyContractError, match="input 'obs'"):
        attach_metadata(path, PolicyMetadata.for_robot(other, 0, name="x"))
