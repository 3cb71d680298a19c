"""Constraint assembly: the inflation proof holds numerically, is tight, and each row is
the barrier's derivative along the unicycle (checked against a finite difference)."""

from __future__ import annotations

import numpy as np

from pe_safety_filter.barriers import assemble_constraints
from pe_sim.dynamics import unicycle_step
from pe_sim.safety_geometry import arena_clearance, disc_clearance

RNG = np.random.default_rng(7)


def _vcp(pose, d):
    return pose[:2] + d * np.array([np.cos(pose[2]), np.sin(pose[2])])


def test_obstacle_barrier_implies_body_clearance():
    """h >= 0 on the virtual point => body disc clear of the obstacle disc (100k samples)."""
    n = 100_000
    d = RNG.uniform(0.01, 0.5, n)
    r = RNG.uniform(0.05, 0.4, n)
    ro = RNG.uniform(0.1, 2.0, n)
    pose = np.stack([RNG.uniform(-4, 4, n), RNG.uniform(-4, 4, n), RNG.uniform(-np.pi, np.pi, n)], 1)
    q = pose[:, :2] + d[:, None] * np.stack([np.cos(pose[:, 2]), np.sin(pose[:, 2])], 1)
    h = np.sum(q**2, 1) - (ro + r + d) ** 2          # obstacle at the origin
    body = np.hypot(pose[:, 0], pose[:, 1]) - r - ro
    safe_q = h >= 0
    assert safe_q.sum() > 10_000
    assert np.all(body[safe_q] >= -1e-12)
    # Without the inflation the implication fails: the trap the brief describes.
    h_raw = np.sum(q**2, 1) - (ro + r) ** 2
    assert np.any(body[h_raw >= 0] < -1e-3)


def test_inflation_is_tight_when_heading_away():
    d, r, ro = 0.15, 0.15, 0.5
    pose = np.array([ro + r, 0.0, 0.0])               # touching, heading straight away
    q = _vcp(pose, d)
    assert np.isclose(np.hypot(*q), ro + r + d)       # h == 0 exactly at body contact
    assert np.isclose(disc_clearance(pose[0], pose[1], r, 0.0, 0.0, ro), 0.0)


def test_wall_barrier_implies_body_inside_arena():
    n = 100_000
    hw, hh = 5.0, 3.0
    d = RNG.uniform(0.01, 0.5, n)
    r = RNG.uniform(0.05, 0.4, n)
    pose = np.stack([RNG.uniform(-hw, hw, n), RNG.uniform(-hh, hh, n), RNG.uniform(-np.pi, np.pi, n)], 1)
    q = pose[:, :2] + d[:, None] * np.stack([np.cos(pose[:, 2]), np.sin(pose[:, 2])], 1)
    h = np.minimum(hw - r - d - np.abs(q[:, 0]), hh - r - d - np.abs(q[:, 1]))
    body = np.array([arena_clearance(p[0], p[1], rr, hw, hh) for p, rr in zip(pose, r, strict=True)])
    assert (h >= 0).sum() > 10_000
    assert np.all(body[h >= 0] >= -1e-12)


def test_robot_barrier_with_2d_implies_bodies_apart():
    n = 100_000
    d = RNG.uniform(0.01, 0.5, n)
    ri, rj = RNG.uniform(0.05, 0.4, n), RNG.uniform(0.05, 0.4, n)
    pi = np.stack([RNG.uniform(-2, 2, n), RNG.uniform(-2, 2, n), RNG.uniform(-np.pi, np.pi, n)], 1)
    pj = np.stack([RNG.uniform(-2, 2, n), RNG.uniform(-2, 2, n), RNG.uniform(-np.pi, np.pi, n)], 1)
    qi = pi[:, :2] + d[:, None] * np.stack([np.cos(pi[:, 2]), np.sin(pi[:, 2])], 1)
    qj = pj[:, :2] + d[:, None] * np.stack([np.cos(pj[:, 2]), np.sin(pj[:, 2])], 1)
    h = np.sum((qi - qj) ** 2, 1) - (ri + rj + 2 * d) ** 2
    body = np.hypot(*(pi[:, :2] - pj[:, :2]).T) - ri - rj
    assert (h >= 0).sum() > 10_000
    assert np.all(body[h >= 0] >= -1e-12)
    # Inflating by d only (not 2d) is not enough.
    h_d = np.sum((qi - qj) ** 2, 1) - (ri + rj + d) ** 2
    assert np.any(body[h_d >= 0] < -1e-3)


