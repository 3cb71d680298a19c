"""Regressions from an independent check of the filter and the metric: overlaps between
samples, non-finite output from huge gains, unwrapped headings, and arguments and
config values that were silently accepted."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from pe_safety_filter.config import FilterConfig, load_filter_config
from pe_safety_filter.filter import BACKUP_REASONS, SafetyFilter
from pe_safety_filter.kernel import (
    N_PARAMS,
    P_G_OBS,
    REASON_NONFINITE_INTERMEDIATE,
    TIER_BACKUP,
    end_of_step_ok,
    filter_single,
    make_params,
    next_step_ok,
)
from pe_sim.batch import BatchSim
from pe_sim.config_reader import ConfigError
from pe_sim.dynamics import wrap_angle
from pe_sim.safety_geometry import body_clearance, swept_body_clearance
from pe_sim.scenario import RobotSpec, config_dir, parse_scenario

ROBOT = RobotSpec("p", "pursuer", radius=0.15, v_max=1.0, omega_max=2.0)
NO_TM = np.zeros((0, 3))
NO_VEC = np.zeros(0)


def _filter(dt=0.05, hw=5.0, hh=5.0, **cfg):
    return SafetyFilter(dataclasses.replace(load_filter_config("vcp_cbf"), **cfg), ROBOT, hw, hh, dt)


# -- 1. between samples ---------------------------------------------------------------

# A straight step of 0.2 m passing a small obstacle: safe at both ends, 5 mm deep mid-step.
PASS_OBS = np.array([[0.1, 0.155, 0.01]])


def test_end_safe_step_that_overlaps_mid_step_fails_the_check():
    args = (0.0, 0.0, 0.0, 1.0, 0.0, 0.2, 0.15, PASS_OBS, 1, 5.0, 5.0, 1e-3, 0.02, NO_TM, NO_VEC,
            NO_VEC, 0)
    assert end_of_step_ok(*args)          # what the filter used to check
    assert not next_step_ok(*args)        # the whole step
    swept, t = swept_body_clearance(np.zeros(3), np.array([1.0, 0.0]), 0.2, 0.15, PASS_OBS, 5.0, 5.0)
    assert swept == pytest.approx(-0.005) and t == pytest.approx(0.1)


def test_filter_never_returns_a_command_that_overlaps_mid_step():
    f = _filter(dt=0.2)
    for w in np.linspace(-2.0, 2.0, 41):
        u = f.filter(np.zeros(3), np.array([1.0, w]), PASS_OBS).u_safe
        swept, _ = swept_body_clearance(np.zeros(3), u, 0.2, 0.15, PASS_OBS, 5.0, 5.0)
        assert swept >= 1e-3


def test_teammate_reach_is_kept_along_the_whole_arc():
    # Teammate beside the middle of the step: both ends outside its reach disc, the middle not.
    mate = np.array([[0.1, 0.345, 0.0]])
    args = (0.0, 0.0, 0.0, 1.0, 0.0, 0.2, 0.15, np.zeros((0, 3)), 0, 5.0, 5.0, 1e-3, 1.0, mate,
            np.array([0.15]), np.array([0.05]), 1)
    assert end_of_step_ok(*args) and not next_step_ok(*args)


def _one_obstacle_sim():
    sc = parse_scenario({
        "name": "pass", "arena": {"width": 10.0, "height": 10.0}, "dt": 0.1, "max_steps": 100,
        "capture_radius": 0.3,
        "robots": [{"name": "p", "role": "pursuer", "radius": 0.15, "v_max": 1.0, "omega_max": 2.0},
                   {"name": "e", "role": "evader", "radius": 0.15, "v_max": 1.0, "omega_max": 2.0}],
        "obstacles": {"fixed": [{"x": 0.0, "y": 0.0, "radius": 1.0}], "count": 0},
    })
    sim = BatchSim(sc, 1, seed=0)
    sim.pose[0] = [[-0.05, 1.149, 0.0], [4.0, -4.0, 0.0]]
    return sim


def test_metric_counts_an_overlap_inside_the_step_and_records_where():
    sim = _one_obstacle_sim()
    start = sim.pose[0, 0].copy()
    res = sim.step(np.array([[[1.0, 0.0], [0.0, 0.0]]]), auto_reset=False)
    end = sim.pose[0, 0]
    # Both recorded poses are safe ...
    assert body_clearance(start, 0.15, sim.obstacles[0], 5.0, 5.0) > 0.0
    assert body_clearance(end, 0.15, sim.obstacles[0], 5.0, 5.0) > 0.0
    assert not res.contact[0, 0]
    # ... but the body overlapped 1 mm at x = 0, mid-step: a violation, and it is recorded.
    assert res.violation[0, 0] and not res.violation[0, 1]
    assert res.clearance[0, 0] == pytest.approx(-1e-3, abs=1e-9)
    assert res.contact_time[0, 0] == pytest.approx(0.05)
    assert body_clearance(res.contact_pose[0, 0], 0.15, sim.obstacles[0], 5.0, 5.0) < 0.0


def test_metric_contact_pose_is_before_the_push_out():
    sim = _one_obstacle_sim()
    sim.pose[0, 0] = [0.0, 1.2, -math.pi / 2]          # 5 cm from the obstacle, driving at it
    res = sim.step(np.array([[[1.0, 0.0], [0.0, 0.0]]]), auto_reset=False)
    assert res.contact[0, 0] and res.violation[0, 0]
    assert body_clearance(sim.pose[0, 0], 0.15, sim.obstacles[0], 5.0, 5.0) >= 0.0   # pushed out
    assert res.clearance[0, 0] == pytest.approx(-0.05)                               # 5 cm deep
    assert res.contact_pose[0, 0, 1] == pytest.approx(1.1)


# -- 2. non-finite output ---------------------------------------------------------------

@pytest.mark.parametrize("gain", [1e300, 1.7e308, 1e6])
def test_huge_gains_give_a_finite_command_within_bounds(gain):
    f = _filter()
    obstacles = np.array([[0.6, 0.0, 0.3], [-1.0, 1.0, 0.2]])
    for theta in np.linspace(-math.pi, math.pi, 13):
        res = f.filter(np.array([0.0, 0.0, theta]), np.array([1.0, 0.5]), obstacles,
                       gains=np.full(6, gain))
        assert np.all(np.isfinite(res.u_safe))
        assert 0.0 <= res.u_safe[0] <= 1.0 and abs(res.u_safe[1]) <= 2.0
        assert np.isfinite(res.correction_size)


def test_nonfinite_intermediate_gives_the_backup_with_its_reason():
    # Parameters crafted past the validation: a default gain that overflows the rows.
    params = make_params(load_filter_config("vcp_cbf"), ROBOT, 5.0, 5.0, 0.05)
    assert params.shape == (N_PARAMS,)
    params[P_G_OBS] = 1.7e308
    res = filter_single(np.array([0.0, 0.0, 0.0]), np.array([1.0, 0.0]), np.array([[3.0, 0.0, 0.5]]),
                        NO_TM, NO_VEC, NO_VEC, NO_VEC, params)
    assert res[5] == TIER_BACKUP and res[6] == REASON_NONFINITE_INTERMEDIATE
    assert (res[0], res[1]) == (0.0, 0.0)
    assert BACKUP_REASONS[REASON_NONFINITE_INTERMEDIATE - 1] == "nonfinite_intermediate"


# -- 3. unwrapped headings --------------------------------------------------------------

@pytest.mark.parametrize("theta", [4.5e15, -3.3e12, 1e6 + 0.3, 7.0])
def test_unwrapped_heading_filters_as_its_wrapped_value(theta):
    f = _filter()
    obstacles = np.array([[0.5, 0.0, 0.3], [0.0, 0.55, 0.3], [-0.5, -0.1, 0.3]])
    wrapped = wrap_angle(theta)
    for u_nom in ([1.0, 0.0], [1.0, 2.0], [0.5, -2.0]):
        big = f.filter(np.array([0.0, 0.0, theta]), np.array(u_nom), obstacles)
        small = f.filter(np.array([0.0, 0.0, wrapped]), np.array(u_nom), obstacles)
        np.testing.assert_array_equal(big.u_safe, small.u_safe)
        # The simulator moves the robot from its wrapped heading: still safe over the step.
        swept, _ = swept_body_clearance(np.array([0.0, 0.0, wrapped]), big.u_safe, 0.05, 0.15,
                                        obstacles, 5.0, 5.0)
        assert swept >= 0.0


# -- 4. arguments at the API -------------------------------------------------------------

def test_negative_obstacle_radius_is_refused_naming_the_row():
    with pytest.raises(ValueError, match=r"obstacles: radius must be > 0, got -0.1 in row 1"):
        _filter().filter(np.zeros(3), np.array([0.5, 0.0]), np.array([[3.0, 0.0, 0.5], [1.0, 0.0, -0.1]]))


@pytest.mark.parametrize("hw,hh,dt,name", [
    (0.0, 5.0, 0.05, "half_width"), (-1.0, 5.0, 0.05, "half_width"), (math.nan, 5.0, 0.05, "half_width"),
    (5.0, 0.0, 0.05, "half_height"), (5.0, math.inf, 0.05, "half_height"),
    (5.0, 5.0, math.nan, "dt"), (5.0, 5.0, math.inf, "dt"), (5.0, 5.0, 0.0, "dt"),
])
def test_bad_arena_or_step_is_refused(hw, hh, dt, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        SafetyFilter(load_filter_config("vcp_cbf"), ROBOT, hw, hh, dt)


@pytest.mark.parametrize("field,value", [("v_max", 0.0), ("omega_max", 0.0), ("radius", -0.1),
                                         ("v_max", math.nan)])
def test_bad_robot_is_refused(field, value):
    robot = dataclasses.replace(ROBOT, **{field: value})
    with pytest.raises(ValueError, match=field):
        SafetyFilter(load_filter_config("vcp_cbf"), robot, 5.0, 5.0, 0.05)


@pytest.mark.parametrize("field,value", [
    ("weight", ((0.0, 0.0), (0.0, 0.0))), ("feasibility_tol", 0.0), ("margin", 1e6),
    ("lookahead", 1e6), ("gain_obstacle", 1e300), ("gain_wall", -1.0),
])
def test_config_built_in_code_outside_its_range_is_refused(field, value):
    with pytest.raises(ValueError, match=f"config {field}"):
        SafetyFilter(FilterConfig(**{field: value}), ROBOT, 5.0, 5.0, 0.05)


def test_lookahead_and_margin_relative_to_the_arena():
    with pytest.raises(ValueError, match="config lookahead"):
        SafetyFilter(FilterConfig(lookahead=1.0), ROBOT, 1.0, 3.0, 0.05)
    with pytest.raises(ValueError, match="config margin"):
        SafetyFilter(FilterConfig(margin=0.09, lookahead=0.01), ROBOT, 0.2, 3.0, 0.05)


@pytest.mark.parametrize("kwargs,match", [
    ({"state_age": -0.01}, "state_age"),
    ({"teammates": np.zeros((3, 2)) + 2.0}, "teammates: expected shape"),
    ({"teammates": np.array([[2.0, 0.0, 0.0]]), "teammate_reach": np.array([-0.05])},
     "teammate_reach: must be >= 0"),
    ({"teammates": np.array([[2.0, 0.0, 0.0]]), "teammate_radii": np.array([-0.15])},
     "teammate_radii: must be > 0"),
    ({"teammates": np.array([[2.0, 0.0, 0.0]]), "teammate_radii": np.array([0.0])},
     "teammate_radii: must be > 0"),
    ({"teammates": np.array([[2.0, 0.0, 0.0]]), "teammate_radii": np.array([0.1, 0.1])},
     "teammate_radii: expected shape"),
    ({"gains": np.ones(3)}, "gains: expected shape"),
])
def test_bad_call_arguments_are_refused_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _filter().filter(np.zeros(3), np.array([0.5, 0.0]), np.array([[3.0, 0.0, 0.5]]), **kwargs)


@pytest.mark.parametrize("solver", ["exact", "osqp"])
def test_both_solvers_refuse_a_negative_radius(solver):
    with pytest.raises(ValueError, match="obstacles: radius"):
        _filter(solver=solver).filter(np.zeros(3), np.array([0.5, 0.0]), np.array([[3.0, 0.0, -0.5]]))


def test_nan_state_age_is_still_stale_and_nan_obstacle_still_backs_up():
    f = _filter()
    assert f.filter(np.zeros(3), np.array([0.5, 0.0]), np.zeros((0, 3)),
                    state_age=math.nan).backup_reason == "stale_state"
    res = f.filter(np.zeros(3), np.array([0.5, 0.0]), np.array([[3.0, 0.0, math.nan]]))
    assert res.backup_reason == "nonfinite_state"


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((config_dir() / "filter" / "vcp_cbf.yaml").read_text())
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mutate,key", [
    (lambda d: d.update(feasibility_tol=0.0), "feasibility_tol"),
    (lambda d: d["exact_check"].update(margin=1e6), "exact_check.margin"),
    (lambda d: d.update(lookahead=1e6), "lookahead"),
    (lambda d: d["gains"].update(obstacle=1e300), "gains.obstacle"),
    (lambda d: d["gains"].update(teammate=1.7e308), "gains.teammate"),
    (lambda d: d["tighten"].update(max_steps=1000), "tighten.max_steps"),
    (lambda d: d.update(max_state_age=1e9), "max_state_age"),
])
def test_loader_refuses_out_of_range_values(tmp_path, mutate, key):
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_filter_config(path)
    assert err.value.key == key and str(path) in str(err.value)


def test_batch_filter_refuses_a_negative_radius_of_a_present_obstacle_only():
    from pe_safety_filter.filter import BatchSafetyFilter

    sim = _one_obstacle_sim()
    bf = BatchSafetyFilter(load_filter_config("vcp_cbf"), sim.scenario)
    obstacles = np.array([[[0.0, 0.0, 1.0], [3.0, 3.0, -0.2]]])
    u = np.zeros((1, 2, 2))
    bf.filter(sim.pose, u, obstacles, np.array([1]))            # padded row: ignored
    with pytest.raises(ValueError, match="obstacles: radius must be > 0"):
        bf.filter(sim.pose, u, obstacles, np.array([2]))


def test_batch_filter_wraps_headings_like_the_single_filter():
    from pe_safety_filter.filter import BatchSafetyFilter

    sim = _one_obstacle_sim()
    cfg = load_filter_config("vcp_cbf")
    bf = BatchSafetyFilter(cfg, sim.scenario)
    pose = sim.pose.copy()
    pose[0, 0] = [0.0, 1.3, -math.pi / 2 + 2 * math.pi * 1e6]
    u_nom = np.array([[[1.0, 0.3], [0.0, 0.0]]])
    u_big, _ = bf.filter(pose, u_nom, sim.obstacles, sim.n_obstacles)
    pose[0, 0, 2] = wrap_angle(pose[0, 0, 2])
    u_small, _ = bf.filter(pose, u_nom, sim.obstacles, sim.n_obstacles)
    np.testing.assert_array_equal(u_big, u_small)


def test_metric_counts_a_teammate_overlap_inside_the_step():
    sc = parse_scenario({
        "name": "pair", "arena": {"width": 10.0, "height": 10.0}, "dt": 0.1, "max_steps": 100,
        "capture_radius": 0.3,
        "robots": [{"name": "p", "role": "pursuer", "radius": 0.15, "v_max": 1.0, "omega_max": 2.0},
                   {"name": "q", "role": "pursuer", "radius": 0.15, "v_max": 1.0, "omega_max": 2.0},
                   {"name": "e", "role": "evader", "radius": 0.15, "v_max": 1.0, "omega_max": 2.0}],
        "obstacles": {"count": 0},
    })
    sim = BatchSim(sc, 1, seed=0)
    # p drives 0.1 m past q, whose body it grazes by 0.5 mm halfway; both ends are apart.
    sim.pose[0] = [[-0.05, 0.0, 0.0], [0.0, 0.2995, 1.0], [4.0, -4.0, 0.0]]
    res = sim.step(np.array([[[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]]), auto_reset=False)
    assert np.hypot(*(sim.pose[0, 0, :2] - sim.pose[0, 1, :2])) > 0.3
    assert res.violation[0, 0] and res.violation[0, 1] and not res.violation[0, 2]
    assert res.clearance[0, 0] == pytest.approx(-5e-4, abs=1e-9)
    assert res.contact_time[0, 0] == pytest.approx(0.05, abs=1e-6)
