"""The per-node diagnostic status (pe_ros.health): levels on the documented thresholds,
counts and message, without ROS; and pe-monitor's table of such statuses."""

import math

from pe_ros.health import ERROR, OK, WARN, HealthThresholds, NodeHealth
from pe_ros.monitor import format_rows

COMPUTE = {"count": 100, "p50_ms": 0.31, "p99_ms": 0.92, "max_ms": 1.4}
CPU = {"count": 100, "p50_ms": 0.2, "p99_ms": 0.5, "max_ms": 0.8}


def report(health: NodeHealth, now: float, last_step_at: float | None = None, misses: int = 0,
           compute: dict | None = None):
    return health.report(now, COMPUTE if compute is None else compute, CPU, 20.0, 1.1,
                         now if last_step_at is None else last_step_at, misses)


def test_a_stepping_node_is_ok_and_its_message_has_rate_percentiles_and_misses():
    r = report(NodeHealth(0.0), 5.0)
    assert r.level == OK
    assert r.message == "20.0 Hz, compute p50 0.31 / p99 0.92 / max 1.40 ms, misses 0"
    assert r.values["compute_p99_ms"] == 0.92 and r.values["steps"] == 100
    assert r.values["compute_cpu_p99_ms"] == 0.5 and r.values["level"] == "OK"
    assert "interventions" not in r.values   # not a filter


def test_a_missed_step_warns_for_the_hold_time_then_clears():
    h = NodeHealth(0.0, HealthThresholds(hold_s=10.0))
    assert report(h, 1.0, misses=0).level == OK
    r = report(h, 2.0, misses=1)
    assert r.level == WARN and r.message.startswith("missed step") and "misses 1" in r.message
    assert report(h, 11.5, misses=1).level == WARN
    assert report(h, 12.5, misses=1).level == OK
    assert report(h, 13.0, misses=3).level == WARN


def test_no_step_for_the_stale_time_is_an_error():
    h = NodeHealth(0.0, HealthThresholds(stale_after_s=2.0))
    assert report(h, 10.0, last_step_at=8.5).level == OK
    r = report(h, 10.0, last_step_at=7.5)
    assert r.level == ERROR and r.message.startswith("STALE INPUT: no step for 2.5 s")
    assert r.values["seconds_since_step"] == 2.5


def test_no_first_step_is_fine_during_startup_then_an_error():
    h = NodeHealth(100.0, HealthThresholds(startup_grace_s=30.0))
    empty = {"count": 0}
    r = h.report(110.0, empty, None, 0.0, 0.0, None, 0)
    assert r.level == OK and r.message == "waiting for the first step, misses 0"
    assert math.isnan(r.values["compute_p50_ms"])
    r = h.report(131.0, empty, None, 0.0, 0.0, None, 0)
    assert r.level == ERROR and "no step in 31 s since start" in r.message


def test_filter_counts_interventions_and_backups_since_start():
    h = NodeHealth(0.0)
    for _ in range(7):
        h.record_command(1.0, intervened=False)
    for _ in range(3):
        h.record_command(1.0, intervened=True)
    r = report(h, 20.0)
    assert r.level == OK   # interventions are the filter's job, not a warning
    assert r.message.endswith("interventions 3, backups 0")
    assert (r.values["commands"], r.values["interventions"], r.values["backups"]) == (10, 3, 0)


def test_a_backup_warns_and_a_stale_input_stop_is_an_error():
    h = NodeHealth(0.0, HealthThresholds(hold_s=10.0))
    h.record_command(1.0, intervened=True, backup_reason="nonfinite_command")
    r = report(h, 2.0)
    assert r.level == WARN and r.message.startswith("backup stop (nonfinite_command)")
    assert r.values["backups_nonfinite_command"] == 1
    h.record_command(3.0, intervened=False, backup_reason="nominal_timeout")
    r = report(h, 4.0)
    assert r.level == ERROR and r.message.startswith("STALE INPUT: stopped for nominal_timeout")
    assert "backups 2" in r.message and r.values["last_backup_reason"] == "nominal_timeout"
    assert report(h, 12.5).level == ERROR    # the stale-input stop is held 10 s
    assert report(h, 13.5).level == OK       # and the older backup's WARN too has expired


def test_pe_monitor_shows_node_statuses_as_compute_rows_and_their_levels():
    h = NodeHealth(0.0)
    h.record_command(1.0, intervened=True)
    r = report(h, 2.0)
    node = {k: str(v) for k, v in r.values.items()} | {"_message": r.message}
    latency = {"count": "40", "p50_ms": "1.5", "p99_ms": "2.5", "max_ms": "3.0", "rate_hz": "20.0",
               "window_max_ms": "2.0", "misses": "0", "_message": "ok"}
    table = format_rows({"/pursuer/safety_filter": node, "/sim: loop_latency/pursuer": latency},
                        {"/pursuer/safety_filter/compute_time_ms": 0.4})
    rows = {tuple(line.split()[:2]): line.split() for line in table.splitlines()}
    assert rows[("/pursuer/safety_filter", "compute_time")][2:6] == ["20.0", "100", "0.310", "0.920"]
    assert rows[("/pursuer/safety_filter", "compute_time")][8] == "0.400"   # last value
    assert rows[("/sim", "loop_latency/pursuer")][3] == "40"
    assert "/pursuer/safety_filter: OK 20.0 Hz" in table and "interventions 1, backups 0" in table