def _barriers(pose, d, r, obstacles, hw, hh, teammates, tm_r, buffer):
    q = _vcp(pose, d)
    out = [np.sum((q - o[:2]) ** 2) - (o[2] + r + d) ** 2 for o in obstacles]
    out += [hw - r - d - q[0], hw - r - d + q[0], hh - r - d - q[1], hh - r - d + q[1]]
    for t, rt in zip(teammates, tm_r, strict=True):
        out.append(np.sum((q - _vcp(t, d)) ** 2) - (r + rt + 2 * d + buffer) ** 2)
    return np.array(out)


def test_rows_are_the_barrier_derivative_along_the_dynamics():
    """A u - b (unnormalised) equals dh/dt + gain h (teammates: half of gain h), with
    dh/dt from a finite difference of the exact motion -- independent of the formulas."""
    d, r, hw, hh, buffer = 0.15, 0.15, 6.0, 4.0, 0.1
    obstacles = np.array([[1.0, 0.5, 0.4], [-2.0, -1.0, 0.8]])
    teammates = np.array([[2.5, -2.0, 1.0]])
    tm_r = np.array([0.2])
    gains = np.array([1.0, 2.0, 0.5, 3.0, 1.5, 2.5, 4.0])
    for _ in range(50):
        pose = np.array([RNG.uniform(-3, 3), RNG.uniform(-2, 2), RNG.uniform(-np.pi, np.pi)])
        u = np.array([RNG.uniform(0, 1), RNG.uniform(-2, 2)])
        A, b, _ = assemble_constraints(pose, d, r, obstacles, hw, hh, teammates, tm_r, gains,
                                       robot_buffer=buffer, normalize=False)
        eps = 1e-6
        h0 = _barriers(pose, d, r, obstacles, hw, hh, teammates, tm_r, buffer)
        plus = _barriers(unicycle_step(pose, u, eps), d, r, obstacles, hw, hh, teammates, tm_r, buffer)
        minus = _barriers(unicycle_step(pose, u, -eps), d, r, obstacles, hw, hh, teammates, tm_r, buffer)
        hdot = (plus - minus) / (2 * eps)
        share = np.array([1.0] * 6 + [0.5])
        expected = hdot + share * gains * h0
        assert np.allclose(A @ u - b, expected, rtol=1e-6, atol=1e-6)
        # Normalising rows keeps each half-plane: same sign of A u - b.
        An, bn, _ = assemble_constraints(pose, d, r, obstacles, hw, hh, teammates, tm_r, gains,
                                         robot_buffer=buffer)
        assert np.allclose(np.linalg.norm(An, axis=1), 1.0)
        assert np.array_equal(np.sign(An @ u - bn), np.sign(A @ u - b))


def test_default_gains_and_signed_distance():
    pose = np.array([0.0, 0.0, 0.0])
    A, b, dist = assemble_constraints(pose, 0.1, 0.15, np.array([[2.0, 0.0, 0.5]]), 5.0, 5.0,
                                      default_gains=(1.0, 3.0, 1.0), normalize=False)
    assert A.shape == (5, 2) and b.shape == (5,)
    assert np.isclose(dist[0], 2.0 - 0.1 - (0.5 + 0.15 + 0.1))      # |q - c| - R
    assert np.isclose(dist[1], 5.0 - 0.15 - 0.1 - 0.1)               # +x wall: q_x = 0.1
    assert np.isclose(b[1], -3.0 * dist[1])                           # wall gain 3
