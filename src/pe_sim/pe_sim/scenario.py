"""Scenario description: arena, robots, obstacles, start states and reward.

Units: metres, radians, seconds; positions in the world frame with the arena
centred at the origin. A scenario is loaded from ``config/scenarios/<name>.yaml``
(or any path) and validated on load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pe_sim.config_reader import ConfigError, load_yaml
from pe_sim.config_schema import from_data, setting, to_data
from pe_sim.package_data import data_path, resolve_named

ROLES = ("pursuer", "evader")
#: Upper bounds that catch absurd values (typos of a few orders of magnitude).
MAX_SPEED = 50.0  # m/s
MAX_TURN_RATE = 100.0  # rad/s
#: Episodes whose obstacles and start states are drawn when a scenario is loaded, to
#: refuse one whose random parts cannot be placed (see :func:`check_placement`).
PLACEMENT_PROBE_EPISODES = 64
#: A scenario whose random parts cannot be placed in more than this fraction of the probe
#: episodes is refused; rarer misses are a warning.
REFUSE_FRACTION = 0.25
#: Bounds of a scenario's variants: the arena scale factor, and how many variants (each
#: plays training episode seeds of its own block, see ``pe_sim.envs.concat``).
MAX_ARENA_SCALE = 10.0
MAX_VARIANTS = 10


@dataclass(frozen=True)
class Arena:
    """The rectangular arena, centred at the origin (m)."""

    width: float = setting(help="arena width along x (m)", min=0.0, min_exclusive=True)
    height: float = setting(help="arena height along y (m)", min=0.0, min_exclusive=True)


@dataclass(frozen=True)
class RobotSpec:
    """One unicycle robot: body radius (m), speed bounds (m/s) and turn-rate bound (rad/s)."""

    name: str = setting(help="unique robot name (ROS namespace, record keys)")
    role: str = setting(help="which side it plays", choices=ROLES)
    radius: float = setting(0.15, help="body radius (m)", min=0.0, min_exclusive=True)
    v_min: float = setting(0.0, help="least forward speed (m/s)", min=0.0, max=MAX_SPEED)
    v_max: float = setting(1.0, help="greatest forward speed (m/s)", min=0.0, min_exclusive=True,
                           max=MAX_SPEED, required=True)
    omega_max: float = setting(2.84, help="greatest turn rate, either way (rad/s)", min=0.0,
                               min_exclusive=True, max=MAX_TURN_RATE, required=True)


class FixedObstacle(NamedTuple):
    """A circular obstacle at a fixed place: centre (m, world frame) and radius (m)."""

    x: float
    y: float
    radius: float

    FIELD_LIMITS = {  # noqa: RUF012 -- class constant read by the schema
        "x": {"help": "centre x (m, world frame)"},
        "y": {"help": "centre y (m, world frame)"},
        "radius": {"help": "radius (m)", "min": 0.0, "min_exclusive": True},
    }


@dataclass(frozen=True)
class ObstacleSpec:
    """Circular obstacles: a fixed list, plus ``count`` random ones drawn per episode.

    ``count`` is a [min, max] range (inclusive); radii are uniform in ``radius``;
    ``min_gap`` is the least surface-to-surface distance between two obstacles and
    ``wall_margin`` the least distance from an obstacle's surface to a wall.
    """

    fixed: tuple[FixedObstacle, ...] = setting((), help="obstacles present in every episode")
    count: tuple[int, int] = setting((0, 0), min=0,
                                     help="random obstacles per episode: [min, max] (inclusive)")
    radius: tuple[float, float] = setting((0.3, 1.0), min=0.0, min_exclusive=True,
                                          help="radius of a random obstacle, uniform in [low, high] (m)")
    min_gap: float = setting(0.5, min=0.0, help="least surface-to-surface gap between obstacles (m)")
    wall_margin: float = setting(0.5, min=0.0, help="least gap between an obstacle and a wall (m)")

    @property
    def max_count(self) -> int:
        return len(self.fixed) + self.count[1]


@dataclass(frozen=True)
class StartSpec:
    """Start-state distribution: positions uniform in the arena less ``wall_margin``,
    at least ``obstacle_clearance`` from every obstacle surface (body to surface),
    pursuer-evader centre distance within ``separation``, teammates at least
    ``teammate_separation`` apart; headings uniform in [-pi, pi)."""

    wall_margin: float = setting(1.0, min=0.0,
                                 help="least distance of a start position (centre) from a wall (m)")
    obstacle_clearance: float = setting(0.5, min=0.0,
                                        help="least body-to-obstacle-surface gap at the start (m)")
    separation: tuple[float, float] = setting((2.0, 1e9), min=0.0,
                                              help="pursuer-evader centre distance at the start (m)")
    teammate_separation: float = setting(1.0, min=0.0,
                                         help="least body-to-body gap between teammates at the start (m)")


@dataclass(frozen=True)
class RewardSpec:
    """Reward weights. Game terms are zero-sum (pursuers get +x, evaders -x):
    ``capture`` at capture, ``timeout`` at the time limit (sign from the pursuers'
    view), ``distance_shaping`` per metre the pursuer-evader distance shrinks.
    ``contact`` is a per-robot penalty for each step with a safety violation."""

    capture: float = setting(10.0, help="pursuers' reward at capture")
    timeout: float = setting(0.0, help="pursuers' reward at the time limit")
    distance_shaping: float = setting(1.0, help="pursuers' reward per metre the distance shrinks")
    contact: float = setting(1.0, min=0.0, help="per-robot penalty per step with a safety violation")


@dataclass(frozen=True)
class VariantSpec:
    """The operating envelope beyond obstacles: training spreads its envs over every
    combination of an evader speed ratio and an arena scale (each list empty: the file's
    own value only). Each combination is a scenario of its own (:meth:`Scenario.variants_of`)
    with the base scenario's observation length scale, so one policy observes them all."""

    evader_speed_ratio: tuple[float, ...] = setting(
        (), min=0.0, min_exclusive=True, max=MAX_SPEED,
        help="every evader's v_max as a multiple of the fastest pursuer's v_max")
    arena_scale: tuple[float, ...] = setting(
        (), min=0.0, min_exclusive=True, max=MAX_ARENA_SCALE,
        help="factors on the arena's width and height (obstacles and starts keep their sizes and margins)")

    @property
    def count(self) -> int:
        """Scenarios in the envelope (1 without variants)."""
        return max(1, len(self.evader_speed_ratio)) * max(1, len(self.arena_scale))


