"""pe-exploit, pe-crossplay, pe-selfplay and the learned-evader config: smoke runs end to
end (seconds each), caching, and clean errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from pe_policy.policy import load_policy
from pe_sim.scenario import load_scenario
from pe_training import crossplay as crossplay_mod
from pe_training import exploit as exploit_mod
from pe_training import selfplay as selfplay_mod
from pe_training import train as train_mod
from pe_training.matchup import play
from pe_training.selfplay_config import load_selfplay_config


@pytest.fixture(scope="module")
def bench():
    return load_scenario("bench_1v1_flee")


def test_learned_evader_config_trains_with_pe_train(tmp_path, bench):
    argv = ["evader_bench_pn_filter", "--smoke", "--output-dir", str(tmp_path), "--no-progress",
            "--set", "final_eval.episodes=8"]
    assert train_mod.main(argv) == 0
    card = json.loads((tmp_path / "evader_bench_pn_filter-smoke" / "model_card.json").read_text())
    assert card["role"] == "evader" and card["config"]["opponent"] == "scripted:proportional_navigation"
    assert card["config"]["filter"]["in_loop"] and card["config"]["filter"]["robots"] == "all"
    policy = load_policy(str(tmp_path / "evader_bench_pn_filter-smoke" / "evader_bench_pn_filter-smoke.onnx"),
                         bench, 1)
    assert policy.metadata.role == "evader"


def test_exploit_trains_caches_and_reports(tmp_path, capsys):
    cache = tmp_path / "exploit"
    argv = ["scripted:proportional_navigation", "--smoke", "--steps", "2048", "--episodes", "24",
            "--cache", str(cache), "--no-progress", "--json", str(tmp_path / "report.json")]
    assert exploit_mod.main(argv) == 0
    [entry] = list(cache.glob("proportional_navigation-*/*/exploit.json"))
    report = json.loads(entry.read_text())
    assert report == json.loads((tmp_path / "report.json").read_text())
    assert report["role"] == "pursuer" and report["best_response"]["role"] == "evader"
    assert report["best_response"]["budget_steps"] == 2048 and not report["best_response"]["cached"]
    curve = report["best_response"]["learning_curve"]
    assert curve and curve[-1]["steps"] == 2048 and all(0 <= r["win_rate"] <= 1 for r in curve)
    kinds = [(r["kind"], r["opponent"]) for r in report["rows"]]
    assert kinds[0][0] == "best_response"
    assert kinds[1:] == [("reference", "scripted:flee"), ("reference", "scripted:random")]
    for row in report["rows"]:
        assert row["win_low"] <= row["win_rate"] <= row["win_high"] and row["episodes"] == 24
        assert row["violation_episodes"] == 0  # every robot behind the filter
    best_ref = max(r["win_rate"] for r in report["rows"][1:])
    gap = 100 * (best_ref - report["rows"][0]["win_rate"])
    assert report["exploitability"]["points"] == pytest.approx(gap)
    worst_ref = min(r["win_rate"] for r in report["rows"][1:])
    assert report["exploitability"]["points_vs_worst_reference"] == pytest.approx(
        100 * (worst_ref - report["rows"][0]["win_rate"]))
    # the best response is an ordinary evader policy: pe-eval can field it
    br = entry.parent / "best_response.onnx"
    result = play("bench_1v1_flee", "scripted:proportional_navigation", str(br), 24)
    assert result.captures == report["rows"][0]["captures"]  # same seeds, same episodes
    mtime = br.stat().st_mtime_ns
    assert exploit_mod.main(argv) == 0  # second call: cached, only re-evaluated
    again = json.loads(entry.read_text())
    assert again["best_response"]["cached"] and br.stat().st_mtime_ns == mtime
    assert again["rows"] == report["rows"]
    # several seeds: seed 1 from the cache, seed 2 trained; the spread over both
    assert exploit_mod.main([*argv[:-2], "--seed", "1", "2"]) == 0
    spread = json.loads((entry.parent.parent / "seeds-2048-1-2.json").read_text())
    assert spread["seeds"] == [1, 2]
    assert spread["points"][0] == pytest.approx(report["exploitability"]["points"])
    assert spread["min_points"] <= spread["mean_points"] <= spread["max_points"]
    assert len(list(cache.glob("proportional_navigation-*/*/best_response.onnx"))) == 2
    # several policies (e.g. training seeds): each one's figure, and the spread over them
    assert exploit_mod.main(["scripted:proportional_navigation", "scripted:pure_pursuit", *argv[1:-2]]) == 0
    [over] = [json.loads(f.read_text()) for f in cache.glob("policies-2048-1-*.json")]
    assert over["policies"] == ["scripted:proportional_navigation", "scripted:pure_pursuit"]
    assert over["points"][0] == pytest.approx(report["exploitability"]["points"])  # cached
    assert over["points"][1] == pytest.approx(over["reports"][1]["exploitability"]["points"])
    assert over["mean_points_low"] <= over["mean_points"] <= over["mean_points_high"]
    # another seed or budget is another cache entry
    other = exploit_mod.plan("scripted:proportional_navigation", steps=4096, smoke=True, root=cache)
    assert other.cache_dir != entry.parent and other.cache_dir.parent == entry.parent.parent
    capsys.readouterr()


def test_exploit_derives_the_opposite_role_and_errors_cleanly(tmp_path, capsys):
    p = exploit_mod.plan("pursuer_bench_flee_filter", steps=1000, root=tmp_path)
    assert p.config.role == "evader" and p.config.opponent.endswith("pursuer_bench_flee_filter.onnx")
    assert p.config.name == "best_response" and p.config.final_eval.episodes == 0
    assert p.scenario == "bench_1v1_flee" and p.config.total_steps == 1000
    q = exploit_mod.plan("scripted:flee", steps=1000, root=tmp_path)
    assert q.config.role == "pursuer" and q.config.opponent == "scripted:flee"
    assert exploit_mod.main(["no_such_policy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pe-exploit: error:")
    assert exploit_mod.main(["scripted:flee", "--set", "ppo.n_epoch=3"]) == 2


def test_exploit_help_states_the_budget_it_uses(capsys):
    with pytest.raises(SystemExit):
        exploit_mod.main(["--help"])
    stated = re.search(r"\(default (\S+)\)", capsys.readouterr().out.split("--steps STEPS")[-1]).group(1)
    assert exploit_mod.steps_count(stated) == exploit_mod.DEFAULT_STEPS


def test_crossplay_matrix_json_and_heatmap(tmp_path, capsys):
    out = tmp_path / "xp"
    argv = ["--pursuers", "scripted:pure_pursuit", "scripted:proportional_navigation",
            "--evaders", "scripted:flee", "scripted:random", "--episodes", "12", "--out", str(out)]
    assert crossplay_mod.main(argv) == 0
    data = json.loads((out / "crossplay.json").read_text())
    assert (out / "crossplay.png").read_bytes()[:4] == b"\x89PNG"
    capture = np.array(data["capture"])
    assert capture.shape == (2, 2)
    direct = play("bench_1v1_flee", "scripted:proportional_navigation", "scripted:flee", 12)
    assert capture[1, 0] == direct.capture_rate
    nash = data["nash"]
    assert capture.min() - 1e-9 <= nash["value"] <= capture.max() + 1e-9
    assert sum(nash["pursuer_mixture"]) == pytest.approx(1.0)
    assert max(nash["pursuer_rating"]) == pytest.approx(nash["value"], abs=1e-6)
    assert data["worst_case_capture"] == capture.min(axis=1).tolist()
    capsys.readouterr()


def test_crossplay_refuses_a_player_in_the_wrong_role(tmp_path, capsys):
    code = crossplay_mod.main(["--pursuers", "pursuer_bench_flee_filter", "--evaders",
                               "pursuer_bench_flee_filter", "--episodes", "2", "--out", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err.startswith("pe-crossplay: error:")


def test_selfplay_smoke_run_interrupted_and_resumed(tmp_path, bench, capsys):
    argv = ["selfplay_bench", "--smoke", "--output-dir", str(tmp_path), "--quiet"]
    assert selfplay_mod.main([*argv, "--set", "generations=1"]) == 0  # as if stopped after generation 1
    run = tmp_path / "selfplay_bench-smoke"
    played = len((run / "matches.jsonl").read_text().splitlines())
    assert played == 9  # (PP, PN, pursuer_g1) x (flee, random, evader_g1)
    assert selfplay_mod.main([*argv, "--set", "generations=1", "--resume"]) == 2  # nothing left to do
    assert selfplay_mod.main([*argv, "--resume"]) == 0  # the smoke default: 2 generations
    # generation 2 adds 2 * 2 + 3 = 7 pairs; the 9 of generation 1 are not replayed
    assert len((run / "matches.jsonl").read_text().splitlines()) == played + 7
    state = json.loads((run / "checkpoints" / "evader.json").read_text())
    assert state["generation"] == 2 and state["next_seed"] > 51 * 10_000_000
    rows = [json.loads(line) for line in (run / "selfplay.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [1, 2]
    # the pools grow by one snapshot of the other side per generation
    assert rows[0]["pursuer"]["pool"] == ["flee", "random"]
    assert rows[1]["pursuer"]["pool"] == ["flee", "random", "evader_g1"]
    assert rows[0]["evader"]["pool"] == ["PP", "PN", "pursuer_g1"]
    assert rows[1]["evader"]["pool"] == ["PP", "PN", "pursuer_g1", "pursuer_g2"]
    for r in rows:
        for role in ("pursuer", "evader"):
            assert sum(r[role]["pfsp_weights"]) == pytest.approx(1.0)
        assert r["pursuer"]["num_timesteps"] == r["evader"]["num_timesteps"] == 2048 * r["generation"]
    # every generation's cross-play: scripted + each generation's export, no violations
    xps = [json.loads(line) for line in (run / "crossplay.jsonl").read_text().splitlines()]
    assert np.shape(xps[-1]["capture"]) == (4, 4)
    assert xps[-1]["pursuers"][2:] == [str(run / "generations" / f"pursuer_g{g}.onnx") for g in (1, 2)]
    assert all(v == 0 for row in xps[-1]["violation_episodes"] for v in row)
    assert xps[0]["capture"] == [row[:3] for row in xps[-1]["capture"][:3]]  # pairs played once, reused
    summary = json.loads((run / "selfplay.json").read_text())  # written by the resumed part
    assert summary["steps_per_learner"] == 4096
    assert load_policy(summary["policies"]["evader"], bench, 1).metadata.role == "evader"
    assert load_policy(summary["policies"]["pursuer"], bench, 0).metadata.role == "pursuer"
    assert (run / "crossplay.png").exists()
    card = json.loads((run / "selfplay_bench-smoke_evader.model_card.json").read_text())
    assert [r["opponent"] for r in card["final_eval"]["rows"]] == [
        "scripted:pure_pursuit", "scripted:proportional_navigation", summary["policies"]["pursuer"]]
    assert all(r["episodes"] == 8 and r["violation_episodes"] == 0 for r in card["final_eval"]["rows"])
    assert (run / "selfplay_bench-smoke_pursuer.model_card.md").read_text().startswith("# Model card")
    # the card names both calls that made the run, in order, and their generations' time
    sessions = [json.loads(line) for line in (run / "sessions.jsonl").read_text().splitlines()]
    assert [s["first_generation"] for s in sessions] == [1, 2]
    assert card["command"].splitlines() == [s["command"] for s in sessions]
    assert "--resume" not in sessions[0]["command"] and "--resume" in sessions[1]["command"]
    card_text = (run / "selfplay_bench-smoke_evader.model_card.md").read_text()
    assert "2 `pe-selfplay` calls (from generation 1" in card_text
    assert 0 < summary["generations_wall_time_s"]
    capsys.readouterr()
    assert selfplay_mod.main(argv) == 2  # the run exists: no silent overwrite (nor resume)
    assert "--overwrite" in capsys.readouterr().err
    capsys.readouterr()


def test_frozen_pool_members_join_a_resumed_run_and_its_crossplay(tmp_path, capsys):
    """A frozen learned evader (as a best response from pe-exploit would be) added to the
    pursuer's pool when a finished run is extended: in the pool from the next generation,
    in that generation's cross-play; a member of the wrong role is refused."""
    argv = ["selfplay_bench", "--smoke", "--output-dir", str(tmp_path), "--quiet"]
    assert selfplay_mod.main([*argv, "--set", "generations=1"]) == 0
    frozen = ["--set", "pool.frozen_evaders=[selfplay_bench_evader]"]
    assert selfplay_mod.main([*argv, *frozen, "--resume"]) == 0
    run = tmp_path / "selfplay_bench-smoke"
    rows = [json.loads(line) for line in (run / "selfplay.jsonl").read_text().splitlines()]
    assert rows[0]["pursuer"]["pool"] == ["flee", "random"]
    assert rows[1]["pursuer"]["pool"] == ["flee", "random", "selfplay_bench_evader", "evader_g1"]
    assert rows[1]["evader"]["pool"] == ["PP", "PN", "pursuer_g1", "pursuer_g2"]
    xp = json.loads((run / "crossplay.jsonl").read_text().splitlines()[-1])
    assert xp["evaders"][2] == "selfplay_bench_evader" and np.shape(xp["capture"]) == (4, 5)
    capsys.readouterr()
    wrong = ["--set", "pool.frozen_evaders=[pursuer_bench_flee_filter]"]
    assert selfplay_mod.main([*argv, *wrong, "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pool.frozen_evaders" in err[0] and "pursuer" in err[0]


def test_fork_extends_a_copy_of_a_run_and_leaves_the_original(tmp_path, capsys):
    argv = ["selfplay_bench", "--smoke", "--output-dir", str(tmp_path), "--quiet"]
    assert selfplay_mod.main([*argv, "--set", "generations=1"]) == 0
    source = tmp_path / "selfplay_bench-smoke"
    original = (source / "matches.jsonl").read_text()
    fork = [*argv, "--fork", str(source), "--set", "name=longer"]
    assert selfplay_mod.main(fork) == 0  # the smoke default: 2 generations
    run = tmp_path / "longer-smoke"  # --smoke adds -smoke to the name
    assert (source / "matches.jsonl").read_text() == original  # the original stays as it was
    assert selfplay_mod.completed_generations(source) == 1 and selfplay_mod.completed_generations(run) == 2
    xp = json.loads((run / "crossplay.jsonl").read_text().splitlines()[-1])
    assert xp["pursuers"][2:] == [str(run / "generations" / f"pursuer_g{g}.onnx") for g in (1, 2)]
    assert str(source) not in (run / "matches.jsonl").read_text()  # generation 1 read from the copy
    assert len((run / "matches.jsonl").read_text().splitlines()) == 9 + 7  # and not replayed
    card = json.loads((run / "longer-smoke_pursuer.model_card.json").read_text())
    first, then = card["command"].splitlines()
    assert "--fork" not in first and f"--fork {source}" in then
    capsys.readouterr()
    for wrong in ([*fork, "--resume"], [*argv, "--fork", str(tmp_path / "none"), "--set", "name=x"], fork):
        assert selfplay_mod.main(wrong) == 2  # with --resume; no such run; the destination exists
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("pe-selfplay: error:")


def test_selfplay_seeds_are_named_runs_with_a_spread_and_ship(tmp_path):
    argv = ["selfplay_bench", "--smoke", "--output-dir", str(tmp_path), "--quiet", "--seeds", "3",
            "--set", "generations=1", "--ship", str(tmp_path / "models")]
    assert selfplay_mod.main(argv) == 0
    run = tmp_path / "selfplay_bench-smoke-seed3"
    assert json.loads((run / "selfplay.json").read_text())["config"]["seed"] == 3
    seeds = json.loads((tmp_path / "selfplay_bench-smoke-seeds" / "selfplay_seeds.json").read_text())
    assert seeds["seeds"] == [3] and set(seeds["spread"]) == {"pursuer", "evader"}
    assert seeds["spread"]["pursuer"]["scripted:flee"]["seeds"] == [3]
    for role in ("pursuer", "evader"):
        shipped = tmp_path / "models" / f"selfplay_bench-smoke-seed3_{role}.onnx"
        assert shipped.read_bytes() == (run / shipped.name).read_bytes()
        assert shipped.with_suffix(".model_card.json").is_file()
    assert selfplay_mod.main(argv) == 2  # exists: --overwrite or --resume


def test_selfplay_with_a_barriernet_pursuer_learner_resumes(tmp_path, bench):
    """BarrierNet PPO as the pursuer learner: its snapshots are BarrierNet files (the QP
    runs in the filter with the network's gains), and its checkpoint resumes."""
    from pe_policy.barriernet_policy import BarrierNetPolicy, is_barriernet_onnx

    argv = ["selfplay_barriernet", "--smoke", "--output-dir", str(tmp_path), "--quiet"]
    assert selfplay_mod.main([*argv, "--set", "generations=1"]) == 0
    assert selfplay_mod.main([*argv, "--resume"]) == 0
    run = tmp_path / "selfplay_barriernet-smoke"
    rows = [json.loads(line) for line in (run / "selfplay.jsonl").read_text().splitlines()]
    assert [r["pursuer"]["num_timesteps"] for r in rows] == [2048, 4096]
    for g in (1, 2):
        assert is_barriernet_onnx(run / "generations" / f"pursuer_g{g}.onnx")
        assert not is_barriernet_onnx(run / "generations" / f"evader_g{g}.onnx")
    summary = json.loads((run / "selfplay.json").read_text())
    assert summary["config"]["pursuer_learner"] == "barriernet"
    assert summary["learner_configs"]["pursuer"]["method"] == "ppo"
    assert isinstance(load_policy(summary["policies"]["pursuer"], bench, 0), BarrierNetPolicy)
    xp = json.loads((run / "crossplay.jsonl").read_text().splitlines()[-1])
    assert all(v == 0 for row in xp["violation_episodes"] for v in row)


def test_selfplay_on_a_team_scenario_plays_the_learner_beside_its_last_export(tmp_path):
    """pursuit_2v1: the pursuer learner's teammate is scripted PN in generation 1, then the
    learner's own previous export; the evader learner's pool members drive both pursuers."""
    argv = ["selfplay_2v1", "--smoke", "--output-dir", str(tmp_path), "--quiet"]
    assert selfplay_mod.main(argv) == 0
    run = tmp_path / "selfplay_2v1-smoke"
    rows = [json.loads(line) for line in (run / "selfplay.jsonl").read_text().splitlines()]
    assert [r["pursuer"]["teammate"] for r in rows] == ["PN", "pursuer_g1"]
    assert [r["evader"]["teammate"] for r in rows] == [None, None]
    summary = json.loads((run / "selfplay.json").read_text())
    team = load_scenario("pursuit_2v1")
    for i in team.indices("pursuer"):  # one policy for every pursuer of the team
        assert load_policy(summary["policies"]["pursuer"], team, i).metadata.role == "pursuer"
    result = play(team, summary["policies"]["pursuer"], summary["policies"]["evader"], 8)
    assert result.scenario == "pursuit_2v1" and result.violation_episodes == 0
    # a best response to the team: an evader trained on the team's own scenario
    argv = [summary["policies"]["pursuer"], "--smoke", "--steps", "2048", "--episodes", "8",
            "--cache", str(tmp_path / "exploit"), "--no-progress", "--json", str(tmp_path / "br.json")]
    assert exploit_mod.main(argv) == 0
    report = json.loads((tmp_path / "br.json").read_text())
    assert report["scenario"] == "pursuit_2v1" and report["best_response"]["role"] == "evader"
    assert all(row["violation_episodes"] == 0 for row in report["rows"])


def test_selfplay_config_errors(capsys):
    with pytest.raises(Exception, match=r"pool\.weighting"):
        load_selfplay_config("selfplay_bench", ["pool.weighting=easy"])
    assert selfplay_mod.main(["selfplay_bench", "--set", "pursuer=evader_bench_pn_filter"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "role" in err[0]
    # a pe-train config where a BarrierNet config is expected, and a BarrierNet imitation config
    assert selfplay_mod.main(["selfplay_bench", "--set", "pursuer_learner=barriernet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pe-selfplay: error:" in err[0]
    argv = ["selfplay_barriernet", "--set", "pursuer=barriernet_imitation_bench"]
    assert selfplay_mod.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "method" in err[0]


def test_envelope_scenario_spans_the_obstacle_counts_with_the_benchmark_spec():
    from pe_sim.envs.vec_env import BatchVecEnv
    from pe_sim.observation import ObservationSpec

    envelope = load_scenario("envelope_1v1")
    for other in ("bench_1v1_flee", "open_1v1"):
        for index in (0, 1):
            ObservationSpec.for_robot(load_scenario(other), index).check_compatible(
                ObservationSpec.for_robot(envelope, index))
    env = BatchVecEnv(envelope, 256, role="pursuer", opponent="flee", seed=0)
    env.reset()
    counts = set(env.sim.n_obstacles.tolist())
    assert counts == {0, 1, 2, 3, 4}
    sp = load_selfplay_config("selfplay_envelope")
    assert selfplay_mod.learner_config(sp, "evader").scenario == "envelope_1v1"
    # the exported envelope (pe.envelope) covers both; the benchmark's (2-4 obstacles) misses the open arena
    from pe_policy.contract import Envelope

    trained = Envelope.of(envelope)
    assert trained.departures(load_scenario("bench_1v1_flee")) == []
    assert trained.departures(load_scenario("open_1v1")) == []
    assert Envelope.of(load_scenario("bench_1v1_flee")).departures(load_scenario("open_1v1"))


def test_selfplay_over_scenario_variants_pools_each_variant_and_exports_one_policy_per_role(
        tmp_path, bench, monkeypatch):
    """envelope_full_1v1 (9 variants): each learner gets one pool per variant batch with the
    same members, whose controllers are built for that variant; the cross-play spreads its
    episodes over the variants; the evader records every speed bound it trained with, so
    loading it on a variant does not warn; both load on the benchmark."""
    import warnings

    from pe_training import selfplay_learner

    made = []
    real = selfplay_learner.make_learner

    def keep(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(selfplay_mod, "make_learner", keep)
    argv = ["selfplay_envelope_full", "--smoke", "--output-dir", str(tmp_path), "--quiet"]
    assert selfplay_mod.main(argv) == 0
    for learner in made:
        assert [b.scenario.name for b in learner.batches] == [v.name for v in
                                                              load_scenario("envelope_full_1v1").variants_of()]
        assert all(p.names == learner.pools[0].names for p in learner.pools) and learner.pools[0].names
        for batch, pool in zip(learner.batches, learner.pools, strict=True):
            seat = next(iter(batch.core.controllers.values()))
            assert seat.pool is pool
            snapshot = pool.members[-1][seat.robot]  # the other side's last export, an ONNX policy
            assert snapshot.__self__.scenario is batch.scenario  # observes its own variant's arena
    run = tmp_path / "selfplay_envelope_full-smoke"
    matches = [json.loads(line) for line in (run / "matches.jsonl").read_text().splitlines()]
    assert matches and all(m["episodes"] == 9 for m in matches)  # 8 asked: 1 in each of 9 variants
    summary = json.loads((run / "selfplay.json").read_text())
    evader = load_policy(summary["policies"]["evader"], bench, 1)
    assert {hi[0] for _, hi in evader.metadata.variant_bounds} == {0.9, 0.94, 0.98}
    fast = load_scenario("envelope_full_1v1").variants_of()[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_policy(summary["policies"]["evader"], fast, 1)
    assert load_policy(summary["policies"]["pursuer"], bench, 0).metadata.spec.length_scale == 10.0
