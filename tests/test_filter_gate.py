"""The safety-filter node's gating (pe_ros.filter_gate) with a fake clock, no ROS: every
message timing a robot produces, and what the node publishes for it."""

from __future__ import annotations

import numpy as np
import pytest

from pe_ros.filter_gate import Filter, GateLimits, LatestGate, Repeat, StampGate, Stop, make_gate

MS = 1_000_000
S = 1_000_000_000
LIMITS = GateLimits(max_state_age=0.25, nominal_timeout=0.25, future_tolerance=0.05)
OBSTACLES = np.array([[3.0, 0.0, 0.5]])
STATE = (0.0, 0.0, 0.0, 0.0, 0.0)


class Clock:
    """ROS time (ns) and wall time (s), advanced together."""

    def __init__(self) -> None:
        self.now = 100 * S
        self.wall = 1000.0

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * S)
        self.wall += seconds


def latest_gate(teammates=()) -> tuple[LatestGate, Clock]:
    gate = LatestGate(0, teammates, LIMITS)
    clock = Clock()
    gate.on_obstacles(0, OBSTACLES, 0, "world", clock.now, clock.wall)
    return gate, clock


def odom(gate, clock, stamp=None, robot=0, frame="world"):
    return gate.on_state(robot, clock.now if stamp is None else stamp, STATE, frame, clock.now, clock.wall)


def cmd(gate, clock, v=0.5, omega=0.1, stamp=None):
    return gate.on_nominal(clock.now if stamp is None else stamp, v, omega, clock.now, clock.wall)


def only(decisions):
    assert len(decisions) == 1, decisions
    return decisions[0]


# --------------------------------------------------------------------------- latest (a robot)


def test_commands_on_a_stale_state_are_stopped_at_once_never_replayed():
    """Odometry stops while commands keep coming with its last stamp: moving answers while the
    state is fresh, then a stop for every command (no replay of a stored answer)."""
    gate, clock = latest_gate()
    odom(gate, clock)
    last_odom = clock.now
    kinds = []
    for _ in range(40):                      # 2 s of commands at 20 Hz
        clock.advance(0.05)
        d = only(cmd(gate, clock, stamp=last_odom))
        kinds.append((type(d).__name__, getattr(d, "reason", None)))
        if isinstance(d, Filter):
            assert d.age_s <= LIMITS.max_state_age
    fresh = [k for k in kinds if k[0] == "Filter"]
    assert len(fresh) == 5                   # 50..250 ms old
    assert kinds[5:] == [("Stop", "stale_state")] * 35


def test_now_stamped_commands_with_odometry_at_50_hz_all_pass():
    gate, clock = latest_gate()
    answers = []
    for step in range(100):                  # 2 s: odometry at 50 Hz, commands at 20 Hz
        clock.advance(0.02)
        odom(gate, clock)
        if step % 2.5 < 1:
            answers.append(only(cmd(gate, clock, v=0.3 + 0.001 * step)))
    assert answers and all(isinstance(d, Filter) for d in answers)
    assert len({d.u_nom for d in answers}) == len(answers)     # each its own command


def test_without_odometry_every_command_is_answered_by_a_stop():
    gate, clock = latest_gate()
    assert only(cmd(gate, clock)).reason == "missing_state"
    odom(gate, clock)
    clock.advance(1.0)
    for _ in range(10):
        clock.advance(0.05)
        assert only(cmd(gate, clock)).reason == "stale_state"


def test_one_future_stamp_is_refused_and_does_not_shadow_later_states():
    gate, clock = latest_gate()
    odom(gate, clock, stamp=clock.now + 5 * S)
    clock.advance(0.02)
    d = only(cmd(gate, clock))
    assert isinstance(d, Stop) and d.reason == "future_state"
    clock.advance(0.02)
    odom(gate, clock)                        # the next ordinary state, by arrival
    assert isinstance(only(cmd(gate, clock)), Filter)


def test_a_state_slightly_ahead_of_the_clock_counts_as_fresh():
    gate, clock = latest_gate()
    odom(gate, clock, stamp=clock.now + 20 * MS)       # within future_tolerance
    d = only(cmd(gate, clock))
    assert isinstance(d, Filter) and d.age_s == 0.0    # the filter refuses negative ages


def test_old_and_zero_stamped_commands_are_each_answered_with_their_own_command():
    gate, clock = latest_gate()
    odom(gate, clock)
    first = only(cmd(gate, clock, v=0.2, stamp=0))
    second = only(cmd(gate, clock, v=0.4, stamp=0))
    older = only(cmd(gate, clock, v=0.6, stamp=clock.now - 10 * S))
    assert [d.u_nom[0] for d in (first, second, older)] == [0.2, 0.4, 0.6]
    assert all(isinstance(d, Filter) for d in (first, second, older))


def test_sim_time_without_a_clock_stops():
    gate, clock = latest_gate()
    odom(gate, clock)
    d = only(gate.on_nominal(clock.now, 0.5, 0.0, None, clock.wall))
    assert isinstance(d, Stop) and d.reason == "no_clock"


def test_obstacles_in_another_frame_or_missing_stop():
    gate = LatestGate(0, (), LIMITS)
    clock = Clock()
    odom(gate, clock)
    assert only(cmd(gate, clock)).reason == "missing_obstacles"
    gate.on_obstacles(None, OBSTACLES, 0, "map", clock.now, clock.wall)
    assert only(cmd(gate, clock)).reason == "frame_mismatch"
    gate.on_obstacles(None, OBSTACLES, 0, "world", clock.now, clock.wall)
    assert isinstance(only(cmd(gate, clock)), Filter)


