"""Scenario description: arena, robots, obstacles, start states and reward.

Units: metres, radians, seconds; positions in the world frame with the arena
centred at the origin. A scenario is loaded from ``config/scenarios/<name>.yaml``
(or any path) and validated on load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pe_sim.config_reader import ConfigReader, load_yaml
from pe_sim.package_data import data_path, resolve_named

ROLES = ("pursuer", "evader")


@dataclass(frozen=True)
class RobotSpec:
    """One unicycle robot: body radius (m), speed bounds (m/s) and turn-rate bound (rad/s)."""

    name: str
    role: str
    radius: float = 0.15
    v_min: float = 0.0
    v_max: float = 1.0
    omega_max: float = 2.84


@dataclass(frozen=True)
class ObstacleSpec:
    """Circular obstacles: a fixed list, plus ``count`` random ones drawn per episode.

    ``count`` is a [min, max] range (inclusive); radii are uniform in ``radius``;
    ``min_gap`` is the least surface-to-surface distance between two obstacles and
    ``wall_margin`` the least distance from an obstacle's surface to a wall.
    """

    fixed: tuple[tuple[float, float, float], ...] = ()
    count: tuple[int, int] = (0, 0)
    radius: tuple[float, float] = (0.3, 1.0)
    min_gap: float = 0.5
    wall_margin: float = 0.5

    @property
    def max_count(self) -> int:
        return len(self.fixed) + self.count[1]


@dataclass(frozen=True)
class StartSpec:
    """Start-state distribution: positions uniform in the arena less ``wall_margin``,
    at least ``obstacle_clearance`` from every obstacle surface (body to surface),
    pursuer-evader centre distance within ``separation``, teammates at least
    ``teammate_separation`` apart; headings uniform in [-pi, pi)."""

    wall_margin: float = 1.0
    obstacle_clearance: float = 0.5
    separation: tuple[float, float] = (2.0, 1e9)
    teammate_separation: float = 1.0


@dataclass(frozen=True)
class RewardSpec:
    """Reward weights. Game terms are zero-sum (pursuers get +x, evaders -x):
    ``capture`` at capture, ``timeout`` at the time limit (sign from the pursuers'
    view), ``distance_shaping`` per metre the pursuer-evader distance shrinks.
    ``contact`` is a per-robot penalty for each step with a safety violation."""

    capture: float = 10.0
    timeout: float = 0.0
    distance_shaping: float = 1.0
    contact: float = 1.0


@dataclass(frozen=True)
class Scenario:
    name: str
    arena_width: float
    arena_height: float
    dt: float
    max_steps: int
    capture_radius: float
    robots: tuple[RobotSpec, ...]
    obstacles: ObstacleSpec = field(default_factory=ObstacleSpec)
    start: StartSpec = field(default_factory=StartSpec)
    reward: RewardSpec = field(default_factory=RewardSpec)
    description: str = ""
    source: str = "<code>"

    @property
    def num_robots(self) -> int:
        return len(self.robots)

    @property
    def half_width(self) -> float:
        return 0.5 * self.arena_width

    @property
    def half_height(self) -> float:
        return 0.5 * self.arena_height

    def indices(self, role: str) -> tuple[int, ...]:
        return tuple(i for i, r in enumerate(self.robots) if r.role == role)

    def robot_index(self, name: str) -> int:
        for i, robot in enumerate(self.robots):
            if robot.name == name:
                return i
        raise KeyError(f"scenario '{self.name}' has no robot '{name}'; robots: "
                       f"{[r.name for r in self.robots]}")

    def to_dict(self) -> dict[str, Any]:
        """The scenario as plain data (for model cards and episode records)."""
        return {
            "name": self.name,
            "description": self.description,
            "arena": {"width": self.arena_width, "height": self.arena_height},
            "dt": self.dt,
            "max_steps": self.max_steps,
            "capture_radius": self.capture_radius,
            "robots": [vars(r).copy() for r in self.robots],
            "obstacles": {
                "fixed": [{"x": x, "y": y, "radius": r} for x, y, r in self.obstacles.fixed],
                "count": list(self.obstacles.count),
                "radius": list(self.obstacles.radius),
                "min_gap": self.obstacles.min_gap,
                "wall_margin": self.obstacles.wall_margin,
            },
            "start": {
                "wall_margin": self.start.wall_margin,
                "obstacle_clearance": self.start.obstacle_clearance,
                "separation": list(self.start.separation),
                "teammate_separation": self.start.teammate_separation,
            },
            "reward": vars(self.reward).copy(),
        }


def scenario_path(name_or_path: str | Path) -> Path:
    """A scenario file: a path, or a name in the shipped ``config/scenarios/``."""
    return resolve_named(name_or_path, "pe_sim", "config/scenarios", "scenario")


def shipped_scenarios() -> list[str]:
    """Names of the shipped scenarios."""
    return sorted(p.stem for p in data_path("pe_sim", "config/scenarios").glob("*.yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load and validate a scenario by name (``config/scenarios/<name>.yaml``) or path."""
    path = scenario_path(name_or_path)
    return parse_scenario(load_yaml(path), str(path))


