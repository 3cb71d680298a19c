"""Headless evaluation: exact seed sets, records independent of batch size, metric arithmetic."""

from __future__ import annotations

import json
import math

import pytest

from pe_bringup.evaluate import main as pe_eval
from pe_sim.evaluation import run_episodes
from pe_sim.metrics import EpisodeRecord, RobotRecord, format_summary, read_jsonl, summarize
from pe_sim.scripted import make_scripted


def _actors(scenario, pursuer="pure_pursuit", evader="random"):
    return [make_scripted(pursuer, scenario, 0), make_scripted(evader, scenario, 1)]


def test_records_do_not_depend_on_batch_size(seed_scenario):
    a = run_episodes(seed_scenario, _actors(seed_scenario), episodes=9, seed=500, num_envs=9)
    b = run_episodes(seed_scenario, _actors(seed_scenario), episodes=9, seed=500, num_envs=4)
    assert [r.seed for r in a] == list(range(500, 509))
    assert [r.to_json() for r in a] == [r.to_json() for r in b]


def _record(seed, captured, steps, violations=(0, 0), calls=(0, 0), interventions=(0, 0)):
    robots = [RobotRecord(name=n, role=n, steps=steps, violation_steps=v, filter_calls=c,
                          interventions=i, correction_size_sum=0.5 * i)
              for n, v, c, i in zip(("pursuer", "evader"), violations, calls, interventions, strict=True)]
    return EpisodeRecord(scenario="s", seed=seed, captured=captured, steps=steps, duration_s=steps * 0.05,
                         capture_time_s=steps * 0.05 if captured else None, robots=robots)


def test_summary_follows_the_brief_definitions():
    records = [
        _record(0, True, 100, violations=(2, 0), calls=(100, 0), interventions=(10, 0)),
        _record(1, False, 600, calls=(600, 0), interventions=(0, 0)),
        _record(2, True, 300, violations=(0, 3), calls=(300, 0), interventions=(5, 0)),
        _record(3, True, 200, calls=(200, 0)),
    ]
    s = summarize(records)
    assert s["capture_rate"] == 0.75
    assert s["capture_time_mean_s"] == pytest.approx((100 + 300 + 200) * 0.05 / 3)
    assert s["capture_time_median_s"] == pytest.approx(10.0)
    p, e = s["roles"]["pursuer"], s["roles"]["evader"]
    assert p["violation_step_rate"] == pytest.approx(2 / 1200)
    assert p["violation_episode_rate"] == 0.25
    assert e["violation_episode_rate"] == 0.25
    assert p["intervention_rate"] == pytest.approx(15 / 1200)
    assert p["intervention_mean_size"] == pytest.approx(7.5 / 1200)
    assert math.isnan(e["intervention_rate"])
    text = format_summary(s)
    assert "75.00 %" in text and "no filter" in text


def test_json_lines_round_trip(tmp_path, seed_scenario):
    records = run_episodes(seed_scenario, _actors(seed_scenario), episodes=3, seed=9)
    from pe_sim.metrics import write_jsonl

    write_jsonl(records, tmp_path / "e.jsonl")
    again = read_jsonl(tmp_path / "e.jsonl")
    assert [r.to_json() for r in again] == [r.to_json() for r in records]


def test_pe_eval_cli_writes_records_and_summary(tmp_path, capsys):
    out = tmp_path / "eval"
    assert pe_eval(["--scenario", "seed_1v1_2obs", "--episodes", "12", "--pursuer", "scripted:pure_pursuit",
                    "--evader", "scripted:random", "--out", str(out), "--num-envs", "5"]) == 0
    lines = (out / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 12
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 12
    assert summary["policies"] == {"pursuer": "scripted:pure_pursuit", "evader": "scripted:random"}
    assert "capture rate" in capsys.readouterr().out


def test_pe_eval_rejects_unknown_policy_source(tmp_path):
    with pytest.raises(ValueError, match="scripted:<kind>"):
        pe_eval(["--scenario", "seed_1v1_2obs", "--episodes", "1", "--pursuer", "chase",
                 "--out", str(tmp_path)])
