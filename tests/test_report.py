"""pe-report on a small matrix: rows and intervals from real episodes, the cache
(incremental, keeps finished chunks when stopped), the files and the README section."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest

from pe_bringup.report import run as report_run
from pe_bringup.report.cache import ResultCache
from pe_bringup.report.cli import main
from pe_bringup.report.document import build_report
from pe_bringup.report.matrix import FLEE, PN, Matrix, Method, bench_block
from pe_bringup.report.run import run_matrix
from pe_bringup.report.writers import README_BEGIN, README_END, markdown, update_readme, write_report
from pe_policy.evaluate import evaluate

EPISODES = 8
SEED = 1_000_000_000
POSTHOC = Method("ppo_posthoc", "PPO + post-hoc filter", "pursuer_bench_flee")
NO_FILTER = Method("ppo", "PPO, no filter", "pursuer_bench_flee", "evader")


def tiny_matrix(methods=(PN, POSTHOC, NO_FILTER), episodes=EPISODES) -> Matrix:
    block = bench_block(variants=True, opponents=(FLEE,))
    block = dataclasses.replace(block, scenarios=(block.scenarios[0], block.scenarios[3]), methods=methods)
    return Matrix.of((block,), episodes, SEED)


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    cache = ResultCache(tmp_path_factory.mktemp("cache"))
    return cache, run_matrix(tiny_matrix(), cache, progress=False)


def test_rows_equal_a_direct_evaluation(played):
    _, results = played
    assert [r.row.scenario.key for r in results] == ["bench_1v1_flee"] * 3 + ["bench_fast_evader"] * 3
    direct = evaluate("bench_1v1_flee", {"pursuer": "pursuer_bench_flee", "evader": "scripted:flee"},
                      EPISODES, seed=SEED, filter="all")
    assert [r.to_json() for r in results[1].records] == [r.to_json() for r in direct.records]
    fast = results[3].scenario
    assert fast.robots[1].v_max == pytest.approx(0.98 * fast.robots[0].v_max)


def test_cache_is_reused_and_a_new_row_plays_alone(played):
    cache, first = played
    again = run_matrix(tiny_matrix(), cache, progress=False)
    assert sum(r.played_chunks for r in again) == 0
    assert [r.play_time_s for r in again] == [r.play_time_s for r in first]   # recorded when played
    assert all(r.play_time_s > 0 for r in first)
    assert [r.records for r in again] == [r.records for r in first]
    grown = run_matrix(tiny_matrix(methods=(PN, POSTHOC, NO_FILTER, Method(
        "bn", "BarrierNet PPO", "barriernet_ppo_bench_long"))), cache, progress=False)
    assert [r.row.method.key for r in grown if r.played_chunks] == ["bn", "bn"]


def test_a_stopped_run_keeps_its_finished_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(report_run, "CHUNK_EPISODES", 4)       # 2 chunks per row

    class StopsAfterThree(ResultCache):
        stored = 0

        def store(self, key, records, play_time_s=None):
            super().store(key, records, play_time_s)
            StopsAfterThree.stored += 1
            if StopsAfterThree.stored == 3:
                raise KeyboardInterrupt

    matrix = tiny_matrix(methods=(PN, POSTHOC))
    with pytest.raises(KeyboardInterrupt):
        run_matrix(matrix, StopsAfterThree(tmp_path), progress=False)
    assert len(list(tmp_path.glob("*.jsonl"))) == 3
    resumed = run_matrix(matrix, ResultCache(tmp_path), progress=False)
    assert sum(r.cached_chunks for r in resumed) == 3
    assert sum(r.played_chunks for r in resumed) == 2 * len(matrix.rows) - 3
    assert all(len(r.records) == EPISODES for r in resumed)


def test_report_numbers_and_files(played, tmp_path):
    _, results = played
    report = build_report(tiny_matrix(), results, command="pe-report test", wall_time_s=1.0, thumbnails=True)
    pn, _, nofilter = report.rows[:3]
    captured = sum(r.captured for r in results[0].records)
    assert pn["capture_rate"]["value"] == captured / EPISODES
    assert pn["capture_rate"]["low"] <= pn["capture_rate"]["value"] <= pn["capture_rate"]["high"]
    assert pn["roles"]["pursuer"]["filtered"] and not nofilter["roles"]["pursuer"]["filtered"]
    assert nofilter["roles"]["evader"]["filtered"]
    # Paired comparisons: every pair of the 3 methods in each of the 2 scenarios.
    assert len(report.comparisons) == 6
    pair = report.comparisons[0]
    assert pair["seeds"] == EPISODES and 0.0 < pair["p_value"] <= 1.0
    assert any(f.key.startswith("trajectory-") for f in report.figures)
    assert not any("DIFFERS" in f.caption for f in report.figures)

    paths = write_report(report, tmp_path)
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == 6 and float(rows[0]["capture_rate"]) == pn["capture_rate"]["value"]
    data = json.loads(paths["json"].read_text())
    assert data["rows"][1]["method"] == "ppo_posthoc" and len(data["comparisons"]) == 6
    for figure in data["figures"]:
        assert (tmp_path / figure["file"]).read_bytes().startswith(b"\x89PNG")
    text = paths["md"].read_text()
    assert "| PPO + post-hoc filter |" in text and "McNemar" in text
    page = paths["html"].read_text()
    assert page.count("<table>") >= 2 and page.count("data:image/png;base64,") == len(report.figures)

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{README_BEGIN}\nold table\n{README_END}\nafter\n")
    update_readme(readme, markdown(report, figures_dir=None, heading="###"))
    updated = readme.read_text()
    assert "old table" not in updated and "before" in updated and "after" in updated
    assert "| scripted proportional navigation |" in updated


def test_cli_small_matrix_and_user_errors(tmp_path, capsys):
    out, cache = tmp_path / "report", tmp_path / "cache"
    assert main(["--matrix", "small", "--episodes", "4", "--out", str(out), "--cache", str(cache),
                 "--no-progress", "--no-thumbnails"]) == 0
    assert (out / "report.html").is_file() and "8 rows" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["--episodes", "0"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["--update-readme", str(tmp_path / "missing.md")])
    assert exit_info.value.code == 2


def test_rows_outside_a_policys_training_envelope_are_marked():
    from pe_bringup.report.document import envelope_notes
    from pe_bringup.report.run import RowResult
    from pe_bringup.report.writers import method_cell

    block = bench_block(variants=True, opponents=(FLEE,))
    base, more = block.scenarios[0], next(s for s in block.scenarios if s.key == "bench_more_obstacles")
    posthoc = tiny_matrix().rows[1]                                              # PPO + filter
    inside = envelope_notes(RowResult(dataclasses.replace(posthoc, scenario=base), base.build(), [], 0, 0))
    outside = envelope_notes(RowResult(dataclasses.replace(posthoc, scenario=more), more.build(), [], 0, 0))
    assert inside == [] and len(outside) == 1 and "obstacles" in outside[0]
    assert method_cell({"method_label": "m", "outside_envelope": outside}).endswith("†")
    scripted = dataclasses.replace(tiny_matrix().rows[0], scenario=more)        # PN: no envelope
    assert envelope_notes(RowResult(scripted, more.build(), [], 0, 0)) == []


def test_the_default_pursuer_is_a_method_of_the_benchmark_once():
    from pe_bringup.report.matrix import default_matrix
    from pe_policy.policy import DEFAULT_PURSUER

    bench = default_matrix(episodes=1, seed=SEED).blocks[0]
    sources = [m.source for m in bench.methods]
    assert sources.count(DEFAULT_PURSUER) == 1
    assert "default pursuer" in next(m.label for m in bench.methods if m.source == DEFAULT_PURSUER)