def test_stale_or_missing_teammate_stops():
    gate, clock = latest_gate(teammates=(1,))
    odom(gate, clock)
    assert only(cmd(gate, clock)).reason == "missing_state"
    odom(gate, clock, robot=1)
    assert isinstance(only(cmd(gate, clock)), Filter)
    clock.advance(0.2)
    odom(gate, clock)
    clock.advance(0.1)
    assert only(cmd(gate, clock)).reason == "stale_teammate"


def test_watchdog_stops_every_timeout_while_commands_are_missing():
    gate, clock = latest_gate()
    odom(gate, clock)
    cmd(gate, clock)
    stops = []
    for _ in range(100):                      # 2 s of watchdog ticks at 50 Hz
        clock.advance(0.02)
        stops += [(clock.wall, d) for d in gate.on_tick(clock.now, clock.wall)]
    assert all(d.reason == "nominal_timeout" and not d.answers for _, d in stops)
    times = [t for t, _ in stops]
    assert 6 <= len(stops) <= 8               # one per 0.25 s after the first 0.25 s
    assert min(np.diff(times)) >= LIMITS.nominal_timeout - 1e-9
    cmd(gate, clock)
    assert gate.on_tick(clock.now, clock.wall) == []


# --------------------------------------------------------------------------- stamp (lockstep)


def stamp_gate() -> tuple[StampGate, Clock]:
    gate = StampGate(0, (), 1, LIMITS)
    clock = Clock()
    gate.on_obstacles(0, OBSTACLES, 0, "world", clock.now, clock.wall)
    return gate, clock


def test_stamp_pairing_waits_for_the_state_of_the_command():
    gate, clock = stamp_gate()
    stamp = clock.now
    assert cmd(gate, clock, stamp=stamp) == []          # the command came first: pending
    d = only(odom(gate, clock, stamp=stamp))
    assert isinstance(d, Filter) and d.stamp == stamp and d.u_nom == (0.5, 0.1)


def test_stamp_pairing_waits_for_a_late_first_clock_then_stops_without_one():
    """Lockstep's first /clock (best effort) may come after the first state and command:
    the command waits for it (the same answer as with the clock first), and only a clock
    missing for nominal_timeout gives a no_clock stop."""
    gate, clock = stamp_gate()
    stamp = clock.now
    assert gate.on_state(0, stamp, STATE, "world", None, clock.wall) == []
    assert gate.on_nominal(stamp, 0.5, 0.1, None, clock.wall) == []
    clock.advance(0.05)
    assert gate.on_tick(None, clock.wall) == []          # still no clock: waiting, not stopping
    d = only(gate.on_tick(stamp, clock.wall))            # the clock came: filtered, age 0
    assert isinstance(d, Filter) and d.stamp == stamp and d.age_s == 0.0

    gate, clock = stamp_gate()
    gate.on_state(0, clock.now, STATE, "world", None, clock.wall)
    gate.on_nominal(clock.now, 0.5, 0.1, None, clock.wall)
    clock.advance(0.3)                                   # > nominal_timeout without a clock
    d = only(gate.on_tick(None, clock.wall))
    assert isinstance(d, Stop) and d.reason == "no_clock" and d.u_nom == (0.5, 0.1)


def test_a_resent_state_gets_the_same_answer_until_it_is_stale():
    gate, clock = stamp_gate()
    stamp = clock.now
    odom(gate, clock, stamp=stamp)
    assert isinstance(only(cmd(gate, clock, stamp=stamp)), Filter)
    clock.advance(0.1)
    assert only(odom(gate, clock, stamp=stamp)) == Repeat(stamp)
    assert only(cmd(gate, clock, stamp=stamp)) == Repeat(stamp)
    clock.advance(0.2)                                   # now 0.3 s old
    d = only(cmd(gate, clock, stamp=stamp))
    assert isinstance(d, Stop) and d.reason == "stale_state" and d.stamp == stamp


def test_a_dead_policy_gets_stops_for_each_new_state_then_commands_resume():
    gate, clock = stamp_gate()
    odom(gate, clock)
    out = []
    for _ in range(20):
        clock.advance(0.05)
        out += gate.on_tick(clock.now, clock.wall)
    assert out[0].reason == "nominal_timeout" and out[0].answers
    assert out[1:] and all(d.reason == "no_input" and not d.answers for d in out[1:])  # never silent
    clock.advance(0.05)
    d = only(odom(gate, clock))
    assert d.reason == "nominal_timeout" and d.stamp == clock.now
    assert only(cmd(gate, clock)) == Repeat(clock.now)   # the policy is back: its late answer
    clock.advance(0.05)
    assert odom(gate, clock) == []                        # the next state waits for its command
    assert isinstance(only(cmd(gate, clock)), Filter)


def test_no_input_stops_are_stamped_now_and_never_answer_a_state():
    gate, clock = stamp_gate()
    out = []
    for _ in range(30):
        clock.advance(0.05)
        out += gate.on_tick(clock.now, clock.wall)
    assert out and all(d.reason == "no_input" and not d.answers for d in out)


def test_make_gate_and_limits_refuse_bad_values():
    assert isinstance(make_gate("latest", 0, (), 1, LIMITS), LatestGate)
    with pytest.raises(ValueError, match="pairing"):
        make_gate("sometimes", 0, (), 1, LIMITS)
    with pytest.raises(ValueError, match="max_state_age"):
        GateLimits(max_state_age=float("nan"), nominal_timeout=0.25)
