"""The filter's promise, checked from true geometry with code independent of the barriers:
a robot that starts safe stays safe during the whole exact step with the filtered
command (closed-form swept clearance, and dense samples of the arc), for any nominal
command; a nominal command that is already safe is left unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from pe_safety_filter.config import FilterConfig, load_filter_config
from pe_safety_filter.filter import BACKUP_REASONS, SafetyFilter
from pe_sim.dynamics import unicycle_step
from pe_sim.safety_geometry import arc_point_distance, body_clearance, swept_body_clearance
from pe_sim.scenario import RobotSpec

BAD = [math.nan, math.inf, -math.inf, 1e300, -1e300, 0.0]


def _teammate_clearance(p, r, teammates, radii):
    if len(teammates) == 0:
        return np.inf
    return float(np.min(np.hypot(*(teammates[:, :2] - p[:2]).T) - r - radii))


def _sampled_clearance(pose, u, dt, r, obstacles, hw, hh, n=64):
    """Least clearance over n + 1 evenly spaced times of the step (sampled, not exact)."""
    return min(body_clearance(unicycle_step(pose, u, t), r, obstacles, hw, hh)
               for t in np.linspace(0.0, dt, n + 1))


def _swept_teammate_clearance(pose, u, dt, r, teammates, radii):
    """Least clearance of the arc from every teammate's disc (radii include the reach)."""
    out = np.inf
    for t, rt in zip(teammates, radii, strict=True):
        d, _ = arc_point_distance(pose[0], pose[1], pose[2], u[0], u[1], dt, t[0], t[1])
        out = min(out, d - r - rt)
    return out


def _cbf_slack(pose, u, cfg, robot, obstacles, hw, hh, teammates, radii):
    """dh/dt + gain h (teammates: half) for every barrier, from the unicycle model
    q' = v e1 + d omega e2 -- written here independently of pe_safety_filter.barriers."""
    d, r = cfg.lookahead, robot.radius
    c, s = math.cos(pose[2]), math.sin(pose[2])
    q = pose[:2] + d * np.array([c, s])
    qdot = u[0] * np.array([c, s]) + d * u[1] * np.array([-s, c])
    out = []
    for o in obstacles:
        h = np.sum((q - o[:2]) ** 2) - (o[2] + r + d) ** 2
        out.append(2 * (q - o[:2]) @ qdot + cfg.gain_obstacle * h)
    lim_x, lim_y = hw - r - d, hh - r - d
    out += [-qdot[0] + cfg.gain_wall * (lim_x - q[0]), qdot[0] + cfg.gain_wall * (lim_x + q[0]),
            -qdot[1] + cfg.gain_wall * (lim_y - q[1]), qdot[1] + cfg.gain_wall * (lim_y + q[1])]
    for t, rt in zip(teammates, radii, strict=True):
        qt = t[:2] + d * np.array([math.cos(t[2]), math.sin(t[2])])
        h = np.sum((q - qt) ** 2) - (r + rt + 2 * d + cfg.robot_buffer) ** 2
        out.append(2 * (q - qt) @ qdot + 0.5 * cfg.gain_teammate * h)
    return np.array(out)


