"""Scenario configs: the shipped ones load, and bad ones name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pe_sim.config_reader import ConfigError
from pe_sim.scenario import load_scenario, scenario_path, shipped_scenarios

SHIPPED = shipped_scenarios()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_load(name):
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.indices("pursuer") and scenario.indices("evader")


def test_seed_scenario_has_the_brief_defaults():
    s = load_scenario("seed_1v1_2obs")
    assert (s.arena_width, s.arena_height, s.dt, s.max_steps, s.capture_radius) == (20, 20, 0.05, 600, 0.5)
    assert [(r.radius, r.v_max, r.omega_max) for r in s.robots] == [(0.15, 1.0, 2.84)] * 2
    assert s.obstacles.count == (2, 2)


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(scenario_path("seed_1v1_2obs").read_text())
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mutate,key", [
    (lambda d: d.pop("dt"), "dt"),
    (lambda d: d["robots"][1].update(v_max="fast"), "robots[1].v_max"),
    (lambda d: d["robots"][0].update(role="hunter"), "robots[0].role"),
    (lambda d: d["arena"].update(width=-1), "arena.width"),
    (lambda d: d.update(max_stpes=5), "max_stpes"),
    (lambda d: d["obstacles"].update(radius=[1.0, 0.5]), "obstacles.radius"),
    (lambda d: d["robots"][1].update(role="pursuer"), "robots"),
    (lambda d: d["start"].update(separation=[0.2, 5.0]), "start.separation"),
    (lambda d: d["robots"][0].update(v_min=2.0), "robots[0].v_min"),
])
def test_bad_config_names_key_and_file(tmp_path, mutate, key):
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert err.value.key == key
    assert str(path) in str(err.value) and f"'{key}'" in str(err.value)


def test_unknown_scenario_name_lists_the_available_ones():
    with pytest.raises(FileNotFoundError, match="seed_1v1_2obs"):
        load_scenario("no_such_scenario")


def test_not_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_scenario(path)


def _with_variants(**variants) -> dict:
    data = yaml.safe_load(scenario_path("seed_1v1_2obs").read_text())
    data["variants"] = variants
    return data


def test_variants_combine_every_evader_speed_with_every_arena_and_observe_alike():
    from pe_sim.observation import ObservationSpec
    from pe_sim.scenario import parse_scenario

    base = parse_scenario(_with_variants(evader_speed_ratio=[0.9, 0.98], arena_scale=[0.8, 1.2]))
    variants = base.variants_of()
    assert [v.name for v in variants] == ["seed_1v1_2obs@v0.9a0.8", "seed_1v1_2obs@v0.9a1.2",
                                          "seed_1v1_2obs@v0.98a0.8", "seed_1v1_2obs@v0.98a1.2"]
    assert [(v.arena_width, v.arena_height) for v in variants] == [(16, 16), (24, 24)] * 2
    assert [v.robots[1].v_max for v in variants] == pytest.approx([0.9, 0.9, 0.98, 0.98])
    assert all(v.robots[0] == base.robots[0] for v in variants)  # the pursuer is unchanged
    specs = {ObservationSpec.for_robot(v, 0) for v in variants}
    assert specs == {ObservationSpec.for_robot(base, 0)}  # one length scale: the base arena's 10 m
    assert all(v.variants_of() == (v,) for v in variants)


def test_a_scenario_without_variants_keeps_its_content_hash():
    from pe_sim.scenario import parse_scenario

    plain = load_scenario("seed_1v1_2obs")
    assert plain.variants_of() == (plain,)
    explicit = parse_scenario(_with_variants(evader_speed_ratio=[], arena_scale=[]) | {"length_scale": None})
    assert explicit.content_hash() == plain.content_hash()
    assert parse_scenario(_with_variants(arena_scale=[1.2])).content_hash() != plain.content_hash()


@pytest.mark.parametrize("variants,key,words", [
    ({"evader_speed_ratio": [0.9 + 0.01 * k for k in range(11)]}, "variants", "at most 10"),
    ({"arena_scale": [1.0, 0.1]}, "start.wall_margin", "in variant seed_1v1_2obs@a0.1 (arena 2 x 2 m)"),
    ({"evader_speed_ratio": [0.0]}, "variants.evader_speed_ratio[0]", "must be > 0"),
])
def test_bad_variants_name_the_key_and_the_variant(tmp_path, variants, key, words):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_with_variants(**variants)))
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert err.value.key == key
    assert words in str(err.value) and str(path) in str(err.value)