@dataclass(frozen=True)
class Scenario:
    """A scenario file: every key of ``config/scenarios/*.yaml`` is a field here
    (``docs/scenarios.md`` is generated from these fields)."""

    name: str = setting(help="scenario name (labels results; the content hash identifies it)")
    arena: Arena = setting(help="the arena")
    dt: float = setting(help="control period (s)", min=0.0, min_exclusive=True, max=1.0)
    max_steps: int = setting(help="steps until the time limit", min=1)
    capture_radius: float = setting(help="pursuer-evader centre distance that is a capture (m)",
                                    min=0.0, min_exclusive=True)
    robots: tuple[RobotSpec, ...] = setting(help="the robots (at least one pursuer and one evader)")
    description: str = setting("", help="one line on what the scenario is for")
    obstacles: ObstacleSpec = setting(default_factory=ObstacleSpec, help="obstacles")
    start: StartSpec = setting(default_factory=StartSpec, help="start-state distribution")
    reward: RewardSpec = setting(default_factory=RewardSpec, help="reward weights (training)")
    variants: VariantSpec = setting(default_factory=VariantSpec,
                                    help="evader speeds and arena sizes training spreads over")
    length_scale: float | None = setting(
        None, min=0.0, min_exclusive=True,
        help="the observation's length scale (m): lengths are divided by it; default the arena's "
             "larger half-size")
    source: str = setting("<code>", internal=True)

    @property
    def arena_width(self) -> float:
        return self.arena.width

    @property
    def arena_height(self) -> float:
        return self.arena.height

    @property
    def num_robots(self) -> int:
        return len(self.robots)

    @property
    def half_width(self) -> float:
        return 0.5 * self.arena_width

    @property
    def half_height(self) -> float:
        return 0.5 * self.arena_height

    @property
    def observation_length_scale(self) -> float:
        """The length (m) observations divide lengths by: ``length_scale``, or the arena's
        larger half-size."""
        return self.length_scale or max(self.half_width, self.half_height)

    def variants_of(self) -> tuple[Scenario, ...]:
        """The scenarios of ``variants`` (just this one without): every evader speed ratio
        with every arena scale, in that nesting order, named ``<name>@v<ratio>a<scale>``;
        each keeps this scenario's observation length scale and has no variants itself."""
        spec = self.variants
        if not spec.evader_speed_ratio and not spec.arena_scale:
            return (self,)
        fastest = max(r.v_max for r in self.robots if r.role == "pursuer")
        out = []
        for ratio in spec.evader_speed_ratio or (None,):
            for scale in spec.arena_scale or (1.0,):
                robots = tuple(
                    dataclasses.replace(r, v_max=ratio * fastest) if ratio and r.role == "evader" else r
                    for r in self.robots)
                arena = Arena(self.arena_width * scale, self.arena_height * scale)
                label = (f"v{ratio:g}" if ratio else "") + f"a{scale:g}"
                out.append(dataclasses.replace(
                    self, name=f"{self.name}@{label}", robots=robots, arena=arena,
                    variants=VariantSpec(), length_scale=self.observation_length_scale))
        return tuple(out)

    def indices(self, role: str) -> tuple[int, ...]:
        return tuple(i for i, r in enumerate(self.robots) if r.role == role)

    def robot_index(self, name: str) -> int:
        for i, robot in enumerate(self.robots):
            if robot.name == name:
                return i
        from pe_sim.cli import UserError

        raise UserError(f"scenario '{self.name}' has no robot '{name}'; robots: "
                        f"{[r.name for r in self.robots]}")

    def to_dict(self) -> dict[str, Any]:
        """The scenario as plain data in the file's layout (for model cards and records)."""
        return to_data(self)

    def content_hash(self) -> str:
        """16 hex digits of SHA-256 over what the scenario plays (everything but its name,
        description and file): an edited copy gets a different hash, a renamed one not."""
        data = self.to_dict()
        for key in ("name", "description"):
            data.pop(key)
        for key, default in (("variants", to_data(VariantSpec())), ("length_scale", None)):
            if data.get(key) == default:  # keys added later: unchanged hashes where unused
                data.pop(key)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


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
    """Validate a scenario mapping; errors name ``source``, the key and the reason."""
    scenario = from_data(Scenario, data, source, internal={"source": source})
    check_variants(scenario)
    for variant in scenario.variants_of():
        try:
            check_robots(variant)
            check_geometry(variant)
            check_placement(variant)
        except ConfigError as e:
            if variant is scenario:
                raise
            raise ConfigError(scenario.source, e.key, f"in variant {variant.name} (arena "
                              f"{variant.arena_width:g} x {variant.arena_height:g} m): "
                              f"{str(e).split(': ', 2)[-1]}") from None
    return scenario


