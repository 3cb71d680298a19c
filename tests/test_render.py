"""Episode recordings and the trajectory plot CLI (pe-plot)."""

from __future__ import annotations

import numpy as np
import pytest

from pe_policy.viewer import plot_main as main
from pe_sim.batch import BatchSim
from pe_sim.episode_log import EpisodeLog, EpisodeRecorder, simulate_episode
from pe_sim.render import plot_episode
from pe_sim.scripted import WorldView, make_scripted

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _record_batch(scenario, envs, seed=10, num_envs=3):
    sim = BatchSim(scenario, num_envs, seed=seed)
    policies = [make_scripted("proportional_navigation", scenario, 0), make_scripted("random", scenario, 1)]
    rec = EpisodeRecorder(sim, envs, {"pursuer": "proportional_navigation", "evader": "random"})
    rec.begin()
    while not rec.finished:
        view = WorldView.of(sim)
        rec.record(sim.step(np.stack([p(view) for p in policies], axis=1)))
    return rec.records


def test_recorder_matches_single_episode_replay(seed_scenario):
    records = _record_batch(seed_scenario, [0, 2])
    assert [r.seed for r in records] == [10, 12]
    for record in records:
        assert record.pose.shape == (record.steps + 1, 2, 3)
        assert record.command.shape == (record.steps, 2, 2)
        assert record.violation.shape == (record.steps, 2)
        assert record.obstacles.shape == (2, 3)
        if record.captured:
            k = record.capture_step
            assert k == record.steps
            gap = np.hypot(*(record.pose[k, 0, :2] - record.pose[k, 1, :2]))
            assert gap <= seed_scenario.capture_radius
        else:
            assert record.steps == seed_scenario.max_steps
        # The same seed played alone gives the same episode.
        alone = simulate_episode(seed_scenario, record.seed, "proportional_navigation", "random")
        np.testing.assert_array_equal(alone.pose, record.pose)
        assert alone.capture_step == record.capture_step


def test_save_load_round_trip(tmp_path, seed_scenario):
    record = simulate_episode(seed_scenario, 3, "pure_pursuit", "random")
    path = record.save(tmp_path / "ep")
    assert path.suffix == ".npz"
    back = EpisodeLog.load(path)
    np.testing.assert_array_equal(back.pose, record.pose)
    np.testing.assert_array_equal(back.command, record.command)
    np.testing.assert_array_equal(back.violation, record.violation)
    np.testing.assert_array_equal(back.obstacles, record.obstacles)
    assert (back.seed, back.capture_step, back.scenario_name) == (3, record.capture_step, "seed_1v1_2obs")
    assert back.policies == {"pursuer": "pure_pursuit", "evader": "random"}
    assert back.scenario["name"] == "seed_1v1_2obs"


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, meta=np.array('{"format": "something/else"}'))
    with pytest.raises(ValueError, match="not an episode recording"):
        EpisodeLog.load(path)


def _is_png(path) -> bool:
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_plot_marks_capture_and_violations(tmp_path, seed_scenario):
    record = simulate_episode(seed_scenario, 1, "proportional_navigation", "random")
    record.violation[5:9, 0] = True          # pretend the pursuer touched something
    record.capture_step = record.steps        # and that the episode ended in capture
    out = plot_episode(record, tmp_path / "marked.png")
    assert _is_png(out)


def test_cli_simulates_saves_and_replots(tmp_path, capsys):
    png = tmp_path / "sim.png"
    episode = tmp_path / "ep.npz"
    assert main(["--scenario", "seed_1v1_2obs", "--seed", "2", "--pursuer", "proportional_navigation",
                 "--evader", "random", "-o", str(png), "--save-episode", str(episode)]) == 0
    assert _is_png(png)
    assert episode.exists()
    assert main([str(episode)]) == 0                      # default output next to the recording
    assert _is_png(episode.with_suffix(".png"))
    assert "seed_1v1_2obs seed 2" in capsys.readouterr().out


def test_cli_needs_one_input(capsys):
    with pytest.raises(SystemExit):
        main([])
    with pytest.raises(SystemExit):
        main(["x.npz", "--scenario", "seed_1v1_2obs"])
