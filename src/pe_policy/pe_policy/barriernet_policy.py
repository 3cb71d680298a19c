"""BarrierNet policies at deployment: a network that outputs the reference command
u_ref and one class-K gain per barrier, followed by the safety filter's QP with
those gains.

The network part is an ONNX graph (written by ``pe-barriernet-train``) with the
observation contract of every exported policy (:mod:`pe_policy.contract`: input
``obs``, metadata with the observation spec, bounds, role ...) and three outputs:

* ``action`` (B, 2): u_ref in the normalised [-1, 1] convention (so the file is
  also a plain ``OnnxPolicy``: u_ref without the QP);
* ``u_ref`` (B, 2): the same in physical units (v m/s, omega rad/s);
* ``gains`` (B, G): class-K gains (1/s), positive and bounded, in the slot order
  of :class:`GainLayout` (the observation's obstacle slots, 4 walls, teammates).

Its metadata has the extra key ``pe.barriernet`` (JSON: the gain layout and the
filter parameters it was trained with). The QP is *not* in the graph: it runs in
the safety filter -- ``BatchSafetyFilter.filter(..., gains=...)`` in ``pe-eval``
(the filter asks :meth:`BarrierNetPolicy.gains` for this robot's gains), the
filter node with ``use_policy_gains`` in the ROS graph. So always run a BarrierNet
policy behind the filter (``pe-eval --filter pursuer`` or ``all``): ``act``
returns u_ref, the filter's QP turns it into the command, and the filter's
intervention statistics are the QP's corrections of u_ref.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from pe_sim.observation import ObservationBuilder, ObservationSpec, nearest_slots
from pe_sim.scenario import Scenario
from pe_sim.scripted import WorldView

KEY_BARRIERNET = "pe.barriernet"
OUTPUT_U_REF = "u_ref"
OUTPUT_GAINS = "gains"
N_WALLS = 4
WALL_NAMES = ("wall_+x", "wall_-x", "wall_+y", "wall_-y")

Network = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""raw observations (B, dim) float32 -> (u_ref (B, 2) m/s, rad/s; gains (B, G) 1/s)."""


