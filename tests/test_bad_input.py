"""Every console script on a table of user mistakes: one line ``<prog>: error: ...`` naming
the input and the reason, exit code 2, no traceback; an internal bug keeps its traceback.

The table runs in-process (each main is called with argv); a few representative cases run
the installed console scripts as subprocesses.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pe_sim.cli import SEED_LIMIT, UserError, console_main
from pe_sim.package_data import data_path

BIN = Path(sys.executable).parent
SCRIPTS = {
    "pe-eval": "pe_bringup.evaluate:main",
    "pe-train": "pe_training.train:main",
    "pe-export": "pe_training.export:main",
    "pe-plot": "pe_policy.viewer:plot_main",
    "pe-play": "pe_policy.viewer:play_main",
    "pe-record": "pe_bringup.recording:main",
    "pe-live": "pe_bringup.live:main",
    "pe-report": "pe_bringup.report.cli:main",
    "pe-filter-eval": "pe_safety_filter.cli:filter_eval_main",
    "pe-filter-crosscheck": "pe_safety_filter.crosscheck:main",
    "pe-policy-bench": "pe_training.policy_bench:main",
    "pe-train-bench": "pe_training.bench:main",
    "pe-barriernet-train": "pe_training.barriernet.cli:main",
    "pe-barriernet-bench": "pe_training.barriernet.bench:main",
    "pe-sim-bench": "pe_sim.bench:main",
    "pe-filter-bench": "pe_safety_filter.bench:main",
    "pe-launch": "pe_bringup.launcher:main",
    "pe-exploit": "pe_training.exploit:main",
    "pe-crossplay": "pe_training.crossplay:main",
    "pe-selfplay": "pe_training.selfplay:main",
    "pe-rqt": "pe_bringup.rqt_open:main",
    "pe-rqt-perspective": "pe_bringup.rqt_view:main",
}


def scenario_file(tmp: Path, name: str, **changes) -> str:
    """A copy of ``bench_1v1_flee`` with top-level ``changes`` (sections merged)."""
    data = yaml.safe_load((data_path("pe_sim", "config/scenarios") / "bench_1v1_flee.yaml").read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def garbage_onnx(tmp: Path) -> str:
    path = tmp / "garbage.onnx"
    path.write_bytes(bytes(range(256)) * 8)
    return str(path)


def foreign_onnx(tmp: Path) -> str:
    """A valid ONNX model without the pe metadata."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["obs"], ["action"])], "g",
                              [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, 2])])
    path = tmp / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(path))
    return str(path)


def finished_run(tmp: Path) -> str:
    """A run folder whose latest checkpoint is at total_steps (files are stand-ins)."""
    run = tmp / "runs" / "done"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "final.zip").write_bytes(b"")
    (run / "checkpoints" / "final.json").write_text(json.dumps({"num_timesteps": 10**9}))
    return str(run)


def barriernet_run(tmp: Path) -> str:
    run = tmp / "bn_run"
    run.mkdir()
    (run / "config.yaml").write_text("name: bn_run\nmethod: imitation\n")
    return str(run)