@st.composite
def worlds(draw):
    hw = draw(st.floats(1.5, 12.0))
    hh = draw(st.floats(1.5, 12.0))
    robot = RobotSpec("me", "pursuer", radius=draw(st.floats(0.05, 0.35)),
                      v_max=draw(st.floats(0.2, 2.5)), omega_max=draw(st.floats(0.3, 4.0)))
    dt = draw(st.sampled_from([0.02, 0.05, 0.1, 0.2]))
    cfg = FilterConfig(lookahead=draw(st.floats(0.02, 0.4)),
                       gain_obstacle=draw(st.floats(0.1, 10.0)), gain_wall=draw(st.floats(0.1, 10.0)),
                       gain_teammate=draw(st.floats(0.1, 10.0)),
                       margin=draw(st.sampled_from([0.0, 1e-3, 0.01])))
    n_obs = draw(st.integers(0, 5))
    obstacles = np.array([[draw(st.floats(-hw, hw)), draw(st.floats(-hh, hh)), draw(st.floats(0.1, 1.5))]
                          for _ in range(n_obs)]).reshape(-1, 3)
    # Robot: anywhere, or placed at a small clearance from an obstacle or a wall.
    theta = draw(st.floats(-math.pi, math.pi))
    where = draw(st.sampled_from(["free", "obstacle", "wall"]))
    if where == "obstacle" and n_obs:
        o = obstacles[draw(st.integers(0, n_obs - 1))]
        phi = draw(st.floats(-math.pi, math.pi))
        dist = o[2] + robot.radius + draw(st.floats(0.0, 0.4))
        pose = np.array([o[0] + dist * math.cos(phi), o[1] + dist * math.sin(phi), theta])
    elif where == "wall":
        gap = robot.radius + draw(st.floats(0.0, 0.4))
        pose = np.array([draw(st.sampled_from([-1, 1])) * (hw - gap), draw(st.floats(-hh, hh)) * 0.9, theta])
    else:
        pose = np.array([draw(st.floats(-hw, hw)), draw(st.floats(-hh, hh)), theta])
    now = body_clearance(pose, robot.radius, obstacles, hw, hh)
    assume(now >= 0.0)
    n_tm = draw(st.integers(0, 2))
    teammates, radii = [], []
    for _ in range(n_tm):
        phi = draw(st.floats(-math.pi, math.pi))
        rt = draw(st.floats(0.05, 0.35))
        dist = robot.radius + rt + draw(st.floats(0.0, 1.0))
        teammates.append([pose[0] + dist * math.cos(phi), pose[1] + dist * math.sin(phi),
                          draw(st.floats(-math.pi, math.pi))])
        radii.append(rt)
    teammates = np.array(teammates).reshape(-1, 3)
    radii = np.array(radii)
    # Nominal: arbitrary finite, non-finite/huge, or straight at the nearest obstacle.
    kind = draw(st.sampled_from(["any", "bad", "into_obstacle", "in_bounds"]))
    if kind == "any":
        u = np.array([draw(st.floats(-1e6, 1e6)), draw(st.floats(-1e6, 1e6))])
    elif kind == "bad":
        u = np.array([draw(st.sampled_from(BAD)), draw(st.sampled_from(BAD))])
    elif kind == "into_obstacle" and n_obs:
        o = obstacles[np.argmin(np.hypot(*(obstacles[:, :2] - pose[:2]).T) - obstacles[:, 2])]
        pose[2] = math.atan2(o[1] - pose[1], o[0] - pose[0]) + draw(st.floats(-0.3, 0.3))
        u = np.array([robot.v_max, draw(st.floats(-0.5, 0.5))])
    else:
        u = np.array([draw(st.floats(0.0, robot.v_max)), draw(st.floats(-robot.omega_max, robot.omega_max))])
    return cfg, robot, hw, hh, dt, obstacles, pose, teammates, radii, u, now


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                  HealthCheck.too_slow])
@given(worlds())
def test_filtered_next_state_is_safe_and_safe_nominal_is_unchanged(world):
    cfg, robot, hw, hh, dt, obstacles, pose, teammates, radii, u_nom, now = world
    f = SafetyFilter(cfg, robot, hw, hh, dt)
    res = f.filter(pose, u_nom, obstacles, teammates if len(teammates) else None, radii)
    u = res.u_safe
    assert np.all(np.isfinite(u))
    assert robot.v_min <= u[0] <= robot.v_max and -robot.omega_max <= u[1] <= robot.omega_max
    nxt = unicycle_step(pose, u, dt)
    after = body_clearance(nxt, robot.radius, obstacles, hw, hh)
    assert after >= min(now, cfg.margin) >= 0.0
    # The whole step, not only its end: closed form and dense samples.
    swept, _ = swept_body_clearance(pose, u, dt, robot.radius, obstacles, hw, hh)
    assert swept >= min(now, cfg.margin)
    assert _sampled_clearance(pose, u, dt, robot.radius, obstacles, hw, hh) >= min(now, cfg.margin)
    moved = u[0] != 0.0
    if moved:
        # Out of every teammate's one-step reachable disc (v_max dt, the default reach),
        # along the whole arc.
        assert _teammate_clearance(nxt, robot.radius, teammates, radii + robot.v_max * dt) >= 0.0
        assert _swept_teammate_clearance(pose, u, dt, robot.radius, teammates,
                                         radii + robot.v_max * dt) >= cfg.margin
    event(f"tier {res.tier}")
    assert (res.tier == "backup") == (res.backup_reason is not None)
    assert res.intervened == (res.correction_size > 1e-3)

    # Already safe and strictly inside the barriers: unchanged.
    if np.all(np.isfinite(u_nom)):
        ref = np.clip(u_nom, [robot.v_min, -robot.omega_max], [robot.v_max, robot.omega_max])
        slack = _cbf_slack(pose, ref, cfg, robot, obstacles, hw, hh, teammates, radii)
        swept_ref, _ = swept_body_clearance(pose, ref, dt, robot.radius, obstacles, hw, hh)
        ok_next = (swept_ref >= min(now, cfg.margin)
                   and (ref[0] == 0.0 or _swept_teammate_clearance(
                       pose, ref, dt, robot.radius, teammates, radii + robot.v_max * dt) >= cfg.margin))
        if np.all(slack > 1e-6 * (1.0 + np.abs(slack))) and ok_next:
            event("safe nominal: checked unchanged")
            assert np.array_equal(u, ref)
            assert res.tier == "nominal" and not res.intervened and res.correction_size == 0.0


