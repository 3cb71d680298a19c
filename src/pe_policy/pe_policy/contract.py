"""The contract an exported policy carries: ONNX metadata keys and their meaning.

An exported policy is an ONNX graph with one input ``obs`` (float32, shape
(batch, dim)) holding *raw* observations as built by
:class:`pe_sim.observation.ObservationBuilder`, and one output ``action``
(float32, shape (batch, 2)) holding the deterministic action in the
normalised convention of :mod:`pe_sim.envs.actions` (clipped to [-1, 1]).
Observation normalisation is folded into the graph, so the caller feeds raw
observations. The graph's ``metadata_props`` hold (all values are strings):

==========================  ====================================================
``pe.format``               contract version (:data:`FORMAT_VERSION`)
``pe.observation_spec``     JSON of :meth:`ObservationSpec.to_dict`
``pe.action_bounds``        JSON ``{"low": [v_min, -omega_max], "high": [...]}``
                            of the robot it was trained for (m/s, rad/s)
``pe.action_convention``    how ``action`` maps to commands (linear, clipped)
``pe.role``                 ``pursuer`` or ``evader``
``pe.scenario``             name of the training scenario
``pe.training_config_hash`` hash of the resolved training config
``pe.obs_normalization``    JSON ``{"epsilon", "clip"}`` (mean/var are in the graph)
``pe.name``                 the policy's name (training run name)
``pe.envelope``             optional JSON of :class:`Envelope`: the scenarios it was
                            trained for (obstacle count and radii, speeds, arena)
==========================  ====================================================

The first six keys are required (:data:`REQUIRED_KEYS`); ``docs/own_policy.md``
shows how to write them for a policy trained elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pe_sim.cli import UserError
from pe_sim.observation import ObservationSpec

FORMAT_VERSION = "1"
INPUT_NAME = "obs"
OUTPUT_NAME = "action"
ACTION_CONVENTION = "linear [-1,1] -> [low, high] per component, clipped"

KEY_FORMAT = "pe.format"
KEY_SPEC = "pe.observation_spec"
KEY_BOUNDS = "pe.action_bounds"
KEY_CONVENTION = "pe.action_convention"
KEY_ROLE = "pe.role"
KEY_SCENARIO = "pe.scenario"
KEY_CONFIG_HASH = "pe.training_config_hash"
KEY_OBS_NORM = "pe.obs_normalization"
KEY_NAME = "pe.name"
KEY_ENVELOPE = "pe.envelope"
#: ``pe.training_config_hash`` of a policy not trained by this repository.
EXTERNAL_CONFIG_HASH = "external"
REQUIRED_KEYS = (KEY_FORMAT, KEY_SPEC, KEY_BOUNDS, KEY_ROLE, KEY_SCENARIO, KEY_CONFIG_HASH)


class PolicyContractError(UserError, ValueError):
    """An exported policy's metadata is missing or malformed."""