E = "--episodes"
# (script, argv (with placeholders of the ``inputs`` fixture), what the message must contain)
CASES = [
    # policies given as files
    ("pe-eval", [E, "1", "--pursuer", "{garbage}"], ["garbage.onnx", "not a valid ONNX model"]),
    ("pe-eval", [E, "1", "--pursuer", "{foreign}"], ["foreign.onnx", "not an exported pe policy"]),
    ("pe-eval", [E, "1", "--pursuer", "{tmp}/missing.onnx"], ["missing.onnx"]),
    ("pe-eval", [E, "1", "--pursuer", "chase"], ["unknown policy source 'chase'"]),
    ("pe-eval", [E, "1", "--pursuer", "scripted:pure_pursuitt"], ["did you mean 'pure_pursuit'"]),
    # arguments
    ("pe-eval", [E, "0"], ["--episodes", "must be >= 1"]),
    ("pe-eval", [E, "-5"], ["--episodes", "must be >= 1"]),
    ("pe-eval", ["--seed", "-1"], ["--seed", "must be in [0, 2**63)"]),
    ("pe-eval", ["--seed", str(SEED_LIMIT - 1), E, "2"], ["largest seed"]),
    ("pe-eval", [E, "1", "--filter", "pursuerz"], ["'pursuerz'", "did you mean 'pursuer'"]),
    ("pe-eval", [E, "1", "--robot", "pursuer"], ["NAME=SOURCE"]),
    ("pe-eval", [E, "1", "--out", "/proc/pe-eval-out"], ["/proc/pe-eval-out", "not writable"]),
    ("pe-eval", [E, "1", "--scenario", "bench_1v1_fle"], ["no scenario named 'bench_1v1_fle'"]),
    # impossible scenarios
    ("pe-eval", [E, "1", "--scenario", "{file_tiny_arena}"], ["robots[0].radius", "does not fit"]),
    ("pe-eval", [E, "1", "--scenario", "{file_covered_start}"], ["'start'", "covered by obstacles"]),
    ("pe-eval", [E, "1", "--scenario", "{file_huge_obstacles}"], ["obstacles", "does not fit"]),
    ("pe-eval", [E, "1", "--scenario", "{file_crowded}"], ["'obstacles'", "could be placed"]),
    ("pe-eval", [E, "1", "--scenario", "{file_far_start}"], ["start.separation", "exceeds"]),
    ("pe-eval", [E, "1", "--scenario", "{file_outside}"], ["obstacles.fixed[0]", "outside the arena"]),
    ("pe-eval", [E, "1", "--scenario", "{file_typo}"], ["capture_radus", "did you mean 'capture_radius'"]),
    ("pe-eval", [E, "1", "--scenario", "{file_fast}"], ["robots[0].v_max", "must be <= 50"]),
    ("pe-eval", [E, "1", "--scenario", "{file_nan}"], ["dt", "finite"]),
    # training configs
    ("pe-train", ["pursuer_seed_random", "--set", "ppo.activation=sigmoidx"],
     ["ppo.activation", "must be one of"]),
    ("pe-train", ["pursuer_seed_random", "--set", "ppo.learning_rate=-1", "--output-dir", "{tmp}/runs"],
     ["ppo.learning_rate", "must be > 0"]),
    ("pe-train", ["pursuer_seed_random", "--set", "ppo.learnin_rate=1e-4"],
     ["ppo.learnin_rate", "did you mean 'learning_rate'"]),
    ("pe-train", ["pursuer_seed_random", "--set", "ppo.n_epochs=0"], ["ppo.n_epochs", ">= 1"]),
    ("pe-train", ["no_such_config"], ["no training config named 'no_such_config'"]),
    ("pe-train", ["pursuer_seed_random", "--name", "done", "--output-dir", "{tmp}/runs", "--resume"],
     ["already trained", "finished"]),
    ("pe-barriernet-train", ["barriernet_imitation_bench", "--set", "imitation.epochs=-3"],
     ["imitation.epochs", ">= 1"]),
    ("pe-barriernet-train", ["barriernet_ppo_bench", "--output-dir", "{tmp}/runs"],
     ["ppo.warm_start", "ppo.warm_start=null"]),
    ("pe-export", ["{bn_run}"], ["BarrierNet run", "pe-barriernet-train"]),
    ("pe-export", ["{tmp}/no_run"], ["no checkpoint"]),
    # safety filter tools
    ("pe-filter-crosscheck", ["--n", "0"], ["--n", "must be >= 1"]),
    ("pe-filter-crosscheck", ["--seed", "-3"], ["--seed", "must be in [0, 2**63)"]),
    ("pe-train", ["pursuer_seed_random", "--seed", "-1"], ["seed", "must be >= 0"]),
    ("pe-filter-eval", [E, "0"], ["--episodes", "must be >= 1"]),
    ("pe-filter-eval", [E, "1", "--scenario", "{file_tiny_arena}"], ["does not fit"]),
    ("pe-filter-bench", ["--batch", "0"], ["--batch", "must be >= 1"]),
    ("pe-filter-eval", [E, "1", "--config", "{filter_typo}"], ["'lookahed': a typo of 'lookahead'"]),
    ("pe-eval", [E, "1", "--filter-config", "{filter_typo}"], ["filter_typo.yaml", "lookahed"]),
    # benchmarks and plots
    ("pe-policy-bench", ["{foreign}"], ["pe-train run folder or checkpoint"]),
    ("pe-train-bench", ["pursuer_seed_random", "--set", "ppo.gamma=2"], ["ppo.gamma", "<= 1"]),
    ("pe-barriernet-bench", ["--model", "{garbage}"], ["garbage.onnx", "not a valid ONNX model"]),
    ("pe-sim-bench", ["--repeats", "0"], ["--repeats", "must be >= 1"]),
    ("pe-sim-bench", ["--scenario", "{file_outside}"], ["outside the arena"]),
    ("pe-plot", ["{tmp}/missing.npz"], ["missing.npz"]),
    ("pe-plot", ["--scenario", "{file_typo}"], ["capture_radus"]),
    # exploitability, cross-play, self-play
    ("pe-exploit", ["chase"], ["unknown policy source 'chase'"]),
    ("pe-exploit", ["{garbage}"], ["garbage.onnx", "not a valid ONNX model"]),
    ("pe-exploit", ["{tmp}/missing.onnx"], ["missing.onnx"]),
    ("pe-exploit", ["scripted:flee", "--steps", "0"], ["--steps", ">= 1"]),
    ("pe-exploit", ["scripted:flee", "--seed", "100"], ["--seed", "[0, 100)"]),
    ("pe-exploit", ["scripted:flee", "--set", "ppo.n_epoch=3"], ["ppo.n_epoch", "did you mean 'n_epochs'"]),
    ("pe-exploit", ["pursuer_bench_flee_filter", "--role", "evader"], ["cannot play the evader"]),
    ("pe-crossplay", [E, "0"], ["--episodes", "must be >= 1"]),
    ("pe-crossplay", ["--evaders", "pursuer_bench_flee_filter", E, "1"], ["is a pursuer policy"]),
    ("pe-crossplay", ["--scenario", "bench_1v1_fle", E, "1"], ["no scenario named 'bench_1v1_fle'"]),
    ("pe-selfplay", ["selfplay_bench", "--set", "pool.weighting=easy"], ["pool.weighting", "must be one of"]),
    ("pe-selfplay", ["selfplay_bench", "--set", "generation=2"], ["did you mean 'generations'"]),
    ("pe-selfplay", ["selfplay_bench", "--fork", "runs/no_such_run"], ["--fork", "no finished generation"]),
    ("pe-selfplay", ["selfplay_bench", "--set", "pool.frozen_evaders=[pursuer_bench_flee_filter]"],
     ["pool.frozen_evaders", "pursuer policy"]),
    ("pe-selfplay", ["selfplay_bench", "--set", "pursuer=evader_bench_pn_filter"], ["trains the evader"]),
    ("pe-selfplay", ["selfplay_bench", "--set", "pursuer_set=[scenario=pursuit_2v1]"],
     ["different scenarios"]),
    ("pe-selfplay", ["selfplay_barriernet", "--set", "pursuer_set=[scenario=envelope_full_1v1]", "--set",
                     "evader_set=[scenario=envelope_full_1v1]"], ["BarrierNet training runs one scenario"]),
    ("pe-train", ["pursuer_envelope_flee_filter", "--set", "num_envs=4", "--set", "ppo.batch_size=512",
                  "--output-dir", "{tmp}/runs"], ["9 variants need num_envs >= 9"]),
    ("pe-barriernet-train", ["barriernet_ppo_bench_long", "--set", "scenario=envelope_full_1v1",
                             "--output-dir", "{tmp}/runs"], ["BarrierNet training runs one scenario"]),
    ("pe-plot", ["{tmp}/missing.jsonl", "--seed", "-3"], ["--seed", "must be in [0, 2**63)"]),
    ("pe-play", ["{tmp}/missing.jsonl"], ["missing.jsonl"]),
    ("pe-play", ["--scenario", "bench_1v1_flee", "-o", "{tmp}/ep.avi"], ["ep.avi", ".gif or an .mp4"]),
    ("pe-record", ["--scenario", "{file_typo}"], ["capture_radus"]),
    ("pe-live", ["--scenario", "bench_1v1_flee", "--speed", "0"], ["--speed must be positive"]),
    ("pe-live", ["--graph"], ["--graph needs --scenario"]),
    ("pe-report", ["--episodes", "0"], ["--episodes", "must be >= 1"]),
    ("pe-report", ["--update-readme", "{tmp}/missing.md"], ["missing.md: no such file"]),
    # the ROS graph: seeds refused before any node starts
    ("pe-launch", ["eval", "--seed", "-1"], ["--seed", "must be in [0, 2**63)"]),
    ("pe-launch", ["eval", "--seed", str(SEED_LIMIT - 1), E, "2"], ["largest seed"]),
    # the rqt view
    ("pe-rqt-perspective", ["--scenario", "bench_1v1_fle", "--out", "{tmp}/v.perspective"],
     ["no scenario named 'bench_1v1_fle'"]),
    ("pe-rqt", ["--perspective-file", "{tmp}/missing.perspective"], ["missing.perspective"]),
    ("pe-rqt", ["--scenario", "bench_1v1_fle"], ["no scenario named 'bench_1v1_fle'"]),
]

