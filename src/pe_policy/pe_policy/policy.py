"""One interface for every policy that can drive a robot.

A policy answers, for its robot, a batch of world states with commands
(B, 2) = (v m/s, omega rad/s) inside the robot's bounds. Scripted controllers
and learned ONNX policies look the same to the evaluation and to the ROS
policy node, which therefore do not care which kind they run.

Sources (strings, as on the command line and in launch arguments):

* ``scripted:<kind>`` with kind in :data:`pe_sim.scripted.KINDS`
* a path to an exported ``.onnx`` policy (see :mod:`pe_policy.onnx_policy`)
* the name of a shipped policy (``models/<name>.onnx``, installed with this
  package), e.g. ``pursuer_bench_flee_filter``
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from pe_sim.cli import UserError
from pe_sim.observation import ObservationSpec
from pe_sim.package_data import data_path, resolve_named
from pe_sim.scenario import Scenario
from pe_sim.scripted import DEFAULT_KIND, WorldView, make_scripted

SCRIPTED_PREFIX = "scripted:"
#: The shipped default pursuer (``models/selfplay_envelope_full_pursuer.onnx``: self-play
#: against a pool over the benchmark's whole operating envelope, 0-4 obstacles, evader
#: speeds 0.90-0.98 x and 16-24 m arenas, the filter in the loop; docs/selfplay.md), what
#: ``make eval`` and ``ros2 launch pe_bringup eval.launch.py`` run.
DEFAULT_PURSUER = "selfplay_envelope_full_pursuer"
#: The policy of each role when an evaluation tool is not told one (pe-eval, pe-launch,
#: eval.launch.py, the policy node): the shipped default pursuer, and the scripted
#: evader of :data:`pe_sim.scripted.DEFAULT_KIND`.
DEFAULT_SOURCES = {"pursuer": DEFAULT_PURSUER, "evader": SCRIPTED_PREFIX + DEFAULT_KIND["evader"]}


@runtime_checkable
class Policy(Protocol):
    """Commands for one robot from the batch world state."""

    #: A short name for reports, e.g. "scripted:flee" or "pursuer_bench.onnx".
    name: str
    #: The observation spec a learned policy was trained with (None for scripted ones).
    spec: ObservationSpec | None

    def act(self, view: WorldView) -> np.ndarray:
        """Commands (B, 2) for this policy's robot."""
        ...


class ScriptedPolicyAdapter:
    """A :class:`pe_sim.scripted.ScriptedPolicy` behind the :class:`Policy` interface."""

    spec = None

    def __init__(self, kind: str, scenario: Scenario, robot_index: int) -> None:
        self.name = SCRIPTED_PREFIX + kind
        self._policy = make_scripted(kind, scenario, robot_index)

    def act(self, view: WorldView) -> np.ndarray:
        return self._policy(view)


def shipped_policies() -> list[str]:
    """Names of the shipped policies (``models/<name>.onnx``)."""
    return sorted(p.stem for p in data_path("pe_policy", "models").glob("*.onnx"))


def resolve_source(source: str) -> str:
    """``source`` with a shipped policy's name replaced by its file's path."""
    if source.startswith(SCRIPTED_PREFIX) or "/" in source or source.endswith(".onnx"):
        return source
    if source not in shipped_policies():
        from pe_sim.config_schema import closest

        raise UserError(f"unknown policy source {source!r}{closest(source, shipped_policies())}: use "
                        f"'scripted:<kind>', a path to a .onnx file or a shipped policy "
                        f"({', '.join(shipped_policies())})")
    return str(resolve_named(source, "pe_policy", "models", "policy", suffix=".onnx"))


def load_policy(source: str, scenario: Scenario, robot_index: int) -> Policy:
    """The policy named by ``source`` for robot ``robot_index`` of ``scenario``.

    Learned policies check their observation spec against the one this scenario
    and robot produce, and refuse to load on a mismatch."""
    if source.startswith(SCRIPTED_PREFIX):
        return ScriptedPolicyAdapter(source[len(SCRIPTED_PREFIX):], scenario, robot_index)
    path = Path(resolve_source(source))
    if path.suffix == ".onnx":
        from pe_policy.barriernet_policy import BarrierNetPolicy, is_barriernet_onnx
        from pe_policy.onnx_policy import OnnxPolicy

        if not path.is_file():
            raise FileNotFoundError(2, "no policy file", str(path))
        if is_barriernet_onnx(path):
            return BarrierNetPolicy.from_onnx(path, scenario, robot_index)
        return OnnxPolicy(path, scenario, robot_index)
    raise UserError(f"unknown policy source {source!r}: use 'scripted:<kind>', a shipped policy's "
                    "name or a path to a .onnx file")
