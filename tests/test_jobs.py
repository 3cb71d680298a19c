"""Jobs without Ray: seed lists, the local runner, clear errors for --ray, the seed sweep
and its resume rule, and the spread over seeds. (The Ray backend against a real
two-node cluster: tests/test_ray_cluster.py.)"""

from __future__ import annotations

import argparse
import json
import os
import sys

import pytest

from pe_sim import jobs
from pe_sim.cli import UserError
from pe_training import train as train_mod
from pe_training.config import load_train_config, smoke_overrides
from pe_training.sweep import mean_interval, spread


def double(x: int) -> int:
    return 2 * x


def where() -> str:
    return os.getcwd()


@pytest.mark.parametrize(("text", "seeds"), [("1-5", [1, 2, 3, 4, 5]), ("1,3,5", [1, 3, 5]), ("7", [7]),
                                              ("1-2,9", [1, 2, 9])])
def test_seed_list(text, seeds):
    assert jobs.seed_list(text) == seeds


@pytest.mark.parametrize("text", ["", "a-b", "3-1", "1,1", "100", "-1"])
def test_seed_list_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError):
        jobs.seed_list(text)


def test_local_jobs_run_in_order_from_their_folder(tmp_path):
    seen = []
    here = os.getcwd()
    batch = [jobs.Job(f"j{i}", "test_jobs:double", {"x": i}) for i in range(3)]
    batch.append(jobs.Job("cwd", "test_jobs:where", cwd=str(tmp_path)))
    results = jobs.run_jobs(batch, on_result=lambda job, r: seen.append((job.name, r)))
    assert results == [0, 2, 4, str(tmp_path)]
    assert seen == list(zip(["j0", "j1", "j2", "cwd"], results, strict=True))
    assert os.getcwd() == here


def test_a_job_refuses_a_folder_the_worker_does_not_have(tmp_path):
    job = jobs.Job("far", "test_jobs:where", cwd=str(tmp_path / "not-here"))
    with pytest.raises(UserError, match="not on this worker"):
        jobs.execute(job)


def test_limit_threads_sets_the_pools(monkeypatch):
    import numba
    import torch

    for name in jobs.THREAD_VARIABLES:
        monkeypatch.setenv(name, "7")
    before = torch.get_num_threads(), numba.get_num_threads()
    try:
        jobs.limit_threads(1)
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
        assert all(os.environ[name] == "1" for name in jobs.THREAD_VARIABLES)
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])


def test_ray_missing_is_a_clear_error(monkeypatch):
    from pe_sim import ray_jobs

    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the extra sees
    with pytest.raises(UserError, match="make ray"):
        ray_jobs.connect("127.0.0.1:1")


@pytest.mark.parametrize("argv", [["pursuer_bench_flee", "--ray"],
                                  ["pursuer_bench_flee", "--seed", "1", "--seeds", "1-2"],
                                  ["pursuer_bench_flee", "--seeds", "0-100"]])
def test_pe_train_sweep_argument_mistakes(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        train_mod.main(argv)
    assert exit_.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_sweep_trains_each_seed_and_refuses_to_overwrite(tmp_path, capsys):
    argv = ["pursuer_bench_flee", "--smoke", "--seeds", "1-2", "--output-dir", str(tmp_path), "--no-progress",
            "--set", "total_steps=1024", "--set", "final_eval.episodes=8"]
    assert train_mod.main(argv) == 0
    sweep = json.loads((tmp_path / "pursuer_bench_flee-smoke-seeds" / "sweep.json").read_text())
    assert [r["seed"] for r in sweep["runs"]] == [1, 2]
    for run in sweep["runs"]:
        card = json.loads((tmp_path / run["name"] / "model_card.json").read_text())
        assert card["config"]["seed"] == run["seed"] and card["steps"] == run["steps"]
    assert sweep["spread"]["learner"]["seeds"] == [1, 2]
    assert train_mod.main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    assert train_mod.main([*argv, "--resume"]) == 0  # finished runs are reused, not retrained


def test_train_or_resume_continues_from_the_latest_checkpoint(tmp_path):
    overrides = [*smoke_overrides(), f"output_dir={tmp_path}", "final_eval.episodes=0", "total_steps=2048"]
    short = load_train_config("pursuer_bench_flee", overrides)
    train_mod.train(short, progress=False, final_eval=False)
    longer = load_train_config("pursuer_bench_flee", [*overrides, "total_steps=4096"])
    card = train_mod.train_or_resume(longer, final_eval=False)
    assert card["steps"] == 4096
    run = json.loads((longer.run_dir / "run.json").read_text())
    assert run["resumed_from"] == "latest"
    assert train_mod.train_or_resume(longer, final_eval=False)["finished"] == card["finished"]  # reused


def test_mean_interval():
    e = mean_interval([0.2, 0.4, 0.6])
    assert e["mean"] == pytest.approx(0.4)
    # t(0.975, 2) = 4.303, s = 0.2, n = 3
    assert e["high"] - e["mean"] == pytest.approx(4.3027 * 0.2 / 3 ** 0.5, rel=1e-3)
    clipped = mean_interval([0.0, 1.0], bounds=(0.0, 1.0))
    assert (clipped["low"], clipped["high"]) == (0.0, 1.0)
    assert mean_interval([0.3]) == {"mean": 0.3, "low": 0.3, "high": 0.3, "std": 0.0}


def test_spread_groups_by_opponent():
    runs = [{"seed": s, "name": f"p-seed{s}", "win_rates": {f"p-seed{s}": r, "scripted:pn": 0.5}}
            for s, r in [(1, 0.2), (2, 0.4)]]
    out = spread(runs)
    assert out["learner"]["win_rates"] == [0.2, 0.4] and out["learner"]["seeds"] == [1, 2]
    assert out["scripted:pn"]["mean"] == 0.5


def test_nothing_imports_ray_without_the_flag(tmp_path):
    import subprocess

    argv = ["pursuer_bench_flee", "--smoke", "--seeds", "1", "--output-dir", str(tmp_path), "--no-progress",
            "--set", "total_steps=1024", "--no-final-eval"]
    code = ("import sys\n"
            "import pe_bringup.report.cli, pe_training.exploit, pe_training.selfplay\n"
            "from pe_training import train\n"
            f"assert train.main({argv!r}) == 0\n"
            "assert 'ray' not in sys.modules, 'ray was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_an_address_nobody_answers_on_is_refused_at_once():
    import socket

    from pe_sim import ray_jobs

    with socket.socket() as s:   # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address in (f"127.0.0.1:{port}", "127.0.0.1:not-a-port"):
        with pytest.raises(UserError, match="no Ray head answers"):
            ray_jobs.check_reachable(address, timeout_s=2.0)
    ray_jobs.check_reachable("ray://somewhere:10001")   # Ray's client: left to Ray