def check_variants(scenario: Scenario) -> None:
    """At most :data:`MAX_VARIANTS` variants."""
    if scenario.variants.count > MAX_VARIANTS:
        raise ConfigError(scenario.source, "variants",
                          f"{scenario.variants.count} combinations of evader_speed_ratio and arena_scale; "
                          f"at most {MAX_VARIANTS}")


def check_robots(scenario: Scenario) -> None:
    """Unique names, both roles, speed bounds in order."""
    names: set[str] = set()
    for i, robot in enumerate(scenario.robots):
        key = f"robots[{i}]"
        if robot.v_min > robot.v_max:
            raise ConfigError(scenario.source, f"{key}.v_min",
                              f"must not exceed v_max ({robot.v_max}), got {robot.v_min}")
        if robot.name in names:
            raise ConfigError(scenario.source, f"{key}.name", f"duplicate robot name {robot.name!r}")
        names.add(robot.name)
    roles = {r.role for r in scenario.robots}
    if roles != set(ROLES):
        raise ConfigError(scenario.source, "robots",
                          f"need at least one pursuer and one evader, got roles {sorted(roles)}")


def check_geometry(scenario: Scenario) -> None:
    """Sizes that cannot work: robots or obstacles that do not fit, start regions that are
    empty or cannot hold the requested separation, fixed obstacles outside the arena."""

    def bad(key: str, message: str) -> ConfigError:
        return ConfigError(scenario.source, key, message)

    hw, hh = scenario.half_width, scenario.half_height
    size = f"{scenario.arena_width:g} x {scenario.arena_height:g} m"
    start, obstacles = scenario.start, scenario.obstacles
    for i, robot in enumerate(scenario.robots):
        if robot.radius >= min(hw, hh):
            raise bad(f"robots[{i}].radius", f"robot '{robot.name}' (diameter {2 * robot.radius:g} m) "
                                             f"does not fit in the arena ({size})")
        if robot.radius > start.wall_margin:
            raise bad("start.wall_margin", f"must be at least the robot radius ({robot.radius:g} m of "
                                           f"'{robot.name}'), or robots start inside a wall; "
                                           f"got {start.wall_margin:g}")
    if start.wall_margin >= min(hw, hh):
        raise bad("start.wall_margin", f"{start.wall_margin:g} m leaves no start region in the "
                                       f"arena ({size})")
    if start.separation[0] <= scenario.capture_radius:
        raise bad("start.separation", f"minimum must exceed capture_radius ({scenario.capture_radius:g}), "
                                      f"got {start.separation[0]:g}")
    span = 2.0 * math.hypot(hw - start.wall_margin, hh - start.wall_margin)
    if start.separation[0] > span:
        raise bad("start.separation", f"minimum {start.separation[0]:g} m exceeds the largest distance "
                                      f"in the start region ({span:.2f} m, arena {size} less "
                                      f"start.wall_margin {start.wall_margin:g} m)")
    for k, (x, y, r) in enumerate(obstacles.fixed):
        if abs(x) + r > hw or abs(y) + r > hh:
            raise bad(f"obstacles.fixed[{k}]", f"obstacle at ({x:g}, {y:g}) of radius {r:g} m reaches "
                                               f"outside the arena (x in +-{hw:g}, y in +-{hh:g} m)")
    if obstacles.count[1] > 0:
        room = min(hw, hh) - obstacles.wall_margin
        if obstacles.radius[1] >= room:
            raise bad("obstacles.radius", f"an obstacle of radius {obstacles.radius[1]:g} m with "
                                          f"wall_margin {obstacles.wall_margin:g} m does not fit in the "
                                          f"arena ({size}); the largest radius that fits is below {room:g} m")