@dataclass(frozen=True)
class Envelope:
    """The operating envelope of a policy: the scenarios it was trained on.

    ``obstacle_count`` is the [min, max] number of obstacles per episode (fixed plus
    random), ``obstacle_radius`` the [min, max] radius (m, [0, 0] without obstacles),
    ``v_max`` and ``omega_max`` the [min, max] over every robot's speed bound (m/s) and
    turn-rate bound (rad/s), ``arena`` the (width, height) in m."""

    obstacle_count: tuple[int, int]
    obstacle_radius: tuple[float, float]
    v_max: tuple[float, float]
    omega_max: tuple[float, float]
    arena: tuple[float, float]

    @classmethod
    def of(cls, scenario: Any) -> Envelope:
        """The envelope a :class:`pe_sim.scenario.Scenario` spans, over all its variants
        (speed bounds over every variant's robots; the arena of the largest variant)."""
        o = scenario.obstacles
        radii = [r for _, _, r in o.fixed] + (list(o.radius) if o.count[1] > 0 else [])
        variants = scenario.variants_of()
        v = [r.v_max for s in variants for r in s.robots]
        w = [r.omega_max for s in variants for r in s.robots]
        largest = max(variants, key=lambda s: s.arena_width * s.arena_height)
        return cls(obstacle_count=(len(o.fixed) + o.count[0], o.max_count),
                   obstacle_radius=(min(radii), max(radii)) if radii else (0.0, 0.0),
                   v_max=(min(v), max(v)), omega_max=(min(w), max(w)),
                   arena=(largest.arena_width, largest.arena_height))

    def to_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Envelope:
        return cls(**{k: tuple(data[k]) for k in ("obstacle_count", "obstacle_radius", "v_max",
                                                   "omega_max", "arena")})

    def departures(self, scenario: Any, tol: float = 1e-6) -> list[str]:
        """How ``scenario`` leaves this envelope (empty when it stays inside)."""
        there = Envelope.of(scenario)
        out = []
        for key, unit in (("obstacle_count", ""), ("obstacle_radius", " m"), ("v_max", " m/s"),
                          ("omega_max", " rad/s")):
            lo, hi = getattr(self, key)
            s_lo, s_hi = getattr(there, key)
            if key == "obstacle_radius" and there.obstacle_count[1] == 0:
                continue
            if s_lo < lo - tol or s_hi > hi + tol:
                out.append(f"{key} {s_lo:g}-{s_hi:g}{unit} outside the trained {lo:g}-{hi:g}{unit}")
        if there.arena[0] > self.arena[0] + tol or there.arena[1] > self.arena[1] + tol:
            out.append(f"arena {there.arena[0]:g} x {there.arena[1]:g} m larger than the trained "
                       f"{self.arena[0]:g} x {self.arena[1]:g} m")
        return out


