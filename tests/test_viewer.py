"""Replays of episodes from their seed (equal to the evaluation's records), and the
viewers on learned, filtered episodes: pe-plot from a records file, pe-play's GIF
read back with Pillow."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pe_policy.evaluate import evaluate
from pe_policy.replay import check_replay, replay_record, source_of_policy_name
from pe_policy.viewer import play_main, plot_main
from pe_sim.animate import CORRECTION_COLOUR, frame_steps
from pe_sim.metrics import write_jsonl

SEED = 1_000_000_000


@pytest.mark.parametrize(("scenario", "pursuer", "evader"), [
    ("bench_1v1_flee", "pursuer_bench_flee_filter", "scripted:flee"),        # ONNX PPO
    ("bench_1v1_flee", "barriernet_ppo_bench_long", "scripted:flee"),        # BarrierNet (gains to the QP)
    ("seed_1v1_2obs", "scripted:proportional_navigation", "scripted:random"),
])
def test_replay_equals_the_evaluation_record(scenario, pursuer, evader):
    result = evaluate(scenario, {"pursuer": pursuer, "evader": evader}, 4, seed=SEED, filter="all")
    for record in result.records:
        log = replay_record(record)
        assert check_replay(log, record) == []
        assert log.nominal_command.shape == log.command.shape == (record.steps, 2, 2)


def test_check_replay_reports_a_difference():
    result = evaluate("bench_1v1_flee", {"pursuer": "scripted:pure_pursuit", "evader": "scripted:flee"}, 2,
                      seed=SEED, filter="all")
    log = replay_record(result.records[0])
    other = result.records[1]
    other.seed = result.records[0].seed
    other.robots[0].interventions += 1
    assert any("interventions" in p for p in check_replay(log, other))


def test_policy_names_of_records_map_back_to_sources():
    assert source_of_policy_name("pursuer_bench_flee_filter.onnx +filter") == \
        ("pursuer_bench_flee_filter", True)
    assert source_of_policy_name("scripted:flee") == ("scripted:flee", False)
    from pe_policy.policy import resolve_source

    path = resolve_source("pursuer_bench_flee")
    assert source_of_policy_name(f"{path} +filter") == (path, True)
    with pytest.raises(ValueError, match="not a shipped policy"):
        source_of_policy_name("my_policy.onnx +filter")


@pytest.fixture(scope="module")
def records_file(tmp_path_factory):
    """pe-eval-style records of the unconstrained PPO pursuer with the post-hoc filter."""
    result = evaluate("bench_1v1_flee", {"pursuer": "pursuer_bench_flee", "evader": "scripted:flee"}, 6,
                      seed=SEED, filter="all")
    path = tmp_path_factory.mktemp("eval") / "episodes.jsonl"
    write_jsonl(result.records, path)
    busiest = max(result.records, key=lambda r: r.robots[0].interventions)
    return path, busiest


def test_pe_plot_draws_a_filtered_learned_episode_from_records(records_file, tmp_path, capsys):
    path, record = records_file
    png = tmp_path / "ep.png"
    assert plot_main([str(path), "--seed", str(record.seed), "-o", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")
    assert f"{record.robots[0].interventions + record.robots[1].interventions} filter corrections" \
        in capsys.readouterr().out


def test_pe_plot_user_errors_exit_2(records_file, tmp_path):
    path, _ = records_file
    for argv in ([str(path), "--seed", "7"], [str(tmp_path / "missing.jsonl")], []):
        with pytest.raises(SystemExit) as info:
            plot_main(argv)
        assert info.value.code == 2


def test_pe_play_gif_shows_the_corrections(records_file, tmp_path):
    path, record = records_file
    gif = tmp_path / "ep.gif"
    assert play_main([str(path), "--seed", str(record.seed), "-o", str(gif), "--max-frames", "40",
                      "--dpi", "50"]) == 0
    image = Image.open(gif)
    assert image.n_frames == len(frame_steps(replay_record(record), 40))
    red = np.array([int(CORRECTION_COLOUR[i:i + 2], 16) for i in (1, 3, 5)])
    ringed = 0
    for k in range(image.n_frames):
        image.seek(k)
        pixels = np.asarray(image.convert("RGB"), dtype=int)
        ringed += int((np.abs(pixels - red).sum(axis=-1) < 40).sum() > 20)
    assert ringed > 0                    # some frames show a correction ring
    with pytest.raises(SystemExit) as info:
        play_main([str(path), "-o", str(tmp_path / "ep.avi")])
    assert info.value.code == 2