def _seed_filter(**overrides):
    cfg = load_filter_config("vcp_cbf")
    cfg = FilterConfig(**{**cfg.__dict__, **overrides})
    return SafetyFilter(cfg, RobotSpec("p", "pursuer"), 10.0, 10.0, 0.05)


OBS = np.array([[2.0, 0.0, 0.5], [-4.0, 3.0, 0.8]])


def test_unchanged_when_safe_and_far():
    res = _seed_filter().filter(np.array([-2.0, -2.0, 0.3]), np.array([0.8, 0.5]), OBS)
    assert res.tier == "nominal" and res.backup_reason is None and not res.intervened
    assert np.array_equal(res.u_safe, [0.8, 0.5]) and np.array_equal(res.correction, [0.0, 0.0])
    assert res.active.size == 0 and res.min_barrier > 0 and res.solve_time_s > 0


def test_straight_into_obstacle_is_slowed_and_active_reported():
    res = _seed_filter().filter(np.array([1.05, 0.1, 0.0]), np.array([1.0, 0.0]), OBS)
    assert res.tier in ("qp", "tightened") and res.intervened
    assert res.u_safe[0] < 1.0 and list(res.active) == [0]
    assert np.allclose(res.correction, res.u_safe - [1.0, 0.0])


@pytest.mark.parametrize("pose,u,reason", [
    ([math.nan, 0.0, 0.0], [1.0, 0.0], "nonfinite_state"),
    ([0.0, 0.0, math.inf], [1.0, 0.0], "nonfinite_state"),
    ([0.0, 0.0, 0.0], [math.nan, 0.0], "nonfinite_command"),
    ([0.0, 0.0, 0.0], [0.5, -math.inf], "nonfinite_command"),
    ([math.nan, 0.0, 0.0], [math.nan, 0.0], "nonfinite_state"),
])
def test_nonfinite_input_gives_backup_with_reason(pose, u, reason):
    res = _seed_filter().filter(np.array(pose), np.array(u), OBS)
    assert res.tier == "backup" and res.backup_reason == reason and reason in BACKUP_REASONS
    assert np.array_equal(res.u_safe, [0.0, 0.0])
    if not np.all(np.isfinite(u)):
        assert np.array_equal(res.correction, [0.0, 0.0]) and res.correction_size == 0.0
    else:
        assert np.array_equal(res.correction, -np.array(u)) and res.intervened


def test_nonfinite_obstacle_or_teammate_is_a_nonfinite_state():
    f = _seed_filter()
    bad = OBS.copy()
    bad[1, 2] = math.nan
    assert f.filter(np.zeros(3), np.array([1.0, 0.0]), bad).backup_reason == "nonfinite_state"
    res = f.filter(np.zeros(3), np.array([1.0, 0.0]), OBS, teammates=np.array([[3.0, math.inf, 0.0]]))
    assert res.backup_reason == "nonfinite_state"
    res = f.filter(np.zeros(3), np.array([1.0, 0.0]), OBS, gains=np.array([1, 1, 1, 1, 1, math.nan]))
    assert res.backup_reason == "nonfinite_command"