@dataclass(frozen=True)
class GainLayout:
    """The gains a BarrierNet network outputs: ``k_obstacles`` obstacle slots (the K
    nearest obstacles by body clearance, in the observation's order), 4 walls (+x, -x,
    +y, -y), ``n_teammates`` teammate slots (robot index order), G = K + 4 + T.

    A network output ``a`` in [-1, 1] maps log-uniformly onto [``gain_min``, ``gain_max``]
    (1/s): ``gain = gain_min * (gain_max / gain_min) ** ((a + 1) / 2)`` (a = 0 is the
    geometric mean of the bounds)."""

    k_obstacles: int
    n_teammates: int
    gain_min: float
    gain_max: float

    def __post_init__(self) -> None:
        if not 0.0 < self.gain_min < self.gain_max or not math.isfinite(self.gain_max):
            raise ValueError(f"need 0 < gain_min < gain_max < inf, got {self.gain_min}, {self.gain_max}")

    @property
    def size(self) -> int:
        """G, the number of gains."""
        return self.k_obstacles + N_WALLS + self.n_teammates

    @property
    def names(self) -> list[str]:
        return ([f"obstacle_{i}" for i in range(self.k_obstacles)] + list(WALL_NAMES)
                + [f"teammate_{i}" for i in range(self.n_teammates)])

    def to_dict(self) -> dict:
        return {"k_obstacles": self.k_obstacles, "n_teammates": self.n_teammates,
                "gain_min": self.gain_min, "gain_max": self.gain_max, "slots": self.names}

    @classmethod
    def from_dict(cls, data: Mapping) -> GainLayout:
        return cls(int(data["k_obstacles"]), int(data["n_teammates"]), float(data["gain_min"]),
                   float(data["gain_max"]))

    def gains_from_unit(self, a: np.ndarray) -> np.ndarray:
        """Physical gains (1/s) from network outputs in [-1, 1] (clipped first)."""
        t = 0.5 * (np.clip(np.asarray(a, dtype=np.float64), -1.0, 1.0) + 1.0)
        return self.gain_min * (self.gain_max / self.gain_min) ** t

    def unit_from_gains(self, gains: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`gains_from_unit` (gains clipped to the range first)."""
        g = np.clip(np.asarray(gains, dtype=np.float64), self.gain_min, self.gain_max)
        return 2.0 * np.log(g / self.gain_min) / math.log(self.gain_max / self.gain_min) - 1.0


@numba.njit(cache=True)
def _nearest_batch(pose, obstacles, n_obstacles, me, radius, k_slots, out):
    clearance = np.empty(k_slots)
    for e in range(pose.shape[0]):
        nearest_slots(pose[e, me, 0], pose[e, me, 1], radius, obstacles[e], n_obstacles[e], k_slots, out[e],
                      clearance)


def nearest_order(pose: np.ndarray, obstacles: np.ndarray, n_obstacles: np.ndarray, robot_index: int,
                  radius: float, k_slots: int) -> np.ndarray:
    """(B, K) simulator indices of the obstacles in robot ``robot_index``'s observation
    slots (-1: empty), from ``pose`` (B, N, 3), ``obstacles`` (B, M, 3), ``n_obstacles`` (B,)."""
    order = np.empty((pose.shape[0], k_slots), dtype=np.int64)
    _nearest_batch(np.ascontiguousarray(pose, dtype=np.float64),
                   np.ascontiguousarray(obstacles, dtype=np.float64),
                   np.ascontiguousarray(n_obstacles, dtype=np.int64), robot_index, float(radius),
                   k_slots, order)
    return order


@numba.njit(cache=True)
def _scatter(slot_gains, order, k_slots, m, out):
    for e in range(slot_gains.shape[0]):
        for s in range(k_slots):
            j = order[e, s]
            if j >= 0:
                out[e, j] = slot_gains[e, s]
        for k in range(slot_gains.shape[1] - k_slots):
            out[e, m + k] = slot_gains[e, k_slots + k]


def filter_gains(slot_gains: np.ndarray, order: np.ndarray, max_obstacles: int,
                 default_obstacle_gain: float) -> np.ndarray:
    """Gains (B, M + 4 + T) in the filter's constraint order (``BatchSafetyFilter``:
    obstacles as stored, walls, teammates) from slot gains (B, G) and the slot order
    (B, K) of :func:`nearest_order`; obstacle columns in no slot get ``default_obstacle_gain``."""
    slot_gains = np.ascontiguousarray(slot_gains, dtype=np.float64)
    order = np.ascontiguousarray(order, dtype=np.int64)
    k_slots = order.shape[1]
    out = np.full((slot_gains.shape[0], max_obstacles + slot_gains.shape[1] - k_slots),
                  float(default_obstacle_gain))
    _scatter(slot_gains, order, k_slots, max_obstacles, out)
    return out


class BarrierNetPolicy:
    """A BarrierNet network driving robot ``robot_index`` of ``scenario``.

    ``network`` maps raw observations to (u_ref, slot gains); :meth:`from_onnx` builds
    it from an exported file (spec and role checked as :class:`~pe_policy.onnx_policy.OnnxPolicy`
    does). ``act`` returns u_ref; ``gains`` the gains in the filter's constraint order.
    The network runs once per state: ``gains`` after ``act`` (or the reverse) on the same
    state reuses the result (the observation is rebuilt and compared)."""

    def __init__(
        self,
        network: Network,
        scenario: Scenario,
        robot_index: int,
        spec: ObservationSpec,
        layout: GainLayout,
        *,
        name: str = "barriernet",
        default_obstacle_gain: float = 2.0,
        info: Mapping | None = None,
    ) -> None:
        spec.check_compatible(ObservationSpec.for_robot(scenario, robot_index, spec.k_obstacles))
        if layout.k_obstacles != spec.k_obstacles or layout.n_teammates != spec.n_teammates:
            raise ValueError(f"gain layout {layout} does not match the observation spec {spec}")
        self.network = network
        self.name = name
        self.spec: ObservationSpec = spec
        self.layout = layout
        self.scenario = scenario
        self.robot_index = robot_index
        self.radius = scenario.robots[robot_index].radius
        self.default_obstacle_gain = float(default_obstacle_gain)
        self.info = dict(info or {})
        self.builder = ObservationBuilder(scenario, robot_index, spec.k_obstacles)
        self._obs: np.ndarray | None = None
        self._out: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_onnx(cls, path: str | Path, scenario: Scenario, robot_index: int, *,
                  threads: int = 1) -> BarrierNetPolicy:
        """Load an exported BarrierNet network (see the module docstring)."""
        from pe_policy.contract import PolicyContractError
        from pe_policy.onnx_policy import OnnxPolicy

        plain = OnnxPolicy(path, scenario, robot_index, threads=threads)
        props = plain._session.get_modelmeta().custom_metadata_map
        if KEY_BARRIERNET not in props:
            raise PolicyContractError(f"{path}: not a BarrierNet policy (no {KEY_BARRIERNET!r} metadata)")
        info = json.loads(props[KEY_BARRIERNET])
        layout = GainLayout.from_dict(info["layout"])
        outputs = [o.name for o in plain._session.get_outputs()]
        if OUTPUT_U_REF not in outputs or OUTPUT_GAINS not in outputs:
            raise PolicyContractError(f"{path}: BarrierNet graph needs outputs {OUTPUT_U_REF!r} and "
                                      f"{OUTPUT_GAINS!r}, has {outputs}")
        session = plain._session
        names = [OUTPUT_U_REF, OUTPUT_GAINS]

        def network(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            u_ref, gains = session.run(names, {"obs": np.asarray(obs, dtype=np.float32)})
            return u_ref, gains

        filt = info.get("filter", {})
        policy = cls(network, scenario, robot_index, plain.spec, layout, name=plain.name,
                     default_obstacle_gain=float(filt.get("gains", {}).get("obstacle", 2.0)), info=info)
        policy.metadata = plain.metadata
        policy.path = plain.path
        return policy

    # -- the network ---------------------------------------------------------------------
    def outputs(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(u_ref (B, 2) float64 m/s, rad/s; slot gains (B, G) float64 1/s) for raw
        observations (B, dim)."""
        u_ref, gains = self.network(np.asarray(obs, dtype=np.float32))
        return np.asarray(u_ref, dtype=np.float64), np.asarray(gains, dtype=np.float64)

    def _run(self, view: WorldView) -> tuple[np.ndarray, np.ndarray]:
        obs = self.builder.build(view.pose, view.velocity, view.obstacles, view.n_obstacles)
        if self._obs is None or self._obs.shape != obs.shape or not np.array_equal(self._obs, obs):
            self._out = self.outputs(obs)
            self._obs = obs
        return self._out  # type: ignore[return-value]

    def act(self, view: WorldView) -> np.ndarray:
        """u_ref (B, 2) (v m/s, omega rad/s): the nominal command the filter's QP corrects."""
        return self._run(view)[0].copy()

    __call__ = act

    def slot_gains(self, view: WorldView) -> np.ndarray:
        """Gains (B, G) in the network's slot order (1/s)."""
        return self._run(view)[1].copy()

    def gains(self, view: WorldView) -> np.ndarray:
        """Gains (B, M + 4 + T) (1/s) in the filter's constraint order for ``view``'s
        obstacle array of width M: the layout ``BatchSafetyFilter.filter(gains=...)`` takes
        for this robot (slots of absent obstacles hold the default gain and are ignored)."""
        slot = self._run(view)[1]
        order = nearest_order(view.pose, view.obstacles, view.n_obstacles, self.robot_index, self.radius,
                              self.layout.k_obstacles)
        return filter_gains(slot, order, view.obstacles.shape[1], self.default_obstacle_gain)


