"""Filter parameters: the :class:`FilterConfig` dataclass and its validated YAML loader.

``load_filter_config("vcp_cbf")`` reads ``config/filter/vcp_cbf.yaml`` (or any
path); every error is a :class:`pe_sim.config_reader.ConfigError` naming the
file and the key. Units: metres, seconds, radians; gains in 1/s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pe_safety_filter.barriers import GAIN_MAX
from pe_sim.config_reader import ConfigReader, load_yaml
from pe_sim.package_data import resolve_named

SOLVERS = ("exact", "osqp")

#: Accepted range [lo, hi] of each numeric ``FilterConfig`` field (units of the
#: field). The loader refuses values outside them naming file and key; the filter
#: refuses a ``FilterConfig`` built in code outside them (``ValueError``). Ranges
#: relative to the arena and the robot (lookahead and margin + radius below the
#: arena's half sizes) are checked where the arena is known (``SafetyFilter``).
RANGES: dict[str, tuple[float, float]] = {
    "lookahead": (1e-3, 2.0),              # m
    "gain_obstacle": (0.0, GAIN_MAX),      # 1/s
    "gain_wall": (0.0, GAIN_MAX),
    "gain_teammate": (0.0, GAIN_MAX),
    "robot_buffer": (0.0, 2.0),            # m
    "margin": (0.0, 0.1),                  # m
    "tighten_factor": (1e-3, 1.0),         # < 1, checked apart
    "tighten_steps": (0, 20),
    "max_state_age": (1e-6, 60.0),         # s
    "feasibility_tol": (1e-10, 1e-6),      # relative
}


@dataclass(frozen=True)
class OsqpSettings:
    """Settings of the OSQP reference solver."""

    eps_abs: float = 1e-9
    eps_rel: float = 1e-9
    max_iter: int = 10000
    polishing: bool = True


@dataclass(frozen=True)
class FilterConfig:
    """VCP-CBF filter parameters (defaults documented in ``config/filter/vcp_cbf.yaml``).

    * ``lookahead``: d, distance (m) of the virtual control point ahead of the centre.
    * ``gain_obstacle``, ``gain_wall``, ``gain_teammate``: default linear class-K
      gains (1/s) per barrier kind.
    * ``weight``: W (2x2, symmetric positive definite) of the cost on (v, omega).
    * ``robot_buffer``: extra body clearance (m) between teammates beyond 2d.
    * ``margin``: clearance (m) the exact next-step check asks for.
    * ``tighten_factor``, ``tighten_steps``: gains are multiplied by the factor and
      the QP re-solved up to ``tighten_steps`` times before the backup acts.
    * ``backup_keep_omega``: the backup keeps the (clipped) nominal turn rate.
    * ``max_state_age``: states older than this (s) give the backup.
    * ``solver``: ``"exact"`` or ``"osqp"``.
    * ``feasibility_tol``: relative feasibility tolerance of the exact solver.
    """

    lookahead: float = 0.15
    gain_obstacle: float = 2.0
    gain_wall: float = 2.0
    gain_teammate: float = 2.0
    weight: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 0.0), (0.0, 0.02))
    robot_buffer: float = 0.1
    margin: float = 1e-3
    tighten_factor: float = 0.5
    tighten_steps: int = 3
    backup_keep_omega: bool = True
    max_state_age: float = 0.25
    solver: str = "exact"
    feasibility_tol: float = 1e-9
    osqp: OsqpSettings = field(default_factory=OsqpSettings)
    name: str = "vcp_cbf"
    source: str = "<code>"

    @property
    def weight_matrix(self) -> np.ndarray:
        """W as a (2, 2) float64 array."""
        return np.array(self.weight, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (for model cards and run records)."""
        return {
            "name": self.name,
            "lookahead": self.lookahead,
            "gains": {"obstacle": self.gain_obstacle, "wall": self.gain_wall,
                      "teammate": self.gain_teammate},
            "weight": [list(r) for r in self.weight],
            "robot_buffer": self.robot_buffer,
            "exact_check": {"margin": self.margin},
            "tighten": {"gain_factor": self.tighten_factor, "max_steps": self.tighten_steps},
            "backup": {"keep_omega": self.backup_keep_omega},
            "max_state_age": self.max_state_age,
            "solver": self.solver,
            "feasibility_tol": self.feasibility_tol,
            "osqp": vars(self.osqp).copy(),
        }


