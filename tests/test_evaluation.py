"""Headless evaluation: exact seed sets, records independent of batch size, metric arithmetic."""

from __future__ import annotations

import json
import math

import pytest

from pe_bringup.evaluate import main as pe_eval
from pe_sim.evaluation import EVAL_SEED_BASE, run_episodes
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
    p["policies"] = ["selfplay_envelope_full_pursuer.onnx +filter"]  # a long name: whole, aligned
    lines = format_summary(s).splitlines()
    header = next(ln for ln in lines if ln.startswith("role"))
    row = next(ln for ln in lines if ln.startswith("pursuer"))
    assert p["policies"][0] in row and row.index("%") == header.index("viol/step") + len("viol/step") - 1


def test_json_lines_round_trip(tmp_path, seed_scenario):
    records = run_episodes(seed_scenario, _actors(seed_scenario), episodes=3, seed=9)
    from pe_sim.metrics import write_jsonl

    write_jsonl(records, tmp_path / "e.jsonl")
    again = read_jsonl(tmp_path / "e.jsonl")
    assert [r.to_json() for r in again] == [r.to_json() for r in records]


def test_pe_eval_cli_writes_records_and_summary(tmp_path, capsys):
    out = tmp_path / "eval"
    assert pe_eval(["--scenario", "seed_1v1_2obs", "--episodes", "12", "--pursuer", "scripted:pure_pursuit",
                    "--evader", "scripted:random", "--out", str(out), "--num-envs", "5",
                    "--filter", "none", "--no-progress"]) == 0
    lines = (out / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 12
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 12
    assert summary["policies"] == {"pursuer": "scripted:pure_pursuit", "evader": "scripted:random"}
    assert "capture rate" in capsys.readouterr().out


def test_pe_eval_rejects_unknown_policy_source(tmp_path, capsys):
    assert pe_eval(["--scenario", "seed_1v1_2obs", "--episodes", "1", "--pursuer", "chase",
                    "--out", str(tmp_path)]) == 2
    assert "scripted:<kind>" in capsys.readouterr().err


def test_interrupted_pe_eval_keeps_finished_episodes(tmp_path, monkeypatch, capsys):
    """Ctrl-C after some episodes: their lines are on disk, the summary covers them, exit 130."""
    import pe_bringup.evaluate as cli

    real = cli.evaluate

    def interrupted_after_seven(*args, on_record, **kwargs):
        def record_then_stop(record):
            on_record(record)
            if record_then_stop.count == 6:
                raise KeyboardInterrupt
            record_then_stop.count += 1

        record_then_stop.count = 0
        return real(*args, on_record=record_then_stop, **kwargs)

    monkeypatch.setattr(cli, "evaluate", interrupted_after_seven)
    out = tmp_path / "eval"
    code = pe_eval(["--scenario", "seed_1v1_2obs", "--episodes", "40", "--num-envs", "4",
                    "--pursuer", "scripted:pure_pursuit", "--evader", "scripted:random", "--out", str(out)])
    assert code == 130
    lines = (out / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 7
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 7 and summary["interrupted"] and summary["episodes_requested"] == 40
    assert "kept 7 of 40" in capsys.readouterr().err


def test_unwritable_out_is_refused_before_playing(tmp_path, monkeypatch, capsys):
    import pe_bringup.evaluate as cli

    monkeypatch.setattr(cli, "evaluate", lambda *a, **k: pytest.fail("played episodes"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert pe_eval(["--episodes", "1", "--out", str(blocker / "sub")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_summary_identifies_scenario_content_and_policy_files(tmp_path):
    import yaml

    from pe_policy.evaluate import evaluate
    from pe_sim.scenario import load_scenario, scenario_path

    data = yaml.safe_load(scenario_path("bench_1v1_flee").read_text())
    copy = tmp_path / "bench_1v1_flee.yaml"
    copy.write_text(yaml.safe_dump(data))
    data["robots"][1]["v_max"] = 0.9
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(data))
    shipped = load_scenario("bench_1v1_flee")
    assert load_scenario(str(copy)).content_hash() == shipped.content_hash()
    assert load_scenario(str(edited)).content_hash() != shipped.content_hash()
    result = evaluate(str(edited), {"pursuer": "pursuer_bench_flee_filter", "evader": "scripted:flee"}, 2,
                      filter="none")
    assert result.summary["scenario"] == "bench_1v1_flee"
    assert result.summary["scenario_hash"] == load_scenario(str(edited)).content_hash()
    pursuer = result.summary["policy_files"]["pursuer"]
    assert len(pursuer["sha256"]) == 64 and pursuer["file"].endswith("pursuer_bench_flee_filter.onnx")


def test_refused_policy_leaves_no_records_file(tmp_path, capsys):
    out = tmp_path / "eval"
    assert pe_eval(["--episodes", "2", "--evader", "pursuer_bench_flee", "--out", str(out)]) == 2
    assert "trained for a pursuer" in capsys.readouterr().err
    assert not (out / "episodes.jsonl").exists()


def test_pe_eval_plays_every_variant_of_a_scenario_with_the_same_seeds(tmp_path, capsys):
    import yaml

    from pe_sim.scenario import scenario_path

    data = yaml.safe_load(scenario_path("seed_1v1_2obs").read_text())
    data["variants"] = {"evader_speed_ratio": [0.5], "arena_scale": [0.8, 1.2]}
    path = tmp_path / "variants.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "eval"
    assert pe_eval(["--scenario", str(path), "--episodes", "5", "--pursuer", "scripted:pure_pursuit",
                    "--out", str(out), "--no-progress"]) == 0
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    names = ["seed_1v1_2obs@v0.5a0.8", "seed_1v1_2obs@v0.5a1.2"]
    assert sorted((r["scenario"], r["seed"]) for r in records) == sorted(
        (n, EVAL_SEED_BASE + k) for n in names for k in range(5))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 10 and list(summary["variants"]) == names
    assert all(summary["variants"][n]["episodes"] == 5 for n in names)
    printed = capsys.readouterr().out
    assert all(n in printed for n in names)