def is_barriernet_onnx(path: str | Path) -> bool:
    """Whether an ``.onnx`` file declares itself a BarrierNet network (metadata only)."""
    from pe_policy.onnx_policy import load_onnx_model

    model = load_onnx_model(path)
    return any(p.key == KEY_BARRIERNET for p in model.metadata_props)


def batch_filter_gains(
    view: WorldView,
    policies: Mapping[int, BarrierNetPolicy],
    num_robots: int,
    max_teammates: int,
    default_gains: tuple[float, float, float],
) -> np.ndarray:
    """Gains (B, N, M + 4 + K) for ``BatchSafetyFilter.filter``: each robot in
    ``policies`` gets its policy's gains, every other robot the per-kind defaults
    ``(obstacle, wall, teammate)`` (so its filter acts as without gains)."""
    n_batch, m = view.pose.shape[0], view.obstacles.shape[1]
    g_obs, g_wall, g_tm = (float(x) for x in default_gains)
    row = np.concatenate([np.full(m, g_obs), np.full(N_WALLS, g_wall), np.full(max_teammates, g_tm)])
    out = np.broadcast_to(row, (n_batch, num_robots, row.size)).copy()
    for i, policy in policies.items():
        g = policy.gains(view)
        out[:, i, :g.shape[1]] = g
    return out


def gains_source(
    batch_filter,
    policies: Sequence,
    filtered: Sequence[int],
) -> Callable[[WorldView], np.ndarray] | None:
    """For ``pe-eval``: a ``view -> gains (B, N, G)`` callable for ``batch_filter``
    (a :class:`~pe_safety_filter.filter.BatchSafetyFilter`) when some filtered robot's
    policy has a ``gains`` method (a BarrierNet policy), else None. Warns (stderr) about
    BarrierNet policies that are not behind the filter (they would run without their QP)."""
    with_gains = {i: p for i, p in enumerate(policies) if callable(getattr(p, "gains", None))}
    unfiltered = sorted(set(with_gains) - set(filtered))
    if unfiltered:
        print(f"warning: robots {unfiltered} run BarrierNet policies without the filter, i.e. u_ref "
              "without the QP (use --filter all or --filter <role>)", file=sys.stderr)
    mine = {i: p for i, p in with_gains.items() if i in set(filtered)}
    if not mine:
        return None
    cfg = batch_filter.config
    defaults = (cfg.gain_obstacle, cfg.gain_wall, cfg.gain_teammate)
    n, k = len(batch_filter.radius), batch_filter.max_teammates

    def source(view: WorldView) -> np.ndarray:
        return batch_filter_gains(view, mine, n, k, defaults)

    return source


__all__ = ["KEY_BARRIERNET", "OUTPUT_GAINS", "OUTPUT_U_REF", "BarrierNetPolicy", "GainLayout",
           "batch_filter_gains", "filter_gains", "gains_source", "is_barriernet_onnx", "nearest_order"]