def filter_config_path(name_or_path: str | Path) -> Path:
    """A filter config file: a path, or a name in the shipped ``config/filter/``."""
    return resolve_named(name_or_path, "pe_safety_filter", "config/filter", "filter config")


def load_filter_config(name_or_path: str | Path = "vcp_cbf") -> FilterConfig:
    """Load and validate a filter config by name (``config/filter/<name>.yaml``) or path."""
    path = filter_config_path(name_or_path)
    return parse_filter_config(load_yaml(path), str(path))


def parse_filter_config(data: dict[str, Any], source: str = "<dict>") -> FilterConfig:
    """Validate a filter-config mapping; errors name ``source`` and the key."""
    top = ConfigReader(data, source)
    name = top.string("name", "vcp_cbf")
    top.string("description", "")
    lookahead = top.number("lookahead", min=RANGES["lookahead"][0], max=RANGES["lookahead"][1])

    g = top.section("gains")
    gains = [g.number(k, min=0.0, max=GAIN_MAX) for k in ("obstacle", "wall", "teammate")]
    g.done()

    weight = top.raw("weight")
    if (not isinstance(weight, list) or len(weight) != 2
            or not all(isinstance(r, list) and len(r) == 2 for r in weight)
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                       for r in weight for x in r)):
        raise top.error("weight", f"expected a 2x2 list of numbers [[a, b], [b, c]], got {weight!r}")
    w = np.array(weight, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise top.error("weight", f"entries must be finite, got {weight!r}")
    if w[0, 1] != w[1, 0]:
        raise top.error("weight", f"must be symmetric, got {weight!r}")
    if not (w[0, 0] > 0.0 and w[0, 0] * w[1, 1] - w[0, 1] ** 2 > 0.0):
        raise top.error("weight", f"must be positive definite, got {weight!r}")

    robot_buffer = top.number("robot_buffer", 0.0, min=0.0, max=RANGES["robot_buffer"][1])
    ec = top.section("exact_check")
    margin = ec.number("margin", min=0.0, max=RANGES["margin"][1])
    ec.done()
    t = top.section("tighten")
    factor = t.number("gain_factor", min=RANGES["tighten_factor"][0], max=1.0)
    if factor >= 1.0:
        raise t.error("gain_factor", f"must be < 1 (it shrinks the gains), got {factor}")
    steps = t.integer("max_steps", min=0, max=int(RANGES["tighten_steps"][1]))
    t.done()
    b = top.section("backup", {})
    keep_omega = b.boolean("keep_omega", True)
    b.done()
    max_age = top.number("max_state_age", min=RANGES["max_state_age"][0],
                         max=RANGES["max_state_age"][1])
    solver = top.string("solver", "exact", choices=SOLVERS)
    tol = top.number("feasibility_tol", 1e-9, min=RANGES["feasibility_tol"][0],
                     max=RANGES["feasibility_tol"][1])
    o = top.section("osqp", {})
    osqp = OsqpSettings(
        eps_abs=o.number("eps_abs", OsqpSettings.eps_abs, min=0.0),
        eps_rel=o.number("eps_rel", OsqpSettings.eps_rel, min=0.0),
        max_iter=o.integer("max_iter", OsqpSettings.max_iter, min=1),
        polishing=o.boolean("polishing", OsqpSettings.polishing),
    )
    o.done()
    top.done()
    return FilterConfig(
        lookahead=lookahead, gain_obstacle=gains[0], gain_wall=gains[1], gain_teammate=gains[2],
        weight=((float(w[0, 0]), float(w[0, 1])), (float(w[1, 0]), float(w[1, 1]))),
        robot_buffer=robot_buffer, margin=margin, tighten_factor=factor, tighten_steps=steps,
        backup_keep_omega=keep_omega, max_state_age=max_age, solver=solver,
        feasibility_tol=tol, osqp=osqp, name=name, source=source,
    )