SCENARIOS = {
    "tiny_arena": {"arena": {"width": 0.2, "height": 0.2}, "robots": [
        {"name": "pursuer", "role": "pursuer", "radius": 0.15, "v_max": 1.0, "omega_max": 2.84},
        {"name": "evader", "role": "evader", "radius": 0.15, "v_max": 0.94, "omega_max": 2.84}]},
    "covered_start": {"obstacles": {"fixed": [{"x": 0.0, "y": 0.0, "radius": 8.0}], "count": 0},
                      "start": {"wall_margin": 5.0, "separation": [2.0, 10.0]}},
    "huge_obstacles": {"obstacles": {"count": [4, 4], "radius": [9.5, 9.8]}},
    "crowded": {"obstacles": {"count": [4, 4], "radius": [8.0, 9.0]}},
    "far_start": {"start": {"separation": [40.0, 50.0]}},
    "outside": {"obstacles": {"fixed": [{"x": 30.0, "y": 0.0, "radius": 1.0}]}},
    "typo": {"capture_radus": 0.5},
    "fast": {"robots": [
        {"name": "pursuer", "role": "pursuer", "v_max": 1000.0, "omega_max": 2.84},
        {"name": "evader", "role": "evader", "v_max": 0.94, "omega_max": 2.84}]},
    "nan": {"dt": float("nan")},
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    files = {"tmp": str(tmp), "garbage": garbage_onnx(tmp), "foreign": foreign_onnx(tmp),
             "bn_run": barriernet_run(tmp)}
    finished_run(tmp)
    text = (data_path("pe_safety_filter", "config/filter") / "vcp_cbf.yaml").read_text()
    files["filter_typo"] = str(tmp / "filter_typo.yaml")
    Path(files["filter_typo"]).write_text(text.replace("lookahead:", "lookahed:"))
    for name, changes in SCENARIOS.items():
        files[f"file_{name}"] = scenario_file(tmp, name, **changes)
    typo = yaml.safe_load(Path(files["file_typo"]).read_text())
    del typo["capture_radius"]
    Path(files["file_typo"]).write_text(yaml.safe_dump(typo))
    return files


def run_main(script: str, argv: list[str]) -> int:
    module, func = SCRIPTS[script].split(":")
    try:
        return getattr(importlib.import_module(module), func)(argv)
    except SystemExit as exc:  # argparse's own errors
        return exc.code


@pytest.mark.parametrize(("script", "argv", "expected"), CASES,
                         ids=[f"{c[0]} {' '.join(c[1])}"[:80] for c in CASES])
def test_bad_input_gives_one_clear_message(script, argv, expected, inputs, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # relative defaults (runs/, results/) stay in the test's folder
    argv = [a.format(**inputs) for a in argv]
    code = run_main(script, argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    message = [line for line in err.splitlines() if ": error: " in line]
    assert len(message) == 1 and message[0].startswith(script), err
    for text in expected:
        assert text in message[0], message[0]


def test_refused_training_leaves_no_run_folder(inputs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_main("pe-train", ["pursuer_seed_random", "--set", "ppo.learning_rate=-1"]) == 2
    assert not (tmp_path / "runs").exists()


def test_every_console_script_is_in_the_table():
    scripts = set()
    for setup in Path(__file__).parents[1].glob("src/*/setup.py"):
        for line in setup.read_text().splitlines():
            if " = pe_" in line and '"pe-' in line:
                scripts.add(line.split('"')[1].split(" = ")[0])
    lead = {"pe-ros-bench", "pe-monitor"}  # the ROS layer's benchmark and live monitor
    assert scripts - lead == set(SCRIPTS)
    assert set(SCRIPTS) == {c[0] for c in CASES}


def test_internal_bug_keeps_its_traceback():
    @console_main("pe-x")
    def broken(argv):
        return {}["missing"]

    with pytest.raises(KeyError):
        broken([])

    @console_main("pe-x")
    def user_mistake(argv):
        raise UserError("bad thing")

    assert user_mistake([]) == 2


@pytest.mark.parametrize(("script", "argv", "expected"), [
    ("pe-eval", ["--episodes", "1", "--pursuer", "{garbage}"], "not a valid ONNX model"),
    ("pe-train", ["pursuer_seed_random", "--set", "ppo.activation=sigmoidx"], "ppo.activation"),
    ("pe-filter-crosscheck", ["--n", "0"], "must be >= 1"),
])
def test_console_scripts_exit_2(script, argv, expected, inputs, tmp_path):
    exe = BIN / script
    if not exe.exists():
        exe = shutil.which(script)
    argv = [a.format(**inputs) for a in argv]
    proc = subprocess.run([str(exe), *argv], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert expected in proc.stderr
