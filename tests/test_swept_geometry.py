"""Continuous-time clearance: the closed form over a whole arc against dense samples of
the exact motion, for random arcs, obstacles and walls, and the filter's promise over
the whole step."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pe_safety_filter.config import FilterConfig
from pe_safety_filter.filter import SafetyFilter
from pe_sim.dynamics import arc_step
from pe_sim.safety_geometry import (
    PAIR_REL_TOL,
    arc_arena_clearance,
    arc_point_distance,
    pair_swept_clearance,
    static_clearance,
    swept_static_clearance,
)
from pe_sim.scenario import RobotSpec

N_SAMPLES = 400


def _sampled(x, y, th, v, w, dt, r, obstacles, hw, hh):
    """Least clearance over N_SAMPLES + 1 evenly spaced times (independent of the closed form)."""
    best = math.inf
    for t in np.linspace(0.0, dt, N_SAMPLES + 1):
        px, py, _ = arc_step(x, y, th, v, w, t)
        c, _ = static_clearance(px, py, r, obstacles, obstacles.shape[0], hw, hh)
        best = min(best, c)
    return best


omegas = st.one_of(st.just(0.0), st.floats(-1e-9, 1e-9), st.floats(-30.0, 30.0),
                   st.floats(-400.0, 400.0))


@settings(max_examples=150, deadline=None)
@given(x=st.floats(-3, 3), y=st.floats(-3, 3), th=st.floats(-math.pi, math.pi),
       v=st.floats(-2.0, 3.0), w=omegas, dt=st.floats(0.005, 0.5),
       obs=st.lists(st.tuples(st.floats(-4, 4), st.floats(-4, 4), st.floats(0.01, 1.5)),
                    min_size=0, max_size=4),
       hw=st.floats(1.0, 5.0), hh=st.floats(1.0, 5.0), r=st.floats(0.02, 0.4))
def test_closed_form_matches_dense_samples(x, y, th, v, w, dt, obs, hw, hh, r):
    obstacles = np.array(obs, dtype=np.float64).reshape(-1, 3)
    closed, _, t = swept_static_clearance(x, y, th, v, w, dt, r, obstacles, obstacles.shape[0], hw, hh)
    sampled = _sampled(x, y, th, v, w, dt, r, obstacles, hw, hh)
    # Never above any sample (it is a minimum over the same arc) ...
    assert closed <= sampled + 1e-12
    # ... and below the sampled minimum by at most what the grid can miss (speed x half spacing).
    assert closed >= sampled - abs(v) * dt / N_SAMPLES / 2 - 1e-12
    # It is attained at the reported time.
    px, py, _ = arc_step(x, y, th, v, w, t)
    at_t, _ = static_clearance(px, py, r, obstacles, obstacles.shape[0], hw, hh)
    assert at_t == pytest.approx(closed, abs=1e-9)
    assert 0.0 <= t <= dt


def test_point_distance_finds_the_mid_arc_minimum():
    # Straight pass: closest at the middle, where the ends are far.
    d, t = arc_point_distance(0.0, 0.0, 0.0, 1.0, 0.0, 0.2, 0.1, 0.155)
    assert d == pytest.approx(0.155) and t == pytest.approx(0.1)
    # Quarter turn of radius 1 about (0, 1): the circle's centre is at distance 1 everywhere.
    d, _ = arc_point_distance(0.0, 0.0, 0.0, 1.0, 1.0, math.pi / 2, 0.0, 1.0)
    assert d == pytest.approx(1.0)
    # A point outside the swept angle: the nearest end wins.
    d, t = arc_point_distance(0.0, 0.0, 0.0, 1.0, 1.0, 0.5, 0.0, -1.0)
    assert t == 0.0 and d == pytest.approx(1.0)


def test_arena_extreme_inside_the_step():
    # Turning through heading pi/2 near the top wall: the highest point is mid-step.
    c_end0, _ = static_clearance(0.0, 0.0, 0.1, np.zeros((0, 3)), 0, 5.0, 0.2)
    c, t = arc_arena_clearance(0.0, 0.0, math.pi / 4, 1.0, -10.0, 0.157, 0.1, 5.0, 0.2)
    x1, y1, _ = arc_step(0.0, 0.0, math.pi / 4, 1.0, -10.0, 0.157)
    c_end1, _ = static_clearance(x1, y1, 0.1, np.zeros((0, 3)), 0, 5.0, 0.2)
    assert 0.0 < t < 0.157
    assert c < min(c_end0, c_end1) - 1e-3


@settings(max_examples=60, deadline=None)
@given(st.tuples(*[st.floats(-1.0, 1.0)] * 2, st.floats(-math.pi, math.pi), st.floats(-1.0, 2.0),
                 st.floats(-6.0, 6.0)),
       st.tuples(*[st.floats(-1.0, 1.0)] * 2, st.floats(-math.pi, math.pi), st.floats(-1.0, 2.0),
                 st.floats(-6.0, 6.0)),
       st.floats(0.01, 0.3))
def test_pair_clearance_is_certified(a, b, dt):
    c, t = pair_swept_clearance(*a, *b, dt, 0.3, 1e-10)
    ts = np.linspace(0.0, dt, 2001)
    sampled = min(math.hypot(arc_step(*a[:3], a[3], a[4], s)[0] - arc_step(*b[:3], b[3], b[4], s)[0],
                             arc_step(*a[:3], a[3], a[4], s)[1] - arc_step(*b[:3], b[3], b[4], s)[1])
                  for s in ts) - 0.3
    speed = abs(a[3]) + abs(b[3])
    assert c >= sampled - speed * dt / 2000 / 2 - 1e-9
    assert c <= sampled + 1e-9 + PAIR_REL_TOL * max(sampled, 0.0)
    assert 0.0 <= t <= dt


@st.composite
def reckless_worlds(draw):
    """A robot next to an obstacle or a wall, driven at it or past it, with long steps."""
    hw, hh = draw(st.floats(1.0, 4.0)), draw(st.floats(1.0, 4.0))
    robot = RobotSpec("me", "pursuer", radius=draw(st.floats(0.05, 0.3)),
                      v_max=draw(st.floats(0.3, 2.0)), omega_max=draw(st.floats(0.5, 6.0)))
    dt = draw(st.sampled_from([0.05, 0.1, 0.2]))
    n = draw(st.integers(1, 4))
    obstacles = np.array([[draw(st.floats(-hw, hw)), draw(st.floats(-hh, hh)),
                           draw(st.floats(0.005, 0.8))] for _ in range(n)])
    o = obstacles[0]
    phi = draw(st.floats(-math.pi, math.pi))
    dist = o[2] + robot.radius + draw(st.floats(0.0, 0.3))
    pose = np.array([o[0] + dist * math.cos(phi), o[1] + dist * math.sin(phi),
                     draw(st.floats(-math.pi, math.pi))])
    u = np.array([draw(st.floats(-1.0, 3.0)), draw(st.floats(-8.0, 8.0))])
    return robot, hw, hh, dt, obstacles, pose, u


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(reckless_worlds())
def test_filter_keeps_the_whole_step_safe(world):
    robot, hw, hh, dt, obstacles, pose, u_nom = world
    now, _ = static_clearance(pose[0], pose[1], robot.radius, obstacles, len(obstacles), hw, hh)
    if now < 0.0 or min(hw, hh) <= robot.radius + 0.15:
        return
    f = SafetyFilter(FilterConfig(), robot, hw, hh, dt)
    u = f.filter(pose, u_nom, obstacles).u_safe
    margin = min(now, f.config.margin)
    c, _, _ = swept_static_clearance(pose[0], pose[1], pose[2], u[0], u[1], dt, robot.radius,
                                     obstacles, len(obstacles), hw, hh)
    assert c >= margin
    assert _sampled(pose[0], pose[1], pose[2], u[0], u[1], dt, robot.radius, obstacles, hw, hh) >= margin


def test_a_subnormal_turn_rate_is_a_straight_line():
    """omega = 2.2e-309 (subnormal): the arc formula's stationary time divides by omega and
    lost the closest approach to an obstacle straight ahead; found by hypothesis."""
    obstacles = np.array([[1.5, 0.0, 1.0]])
    for w in (0.0, 2.225073858507203e-309, -5e-324):
        closed, _, _ = swept_static_clearance(1.0, 0.0, 2.0, -1.0, w, 0.5, 0.25, obstacles, 1, 1.0, 1.0)
        assert closed <= _sampled(1.0, 0.0, 2.0, -1.0, w, 0.5, 0.25, obstacles, 1.0, 1.0) + 1e-12
