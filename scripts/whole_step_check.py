"""Adversarial single filter calls, checked over the whole step.

    .venv/bin/python scripts/whole_step_check.py [--calls 200000] [--seed 0]

Each call: the shipped robot (radius 0.15 m, 1 m/s, 2 rad/s) and filter config,
a random arena, 1-4 obstacles (radius 5 mm - 1 m), the robot placed 0-0.1 m from
the first obstacle or a wall (safe start), and a dangerous nominal command
(straight at or grazing past the obstacle, arbitrary, or NaN / inf / 1e300), with a random step
of 0.02-0.2 s and, in a quarter of the calls, per-constraint gains up to 1.7e308.
It counts, for the returned commands, overlaps at any time within the step
(closed form, and 32 samples of the arc as an independent check), non-finite or
out-of-bounds commands; and, for the clipped nominal commands that the old
end-of-step check would have accepted, how many overlap in mid-step and how deep.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from pe_safety_filter.config import load_filter_config
from pe_safety_filter.filter import SafetyFilter
from pe_safety_filter.kernel import end_of_step_ok
from pe_sim.safety_geometry import static_clearance, swept_static_clearance
from pe_sim.scenario import RobotSpec

ROBOT = RobotSpec("p", "pursuer", radius=0.15, v_max=1.0, omega_max=2.0)
BAD = (math.nan, math.inf, -math.inf, 1e300, -1e300)


def _call(rng: np.random.Generator, filters: dict):
    hw, hh = rng.uniform(1.0, 6.0, 2)
    dt = float(rng.choice([0.02, 0.05, 0.1, 0.2]))
    n = int(rng.integers(1, 5))
    obs = np.c_[rng.uniform(-hw, hw, n), rng.uniform(-hh, hh, n), rng.uniform(0.005, 1.0, n)]
    r = ROBOT.radius
    if rng.random() < 0.7:
        o = obs[0]
        phi = rng.uniform(-math.pi, math.pi)
        d = o[2] + r + rng.uniform(0.0, 0.1)
        x, y = o[0] + d * math.cos(phi), o[1] + d * math.sin(phi)
        aim = math.atan2(o[1] - y, o[0] - x)
        spread = 1.5
        if rng.random() < 0.5:  # grazing: heading along the tangent, the pass is mid-step
            aim += rng.choice([-1.0, 1.0]) * math.asin(min(1.0, (o[2] + r) / d))
            spread = 0.05
    else:
        spread = 1.5
        x = rng.choice([-1.0, 1.0]) * (hw - r - rng.uniform(0.0, 0.1))
        y = rng.uniform(-hh, hh) * 0.9
        aim = 0.0 if x > 0 else math.pi
    th = aim + rng.uniform(-spread, spread)
    kind = rng.random()
    if kind < 0.5:
        u = np.array([rng.uniform(0.0, 1.0), rng.uniform(-2.0, 2.0) * (spread / 1.5)])
    elif kind < 0.9:
        u = rng.uniform(-5.0, 5.0, 2)
    else:
        u = np.array([rng.choice(BAD), rng.choice(BAD)])
    gains = None
    if rng.random() < 0.25:
        gains = 10.0 ** rng.uniform(-1.0, 308.2, n + 4)
    f = SafetyFilter(filters["config"], ROBOT, hw, hh, dt)
    return f, np.array([x, y, th]), u, obs, gains, hw, hh, dt


def _sampled_clearance(pose, u, dt, r, obs, hw, hh, n=32) -> float:
    """Least clearance at n + 1 evenly spaced times of the exact arc (numpy, independent
    of the closed form)."""
    t = np.linspace(0.0, dt, n + 1)
    half = 0.5 * u[1] * t
    chord = u[0] * t * np.sinc(half / math.pi)
    x = pose[0] + chord * np.cos(pose[2] + half)
    y = pose[1] + chord * np.sin(pose[2] + half)
    wall = np.minimum(hw - np.abs(x), hh - np.abs(y)) - r
    disc = np.hypot(x[:, None] - obs[:, 0], y[:, None] - obs[:, 1]) - r - obs[:, 2]
    return float(min(wall.min(), disc.min()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    filters: dict = {"config": load_filter_config("vcp_cbf")}
    r = ROBOT.radius
    calls = moving = overlaps = sampled_overlaps = nonfinite = out_of_bounds = 0
    old_accepted = old_mid = 0
    old_worst = 0.0
    while calls < args.calls:
        f, pose, u_nom, obs, gains, hw, hh, dt = _call(rng, filters)
        now, _ = static_clearance(pose[0], pose[1], r, obs, len(obs), hw, hh)
        if now < 0.0:
            continue
        calls += 1
        u = f.filter(pose, u_nom, obs, gains=gains).u_safe
        if not np.all(np.isfinite(u)):
            nonfinite += 1
            continue
        if not (0.0 <= u[0] <= ROBOT.v_max and abs(u[1]) <= ROBOT.omega_max):
            out_of_bounds += 1
        if u[0] != 0.0:
            moving += 1
        c, _, _ = swept_static_clearance(pose[0], pose[1], pose[2], u[0], u[1], dt, r, obs, len(obs),
                                         hw, hh)
        overlaps += c < 0.0
        sampled_overlaps += _sampled_clearance(pose, u, dt, r, obs, hw, hh) < 0.0
        # The old end-of-step check on the clipped nominal command.
        if np.all(np.isfinite(u_nom)):
            ref = np.clip(u_nom, [0.0, -ROBOT.omega_max], [ROBOT.v_max, ROBOT.omega_max])
            if ref[0] > 0.0 and end_of_step_ok(pose[0], pose[1], pose[2], ref[0], ref[1], dt, r, obs,
                                               len(obs), hw, hh, 1e-3, now, np.zeros((0, 3)),
                                               np.zeros(0), np.zeros(0), 0):
                old_accepted += 1
                c_old, _, _ = swept_static_clearance(pose[0], pose[1], pose[2], ref[0], ref[1], dt,
                                                     r, obs, len(obs), hw, hh)
                if c_old < 0.0:
                    old_mid += 1
                    old_worst = max(old_worst, -c_old)
    print(f"{calls} adversarial calls ({moving} returned a moving command), steps 0.02-0.2 s")
    print(f"  filtered: {overlaps} overlaps within the step (closed form), {sampled_overlaps} "
          f"(32 samples), {nonfinite} non-finite, {out_of_bounds} out of bounds")
    print(f"  old end-of-step check on the clipped nominal: {old_accepted} moving commands "
          f"accepted, {old_mid} of them overlap mid-step "
          f"({old_mid / max(old_accepted, 1):.2%}), worst {old_worst * 1e3:.1f} mm")


if __name__ == "__main__":
    main()
