"""Bring your own policy: a network trained anywhere, exported to ONNX with the pe
contract, evaluated by ``pe-eval`` like a shipped policy (see ``docs/own_policy.md``).

    .venv/bin/python examples/own_policy.py --out my_pursuer.onnx
    .venv/bin/pe-eval --scenario bench_1v1_flee --pursuer my_pursuer.onnx --episodes 200

The network here is a stand-in for yours: a small torch MLP whose last layer is set by
hand so that it steers towards the evader (the opponent's body-frame direction is in
observation columns 10 and 11, see the observation layout); replace ``make_network``
with your trained model. Any framework works as long as the ONNX graph maps ``obs``
(batch, dim) float32 raw observations to ``action`` (batch, 2) float32 in [-1, 1].
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch
from torch import nn

from pe_policy.contract import PolicyMetadata, attach_metadata
from pe_sim.scenario import load_scenario


def make_network(dim: int) -> nn.Module:
    """Full speed, turn towards the opponent: action = (1, tanh(4 * atan2-ish(dy, dx)))."""
    net = nn.Sequential(nn.Linear(dim, 2), nn.Tanh())
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.copy_(torch.tensor([10.0, 0.0]))  # tanh(10) = 1: full speed
        net[0].weight[1, 11] = 20.0  # opponent's body-frame dy / L: turn towards it
    return net


def export(out: Path, scenario_name: str = "bench_1v1_flee", robot_index: int = 0) -> Path:
    """Export the network for robot ``robot_index`` of the scenario, with the contract."""
    scenario = load_scenario(scenario_name)
    metadata = PolicyMetadata.for_robot(scenario, robot_index, name=out.stem)
    net = make_network(metadata.spec.dim).eval()
    example = torch.zeros(1, metadata.spec.dim)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated but simplest here
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (example,), str(out), input_names=["obs"], output_names=["action"],
                          dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}}, dynamo=False)
    return attach_metadata(out, metadata)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("my_pursuer.onnx"))
    parser.add_argument("--scenario", default="bench_1v1_flee")
    args = parser.parse_args()
    print(f"wrote {export(args.out, args.scenario)}")


if __name__ == "__main__":
    main()