def parse_scenario(data: dict[str, Any], source: str = "<dict>") -> Scenario:
    """Validate a scenario mapping; errors name ``source`` and the key."""
    top = ConfigReader(data, source)
    name = top.string("name")
    description = top.string("description", "")
    arena = top.section("arena")
    width = arena.number("width", min=0.0, min_exclusive=True)
    height = arena.number("height", min=0.0, min_exclusive=True)
    arena.done()
    dt = top.number("dt", min=0.0, min_exclusive=True, max=1.0)
    max_steps = top.integer("max_steps", min=1)
    capture_radius = top.number("capture_radius", min=0.0, min_exclusive=True)

    robots = []
    for r in top.sections("robots"):
        robot = RobotSpec(
            name=r.string("name"),
            role=r.string("role", choices=ROLES),
            radius=r.number("radius", 0.15, min=0.0, min_exclusive=True),
            v_min=r.number("v_min", 0.0, min=0.0),
            v_max=r.number("v_max", min=0.0, min_exclusive=True),
            omega_max=r.number("omega_max", min=0.0, min_exclusive=True),
        )
        if robot.v_min > robot.v_max:
            raise r.error("v_min", f"must not exceed v_max ({robot.v_max}), got {robot.v_min}")
        if robot.name in {x.name for x in robots}:
            raise r.error("name", f"duplicate robot name {robot.name!r}")
        r.done()
        robots.append(robot)
    roles = {r.role for r in robots}
    if roles != set(ROLES):
        raise top.error("robots", f"need at least one pursuer and one evader, got roles {sorted(roles)}")

    obstacles = ObstacleSpec()
    if top.has("obstacles"):
        o = top.section("obstacles")
        fixed = []
        for f in o.sections("fixed", []):
            fixed.append((f.number("x"), f.number("y"), f.number("radius", min=0.0, min_exclusive=True)))
            f.done()
        count = o.range("count", 0, min=0)
        if count[0] != int(count[0]) or count[1] != int(count[1]):
            raise o.error("count", f"expected whole numbers, got {list(count)}")
        obstacles = ObstacleSpec(
            fixed=tuple(fixed),
            count=(int(count[0]), int(count[1])),
            radius=o.range("radius", [0.3, 1.0], min=0.0),
            min_gap=o.number("min_gap", 0.5, min=0.0),
            wall_margin=o.number("wall_margin", 0.5, min=0.0),
        )
        o.done()

    start = StartSpec()
    if top.has("start"):
        s = top.section("start")
        start = StartSpec(
            wall_margin=s.number("wall_margin", 1.0, min=0.0),
            obstacle_clearance=s.number("obstacle_clearance", 0.5, min=0.0),
            separation=s.range("separation", [2.0, 1e9], min=0.0),
            teammate_separation=s.number("teammate_separation", 1.0, min=0.0),
        )
        s.done()
        if start.separation[0] <= capture_radius:
            raise s.error("separation", f"minimum must exceed capture_radius ({capture_radius})")

    reward = RewardSpec()
    if top.has("reward"):
        w = top.section("reward")
        reward = RewardSpec(
            capture=w.number("capture", RewardSpec.capture),
            timeout=w.number("timeout", RewardSpec.timeout),
            distance_shaping=w.number("distance_shaping", RewardSpec.distance_shaping),
            contact=w.number("contact", RewardSpec.contact, min=0.0),
        )
        w.done()
    top.done()
    return Scenario(
        name=name, description=description, arena_width=width, arena_height=height, dt=dt,
        max_steps=max_steps, capture_radius=capture_radius, robots=tuple(robots),
        obstacles=obstacles, start=start, reward=reward, source=source,
    )
