"""A small numpy rasteriser for ``render_mode="rgb_array"`` (top view, no extra
dependency): arena white, obstacles grey, pursuers red, evaders blue, a dark
tick for each heading, the capture radius as a faint ring around pursuers."""

from __future__ import annotations

import numpy as np

from pe_sim.scenario import Scenario

_COLOURS = {"pursuer": (214, 39, 40), "evader": (31, 119, 180)}
_OBSTACLE = (127, 127, 127)
_RING = (255, 200, 200)
_TICK = (20, 20, 20)


def render_frame(
    scenario: Scenario,
    pose: np.ndarray,
    obstacles: np.ndarray,
    n_obstacles: int,
    size: int = 400,
) -> np.ndarray:
    """An RGB image ``(size, size', 3)`` uint8 of one state: ``pose`` (N, 3), ``obstacles``
    (M, 3) with the first ``n_obstacles`` rows present. World +y is image up."""
    scale = size / max(scenario.arena_width, scenario.arena_height)  # pixels per metre
    w = round(scenario.arena_width * scale)
    h = round(scenario.arena_height * scale)
    img = np.full((h, w, 3), 255, dtype=np.uint8)
    # World coordinates of the pixel centres.
    xs = (np.arange(w) + 0.5) / scale - scenario.half_width
    ys = scenario.half_height - (np.arange(h) + 0.5) / scale
    X, Y = np.meshgrid(xs, ys)

    def disc(cx: float, cy: float, r: float, colour: tuple[int, int, int], ring: bool = False) -> None:
        d2 = (X - cx) ** 2 + (Y - cy) ** 2
        mask = (np.abs(d2 - r * r) <= 2.0 * r / scale) if ring else d2 <= r * r
        img[mask] = colour

    for cx, cy, r in obstacles[:n_obstacles]:
        disc(cx, cy, r, _OBSTACLE)
    for robot, (x, y, _) in zip(scenario.robots, pose, strict=True):
        if robot.role == "pursuer":
            disc(x, y, scenario.capture_radius, _RING, ring=True)
    for robot, (x, y, th) in zip(scenario.robots, pose, strict=True):
        r = max(robot.radius, 1.5 / scale)
        disc(x, y, r, _COLOURS[robot.role])
        for t in np.linspace(0.0, 2.0 * r, 8):
            col = int((x + t * np.cos(th) + scenario.half_width) * scale)
            row = int((scenario.half_height - (y + t * np.sin(th))) * scale)
            if 0 <= row < h and 0 <= col < w:
                img[row, col] = _TICK
    return img
