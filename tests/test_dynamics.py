"""Exact unicycle integration against closed-form arcs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pe_sim.dynamics import arc_step, unicycle_step, wrap_angle


def closed_form_arc(x, y, theta, v, omega, t):
    """The textbook circular-arc solution (valid for omega != 0)."""
    rho = v / omega
    return (x + rho * (math.sin(theta + omega * t) - math.sin(theta)),
            y - rho * (math.cos(theta + omega * t) - math.cos(theta)),
            wrap_angle(theta + omega * t))


@pytest.mark.parametrize("v,omega", [(1.0, 2.84), (0.5, -1.0), (0.2, 0.3), (1.0, -2.84), (0.0, 1.5)])
def test_arc_step_matches_closed_form(v, omega):
    rng = np.random.default_rng(0)
    for _ in range(50):
        x, y = rng.uniform(-5, 5, 2)
        theta = rng.uniform(-math.pi, math.pi)
        dt = rng.uniform(0.01, 0.5)
        got = arc_step(x, y, theta, v, omega, dt)
        want = closed_form_arc(x, y, theta, v, omega, dt)
        assert got[0] == pytest.approx(want[0], abs=1e-12)
        assert got[1] == pytest.approx(want[1], abs=1e-12)
        assert math.cos(got[2] - want[2]) == pytest.approx(1.0, abs=1e-14)


def test_straight_line_when_omega_is_zero():
    x, y, th = arc_step(1.0, 2.0, 0.3, 0.8, 0.0, 0.05)
    assert x == pytest.approx(1.0 + 0.8 * 0.05 * math.cos(0.3), abs=1e-15)
    assert y == pytest.approx(2.0 + 0.8 * 0.05 * math.sin(0.3), abs=1e-15)
    assert th == pytest.approx(0.3, abs=1e-15)


@pytest.mark.parametrize("omega", [1e-3, 1e-5, 1e-7, 1e-9, 1e-12, -1e-8])
def test_straight_line_limit_is_continuous_and_exact(omega):
    """Near omega = 0 the Taylor branch agrees with the arc formula and with the
    closed form computed in extended precision."""
    from decimal import Decimal, getcontext

    getcontext().prec = 50
    x0, y0, th0, v, dt = 0.5, -0.25, 1.1, 1.0, 0.05
    got = arc_step(x0, y0, th0, v, omega, dt)
    # closed form in high precision via Decimal-based sin/cos series
    def dsin(a: Decimal) -> Decimal:
        term, total, n = a, a, 1
        while abs(term) > Decimal(10) ** -45:
            term = -term * a * a / ((2 * n) * (2 * n + 1))
            total += term
            n += 1
        return total

    def dcos(a: Decimal) -> Decimal:
        term, total, n = Decimal(1), Decimal(1), 1
        while abs(term) > Decimal(10) ** -45:
            term = -term * a * a / ((2 * n - 1) * (2 * n))
            total += term
            n += 1
        return total

    W, T, TH, V = Decimal(omega), Decimal(dt), Decimal(th0), Decimal(v)
    want_x = Decimal(x0) + V / W * (dsin(TH + W * T) - dsin(TH))
    want_y = Decimal(y0) - V / W * (dcos(TH + W * T) - dcos(TH))
    assert got[0] == pytest.approx(float(want_x), abs=1e-15)
    assert got[1] == pytest.approx(float(want_y), abs=1e-15)


def test_turning_in_place_keeps_position():
    x, y, th = arc_step(3.0, -1.0, 0.0, 0.0, 2.0, 0.05)
    assert (x, y) == (3.0, -1.0)
    assert th == pytest.approx(0.1)


def test_full_circle_returns_to_start():
    omega, v, dt = 2.0, 1.0, 0.001
    steps = round(2 * math.pi / omega / dt)
    pose = np.array([0.0, 0.0, 0.0])
    dt_exact = 2 * math.pi / omega / steps
    for _ in range(steps):
        pose = np.array(arc_step(*pose, v, omega, dt_exact))
    assert np.allclose(pose[:2], [0.0, 0.0], atol=1e-9)


def test_array_version_matches_scalar():
    rng = np.random.default_rng(1)
    poses = rng.uniform(-3, 3, (7, 4, 3))
    cmds = rng.uniform(-2, 2, (7, 4, 2))
    out = unicycle_step(poses, cmds, 0.05)
    for idx in np.ndindex(7, 4):
        assert np.allclose(out[idx], arc_step(*poses[idx], *cmds[idx], 0.05), atol=0, rtol=0)


def test_standing_still_changes_nothing_bit_for_bit():
    assert arc_step(1.25, -3.5, 0.7, 0.0, 0.0, 0.05) == (1.25, -3.5, 0.7)
    assert arc_step(0.0, 0.0, -math.pi, 0.0, 0.0, 0.05)[2] == -math.pi
