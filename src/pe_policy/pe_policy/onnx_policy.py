"""Learned policies exported to ONNX, run with onnxruntime (no torch, no ROS).

:class:`OnnxPolicy` loads a file written by ``pe-train``/``pe-export`` (see
:mod:`pe_policy.contract`), checks that its observation spec equals the one the
caller builds for its robot and that it was trained for the robot's role, and
refuses to load otherwise. One onnxruntime session (one intra-op and one
inter-op thread) is created at load and reused for every call.

    policy = OnnxPolicy("models/pursuer_bench_flee.onnx", scenario, robot_index=0)
    commands = policy.act(view)          # (B, 2) v m/s, omega rad/s, from world state
    command = policy.command(obs)        # (2,) from one raw observation (dim,)
    actions = policy.predict(obs_batch)  # (B, 2) normalised actions in [-1, 1]
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from pe_policy.contract import INPUT_NAME, OUTPUT_NAME, PolicyContractError, PolicyMetadata
from pe_sim.envs.actions import CommandBounds, to_command
from pe_sim.observation import ObservationBuilder, ObservationSpec
from pe_sim.scenario import Scenario
from pe_sim.scripted import WorldView


def load_onnx_model(path: str | Path) -> Any:
    """The ``onnx.ModelProto`` in ``path``; a file that is not an ONNX model raises
    :class:`PolicyContractError` naming it."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        return onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise PolicyContractError(f"{path}: not a valid ONNX model ({exc})") from None


def make_session(path: str | Path, threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime CPU session pinned to ``threads`` intra-op threads and one inter-op
    thread; a file onnxruntime cannot load raises :class:`PolicyContractError` naming it."""
    if not Path(path).is_file():
        raise FileNotFoundError(2, "no policy file", str(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own (pybind) types for unreadable models
        if type(exc).__module__.startswith("onnxruntime"):
            raise PolicyContractError(f"{path}: not a valid ONNX model ({exc})") from None
        raise


def read_metadata(session_or_path: ort.InferenceSession | str | Path,
                  source: str = "<session>") -> PolicyMetadata:
    """The :class:`PolicyMetadata` of an exported policy (a path, or an open session and
    the ``source`` that names it in errors)."""
    if isinstance(session_or_path, ort.InferenceSession):
        session = session_or_path
    else:
        session, source = make_session(session_or_path), str(session_or_path)
    props = session.get_modelmeta().custom_metadata_map
    return PolicyMetadata.from_props(props, source)


class OnnxPolicy:
    """An exported policy driving robot ``robot_index`` of ``scenario``.

    ``expected_spec`` is the observation spec the caller builds (default: the
    scenario's spec for that robot with 4 obstacles, as every environment here);
    any difference from the policy's spec raises
    :class:`~pe_sim.observation.ObservationSpecMismatch` listing both. A policy
    trained for the other role raises :class:`~pe_policy.contract.PolicyContractError`.
    Commands are the normalised actions mapped onto this robot's bounds.
    """

    def __init__(
        self,
        path: str | Path,
        scenario: Scenario,
        robot_index: int,
        *,
        expected_spec: ObservationSpec | None = None,
        threads: int = 1,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no policy file {self.path}")
        self.name = self.path.name
        self._session = make_session(self.path, threads)
        self.metadata = read_metadata(self._session, str(self.path))
        robot = scenario.robots[robot_index]
        if self.metadata.role != robot.role:
            raise PolicyContractError(
                f"{self.path}: policy was trained for a {self.metadata.role}, robot "
                f"{robot.name!r} of scenario '{scenario.name}' is a {robot.role}")
        expected = expected_spec or ObservationSpec.for_robot(scenario, robot_index)
        self.metadata.spec.check_compatible(expected)
        self.spec: ObservationSpec = self.metadata.spec
        inputs = {i.name: i for i in self._session.get_inputs()}
        if INPUT_NAME not in inputs or inputs[INPUT_NAME].shape[-1] != self.spec.dim:
            raise PolicyContractError(
                f"{self.path}: graph input must be {INPUT_NAME!r} of width {self.spec.dim}, "
                f"got {[(i.name, i.shape) for i in inputs.values()]}")
        self.robot_index = robot_index
        self.scenario = scenario
        self.builder = ObservationBuilder(scenario, robot_index, self.spec.k_obstacles)
        self.bounds = CommandBounds.of(robot)
        trained = (np.array(self.metadata.action_low), np.array(self.metadata.action_high))
        if not self.metadata.trained_with_bounds(self.bounds.low, self.bounds.high):
            warnings.warn(
                f"{self.path}: trained with command bounds low={trained[0].tolist()} "
                f"high={trained[1].tolist()}, robot {robot.name!r} has low={self.bounds.low.tolist()} "
                f"high={self.bounds.high.tolist()}; actions are mapped onto the robot's bounds",
                stacklevel=2)
        self._outputs = [OUTPUT_NAME]

    def predict(self, obs: np.ndarray) -> np.ndarray:
        """Normalised deterministic actions in [-1, 1]: (2,) for one raw observation
        (dim,), (B, 2) for a batch (B, dim)."""
        x = np.asarray(obs, dtype=np.float32)
        single = x.ndim == 1
        if single:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.spec.dim:
            raise ValueError(f"observations must have shape (dim,) or (B, dim) with dim "
                             f"{self.spec.dim}, got {np.shape(obs)}")
        action = self._session.run(self._outputs, {INPUT_NAME: x})[0]
        return action[0] if single else action

    def command(self, obs: np.ndarray) -> np.ndarray:
        """Physical commands (v m/s, omega rad/s): (2,) for one observation, (B, 2) for a batch."""
        return to_command(self.predict(obs), self.bounds)

    def act(self, view: WorldView) -> np.ndarray:
        """Commands (B, 2) for this policy's robot from the batch world state."""
        obs = self.builder.build(view.pose, view.velocity, view.obstacles, view.n_obstacles)
        return to_command(self.predict(obs), self.bounds)

    __call__ = act


__all__ = ["OnnxPolicy", "load_onnx_model", "make_session", "read_metadata"]