@dataclass(frozen=True)
class PolicyMetadata:
    """What an exported policy declares about itself."""

    spec: ObservationSpec
    action_low: tuple[float, float]
    action_high: tuple[float, float]
    role: str
    scenario: str
    config_hash: str
    name: str = ""
    obs_normalization: dict[str, Any] = field(default_factory=dict)
    envelope: Envelope | None = None
    #: Every (low, high) command bound the policy trained with when its scenario's variants
    #: gave its robot different ones (e.g. evader speeds); empty otherwise.
    variant_bounds: tuple[tuple[tuple[float, float], tuple[float, float]], ...] = ()

    @classmethod
    def for_robot(cls, scenario: Any, robot_index: int, name: str, *, k_obstacles: int = 4,
                  config_hash: str = EXTERNAL_CONFIG_HASH) -> PolicyMetadata:
        """The metadata of a policy for robot ``robot_index`` of ``scenario`` (a
        :class:`pe_sim.scenario.Scenario`): its observation spec with ``k_obstacles``
        obstacle slots, its command bounds, role and the scenario's envelope.
        ``config_hash`` identifies how it was trained (default: trained elsewhere)."""
        robot = scenario.robots[robot_index]
        bounds = {((r.v_min, -r.omega_max), (r.v_max, r.omega_max))
                  for r in (v.robots[robot_index] for v in scenario.variants_of())}
        return cls(spec=ObservationSpec.for_robot(scenario, robot_index, k_obstacles),
                   action_low=(robot.v_min, -robot.omega_max), action_high=(robot.v_max, robot.omega_max),
                   role=robot.role, scenario=scenario.name, config_hash=config_hash, name=name,
                   envelope=Envelope.of(scenario),
                   variant_bounds=tuple(sorted(bounds)) if len(bounds) > 1 else ())

    def trained_with_bounds(self, low: Any, high: Any, tol: float = 1e-9) -> bool:
        """Whether the policy trained with command bounds (``low``, ``high``)."""
        return any(np.allclose(lo, low, atol=tol) and np.allclose(hi, high, atol=tol)
                   for lo, hi in ((self.action_low, self.action_high), *self.variant_bounds))

    def to_props(self) -> dict[str, str]:
        """The ``metadata_props`` key -> string value mapping."""
        return {
            KEY_FORMAT: FORMAT_VERSION,
            KEY_SPEC: json.dumps(self.spec.to_dict(), sort_keys=True),
            KEY_BOUNDS: json.dumps({"low": list(self.action_low), "high": list(self.action_high)}
                                   | ({"variants": [[list(lo), list(hi)] for lo, hi in self.variant_bounds]}
                                      if self.variant_bounds else {})),
            KEY_CONVENTION: ACTION_CONVENTION,
            KEY_ROLE: self.role,
            KEY_SCENARIO: self.scenario,
            KEY_CONFIG_HASH: self.config_hash,
            KEY_OBS_NORM: json.dumps(self.obs_normalization, sort_keys=True),
            KEY_NAME: self.name,
        } | ({KEY_ENVELOPE: json.dumps(self.envelope.to_dict(), sort_keys=True)} if self.envelope else {})

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str = "<policy>") -> PolicyMetadata:
        """Parse ``metadata_props``; :class:`PolicyContractError` names what is wrong."""
        missing = [k for k in REQUIRED_KEYS if k not in props]
        if missing:
            raise PolicyContractError(f"{source}: not an exported pe policy, metadata lacks {missing} "
                                      f"(has {sorted(props)})")
        if props[KEY_FORMAT] != FORMAT_VERSION:
            raise PolicyContractError(f"{source}: contract format {props[KEY_FORMAT]!r}, "
                                      f"this library reads {FORMAT_VERSION!r}")
        try:
            spec = ObservationSpec.from_dict(json.loads(props[KEY_SPEC]))
            bounds = json.loads(props[KEY_BOUNDS])
            low = tuple(float(x) for x in bounds["low"])
            high = tuple(float(x) for x in bounds["high"])
            variant_bounds = tuple((tuple(map(float, lo)), tuple(map(float, hi)))
                                   for lo, hi in bounds.get("variants", []))
            norm = json.loads(props.get(KEY_OBS_NORM, "{}"))
            envelope = Envelope.from_dict(json.loads(props[KEY_ENVELOPE])) if KEY_ENVELOPE in props else None
        except (KeyError, TypeError, ValueError) as exc:
            raise PolicyContractError(f"{source}: malformed metadata: {exc}") from exc
        if len(low) != 2 or len(high) != 2:
            raise PolicyContractError(f"{source}: action bounds must have 2 components, got {bounds}")
        return cls(spec=spec, action_low=low, action_high=high, role=props[KEY_ROLE],  # type: ignore[arg-type]
                   scenario=props[KEY_SCENARIO], config_hash=props[KEY_CONFIG_HASH],
                   name=props.get(KEY_NAME, ""), obs_normalization=norm, envelope=envelope,
                   variant_bounds=variant_bounds)  # type: ignore[arg-type]


def attach_metadata(path: str | Path, metadata: PolicyMetadata) -> Path:
    """Write ``metadata`` into the ONNX file at ``path`` (replacing its ``metadata_props``),
    after checking the graph has the contract's input ``obs`` (batch, spec.dim) and output
    ``action`` (batch, 2); :class:`PolicyContractError` names what does not fit."""
    import onnx

    path = Path(path)
    model = onnx.load(str(path))
    inputs = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim]
              for i in model.graph.input}
    outputs = [o.name for o in model.graph.output]
    if INPUT_NAME not in inputs or inputs[INPUT_NAME][-1:] != [metadata.spec.dim]:
        raise PolicyContractError(f"{path}: the graph needs input {INPUT_NAME!r} of shape (batch, "
                                  f"{metadata.spec.dim}), has {inputs}")
    if OUTPUT_NAME not in outputs:
        raise PolicyContractError(f"{path}: the graph needs output {OUTPUT_NAME!r}, has {outputs}")
    del model.metadata_props[:]
    for key, value in metadata.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return path


__all__ = [
    "ACTION_CONVENTION", "EXTERNAL_CONFIG_HASH", "FORMAT_VERSION", "INPUT_NAME", "OUTPUT_NAME", "Envelope",
    "PolicyContractError", "PolicyMetadata", "attach_metadata",
]