@pytest.mark.parametrize("age", [0.26, 10.0, math.nan, math.inf])
def test_stale_state_gives_full_stop(age):
    res = _seed_filter().filter(np.zeros(3), np.array([1.0, 1.0]), OBS, state_age=age)
    assert res.tier == "backup" and res.backup_reason == "stale_state"
    assert np.array_equal(res.u_safe, [0.0, 0.0]) and res.intervened
    assert _seed_filter().filter(np.zeros(3), np.array([1.0, 1.0]), OBS, state_age=0.2).tier == "nominal"


def test_backup_keeps_omega_only_when_configured():
    # Heading straight at the obstacle centre from inside the inflated set: only v = 0 is safe.
    pose = np.array([1.3, 0.0, 0.0])
    res = _seed_filter().filter(pose, np.array([1.0, 2.0]), OBS)
    assert res.tier == "backup" and res.backup_reason in ("solver_failure", "exact_check_failed")
    assert np.array_equal(res.u_safe, [0.0, 2.0])
    res = _seed_filter(backup_keep_omega=False).filter(pose, np.array([1.0, 2.0]), OBS)
    assert np.array_equal(res.u_safe, [0.0, 0.0])


def test_gain_vector_length_is_checked_and_gains_matter():
    f = _seed_filter()
    with pytest.raises(ValueError, match="gains"):
        f.filter(np.zeros(3), np.array([1.0, 0.0]), OBS, gains=np.ones(5))
    pose, u = np.array([0.6, 0.05, 0.0]), np.array([1.0, 0.0])
    slow = f.filter(pose, u, OBS, gains=np.array([0.2, 2, 2, 2, 2, 2])).u_safe
    fast = f.filter(pose, u, OBS, gains=np.array([5.0, 2, 2, 2, 2, 2])).u_safe
    assert slow[0] < fast[0]


def test_osqp_path_matches_exact_path():
    exact = _seed_filter()
    ref = _seed_filter(solver="osqp")
    rng = np.random.default_rng(5)
    n_active = 0
    for _ in range(300):
        phi, dist = rng.uniform(-np.pi, np.pi), rng.uniform(0.65, 1.5)
        near = [[2.0 + dist * np.cos(phi), dist * np.sin(phi)], [10.0 - dist, rng.uniform(-9, 9)],
                [rng.uniform(-9, 9), rng.uniform(-9, 9)]][rng.integers(3)]
        pose = np.array([*near, rng.uniform(-np.pi, np.pi)])
        if body_clearance(pose, 0.15, OBS, 10.0, 10.0) < 0:
            continue
        u = np.array([rng.uniform(-0.5, 1.5), rng.uniform(-4, 4)])
        a = exact.filter(pose, u, OBS)
        b = ref.filter(pose, u, OBS)
        assert a.tier == b.tier and a.backup_reason == b.backup_reason
        assert np.allclose(a.u_safe, b.u_safe, atol=1e-6)
        n_active += a.tier != "nominal"
    assert n_active > 15


def test_teammates_split_responsibility_and_reach():
    f = _seed_filter()
    # Two teammates head-on: each filter slows its own robot (half of the class-K term each).
    p1, p2 = np.array([0.0, 5.0, 0.0]), np.array([2.0, 5.0, math.pi])
    r1 = f.filter(p1, np.array([1.0, 0.0]), OBS, teammates=p2[None])
    r2 = f.filter(p2, np.array([1.0, 0.0]), OBS, teammates=p1[None])
    assert r1.intervened and r2.intervened and list(r1.active) == [6]
    n1 = unicycle_step(p1, r1.u_safe, 0.05)
    n2 = unicycle_step(p2, r2.u_safe, 0.05)
    assert np.hypot(*(n1[:2] - n2[:2])) - 0.3 >= 0.0
    # Touching a teammate: moving sideways would enter its reachable disc, so the robot
    # may only move out of that disc or stay (the backup keeps its body in place).
    close = np.array([0.31, 5.0, math.pi / 2])
    res = f.filter(p1, np.array([1.0, 0.0]), OBS, teammates=close[None])
    nxt = unicycle_step(p1, res.u_safe, 0.05)
    assert res.u_safe[0] == 0.0 or np.hypot(*(nxt[:2] - close[:2])) >= 0.3 + 0.05