def check_placement(scenario: Scenario, episodes: int = PLACEMENT_PROBE_EPISODES) -> None:
    """Draw ``episodes`` episodes as the simulator does and check that their random
    obstacles are all placed and their start states meet ``start`` (robots clear of
    obstacles, separations in range): the samplers give up after a bounded number of
    tries, and a scenario must not run with that silently. A scenario that misses in
    more than :data:`REFUSE_FRACTION` of the episodes cannot work and is refused; rarer
    misses are a warning."""
    from pe_sim.batch import BatchSim

    sim = BatchSim(scenario, num_envs=episodes, seed=0)
    o = scenario.obstacles
    least = len(o.fixed) + o.count[0]
    short = int((sim.n_obstacles < least).sum())
    _judge(scenario, short, episodes, "obstacles",
           f"fewer than the {least} requested obstacles could be placed (radius {o.radius[0]:g}-"
           f"{o.radius[1]:g} m, min_gap {o.min_gap:g} m, wall_margin {o.wall_margin:g} m in a "
           f"{scenario.arena_width:g} x {scenario.arena_height:g} m arena): use fewer or smaller obstacles")
    clearance = sim.initial_clearance()
    failed = int((clearance < scenario.start.obstacle_clearance - 1e-9).any(axis=1).sum())
    _judge(scenario, failed, episodes, "start",
           f"a robot starts closer than start.obstacle_clearance ({scenario.start.obstacle_clearance:g} m) "
           f"to an obstacle or wall (least clearance {clearance.min():.2f} m): the start region is "
           "(nearly) covered by obstacles; move or shrink them")
    _check_separation(scenario, sim.pose, episodes)


def _judge(scenario: Scenario, failed: int, episodes: int, key: str, problem: str) -> None:
    if not failed:
        return
    message = f"in {failed} of {episodes} drawn episodes {problem}"
    if failed > REFUSE_FRACTION * episodes:
        raise ConfigError(scenario.source, key, message)
    warnings.warn(f"{scenario.source}: key '{key}': {message}", stacklevel=4)


def _check_separation(scenario: Scenario, pose: Any, episodes: int) -> None:
    import numpy as np

    roles = np.array([r.role == "pursuer" for r in scenario.robots])
    lo, hi = scenario.start.separation
    d = np.hypot(pose[:, :, None, 0] - pose[:, None, :, 0], pose[:, :, None, 1] - pose[:, None, :, 1])
    opposed = roles[:, None] != roles[None, :]
    out = ((d < lo - 1e-9) | (d > hi + 1e-9)) & opposed
    failed = int(out.any(axis=(1, 2)).sum())
    if failed:  # a warning only: with several pursuers the sampler often cannot meet every pair
        warnings.warn(f"{scenario.source}: key 'start.separation': in {failed} of {episodes} drawn "
                      f"episodes some pursuer-evader distance at the start is outside [{lo:g}, {hi:g}] m "
                      "(the start sampler keeps its last try); widen the range", stacklevel=4)
