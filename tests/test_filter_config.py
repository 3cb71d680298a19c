"""Filter config: the shipped one loads with its documented defaults; bad ones name key and file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pe_safety_filter.config import FilterConfig, filter_config_path, load_filter_config
from pe_sim.config_reader import ConfigError

SHIPPED = filter_config_path("vcp_cbf")


def test_shipped_config_loads_with_documented_defaults():
    cfg = load_filter_config("vcp_cbf")
    assert isinstance(cfg, FilterConfig)
    assert cfg.source == str(SHIPPED)
    assert cfg.lookahead == 0.15
    assert (cfg.gain_obstacle, cfg.gain_wall, cfg.gain_teammate) == (2.0, 2.0, 2.0)
    assert cfg.weight == ((1.0, 0.0), (0.0, 0.02))
    assert cfg.solver == "exact" and cfg.tighten_steps == 3 and cfg.tighten_factor == 0.5
    assert cfg.backup_keep_omega and cfg.max_state_age == 0.25 and cfg.margin == 1e-3
    # The dataclass defaults are the shipped file's values (one source of truth in docs).
    assert FilterConfig(source=cfg.source) == cfg


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(SHIPPED.read_text())
    mutate(data)
    path = tmp_path / "bad_filter.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mutate,key", [
    (lambda d: d.pop("lookahead"), "lookahead"),
    (lambda d: d.update(lookahead=0.0), "lookahead"),
    (lambda d: d["gains"].update(obstacle=-1.0), "gains.obstacle"),
    (lambda d: d["gains"].update(wal=1.0), "gains.wal"),
    (lambda d: d.update(weight=[[1.0, 0.5], [0.4, 1.0]]), "weight"),
    (lambda d: d.update(weight=[[1.0, 2.0], [2.0, 1.0]]), "weight"),
    (lambda d: d.update(weight=[1.0, 0.1]), "weight"),
    (lambda d: d["tighten"].update(gain_factor=1.0), "tighten.gain_factor"),
    (lambda d: d["tighten"].update(max_steps=1.5), "tighten.max_steps"),
    (lambda d: d["exact_check"].update(margin="small"), "exact_check.margin"),
    (lambda d: d.update(max_state_age=0), "max_state_age"),
    (lambda d: d.update(solver="qpth"), "solver"),
    (lambda d: d["backup"].update(keep_omega="yes"), "backup.keep_omega"),
    (lambda d: d["osqp"].update(max_iter=0), "osqp.max_iter"),
    (lambda d: d.update(lookahed=0.1), "lookahed"),
])
def test_bad_config_names_key_and_file(tmp_path, mutate, key):
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_filter_config(path)
    assert err.value.key == key
    assert str(path) in str(err.value) and f"'{key}'" in str(err.value)


def test_unknown_filter_config_lists_the_available_ones():
    with pytest.raises(FileNotFoundError, match="vcp_cbf"):
        load_filter_config("no_such_filter")


def test_to_dict_round_trips(tmp_path):
    cfg = load_filter_config("vcp_cbf")
    path = tmp_path / "copy.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    again = load_filter_config(path)
    assert again == FilterConfig(**{**cfg.__dict__, "source": str(path)})
