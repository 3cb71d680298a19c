"""The one config mechanism (pe_sim.config_schema): key checks, typo hints, ranges,
and the generated scenario reference staying in step with the schema."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from pe_sim.config_reader import ConfigError
from pe_sim.config_schema import from_data, schema_rows, setting, to_data
from pe_sim.scenario import Scenario, load_scenario, parse_scenario
from pe_training.config import load_train_config

ROOT = Path(__file__).parents[1]


class Point(NamedTuple):
    x: float
    y: float


@dataclass(frozen=True)
class Inner:
    gain: float = setting(2.0, min=0.0, min_exclusive=True)
    mode: str = setting("fast", choices=("fast", "exact"))


@dataclass(frozen=True)
class Outer:
    count: int = setting(min=1)
    span: tuple[float, float] = setting((0.0, 1.0), min=0.0)
    points: tuple[Point, ...] = ()
    inner: Inner = setting(default_factory=Inner)


def test_defaults_types_pairs_and_entries():
    cfg = from_data(Outer, {"count": 3, "span": 2.5, "points": [{"x": 1, "y": 2}]}, "f.yaml")
    assert cfg == Outer(count=3, span=(2.5, 2.5), points=(Point(1.0, 2.0),), inner=Inner())
    assert to_data(cfg) == {"count": 3, "span": [2.5, 2.5], "points": [{"x": 1.0, "y": 2.0}],
                            "inner": {"gain": 2.0, "mode": "fast"}}


@pytest.mark.parametrize(("data", "key", "reason"), [
    ({}, "count", "missing (required)"),
    ({"count": 0}, "count", "must be >= 1"),
    ({"count": 1.5}, "count", "whole number"),
    ({"count": 1, "span": [2, 1]}, "span", "low must not exceed high"),
    ({"count": 1, "span": [-1, 1]}, "span", "must be >= 0"),
    ({"count": 1, "inner": {"gain": 0}}, "inner.gain", "must be > 0"),
    ({"count": 1, "inner": {"gain": float("inf")}}, "inner.gain", "finite"),
    ({"count": 1, "inner": {"mode": "exakt"}}, "inner.mode", "did you mean 'exact'"),
    ({"count": 1, "inner": {"gian": 1}}, "inner.gian", "did you mean 'gain'"),
    ({"count": 1, "points": [{"x": 1}]}, "points[0].y", "missing"),
    ({"count": 1, "cuont": 2}, "cuont", "did you mean 'count'"),
])
def test_errors_name_file_key_and_reason(data, key, reason):
    with pytest.raises(ConfigError) as info:
        from_data(Outer, data, "f.yaml")
    assert info.value.source == "f.yaml" and info.value.key == key
    assert reason in str(info.value)


def test_a_typo_of_a_required_key_names_the_typo():
    data = load_scenario("bench_1v1_flee").to_dict()
    data["capture_radus"] = data.pop("capture_radius")
    with pytest.raises(ConfigError, match=r"'capture_radus'.*did you mean 'capture_radius'"):
        parse_scenario(data, "mine.yaml")


def test_scenarios_round_trip_through_plain_data():
    for name in ("seed_1v1_2obs", "bench_1v1_flee", "pursuit_2v1", "open_1v1"):
        scenario = load_scenario(name)
        again = parse_scenario(scenario.to_dict(), scenario.source)
        assert again == scenario and again.content_hash() == scenario.content_hash()


def test_training_config_ranges_and_typos():
    with pytest.raises(ConfigError, match=r"ppo\.clip_range.*must be > 0"):
        load_train_config("pursuer_seed_random", ["ppo.clip_range=0"])
    with pytest.raises(ConfigError, match=r"reward\.captur.*did you mean .capture."):
        load_train_config("pursuer_seed_random", ["reward.captur=1"])
    with pytest.raises(ConfigError, match="value is not valid YAML"):
        load_train_config("pursuer_seed_random", ["ppo.net_arch=[64, 64"])


def test_schema_lists_every_scenario_key():
    keys = {row["key"] for row in schema_rows(Scenario)}
    assert {"arena.width", "robots[].v_max", "obstacles.fixed[].radius", "start.separation"} <= keys
    assert "source" not in keys


def test_scenario_reference_is_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_reference.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
