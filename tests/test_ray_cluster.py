"""A real two-node Ray cluster on this machine (``ray start --head`` and a second ``ray
start --address``, one CPU each, token authentication with a token of the test's own):
a seed sweep and a small report run through it while the second node is killed in the
middle of a training task; both must finish, complete, and equal the same commands run
without Ray. Everything the test starts it stops (each node is its own process session).

Needs the optional Ray extra (``make ray``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the optional Ray extra (make ray)")

BIN = Path(sys.executable).parent
SWEEP = ["pursuer_bench_flee", "--smoke", "--seeds", "1-2", "--set", "total_steps=49152",
         # no mid-run checkpoint: a retried seed starts over, so its result must equal the local one
         "--set", "eval.every_steps=100000000", "--set", "checkpoint_every_steps=100000000",
         "--set", "final_eval.episodes=16", "--no-progress"]
REPORT = ["--matrix", "small", "--episodes", "12", "--no-thumbnails", "--no-progress"]


@dataclass
class Cluster:
    address: str
    env: dict[str, str]
    sessions: dict[str, int]     # node -> session id of its processes

    def kill(self, node: str) -> None:
        kill_session(self.sessions[node])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sid: int) -> list[int]:
    """Processes of session ``sid`` (``/proc/<pid>/stat``: the 6th field)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def kill_session(sid: int) -> None:
    for _ in range(50):
        pids = session_pids(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"processes of session {sid} survive SIGKILL: {session_pids(sid)}")


def start_node(args: list[str], env: dict[str, str]) -> int:
    """``ray start`` in a new session; the session id of the node's processes."""
    proc = subprocess.Popen([str(BIN / "ray"), "start", *args, "--node-ip-address=127.0.0.1", "--num-cpus=1",
                             "--disable-usage-stats"], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=180)
    if proc.returncode != 0:
        kill_session(proc.pid)
        raise AssertionError(f"ray start {args[0]} failed:\n{out[-3000:]}")
    return proc.pid


def alive_nodes(address: str, env: dict[str, str]) -> int:
    code = (f"import ray; ray.init(address='{address}', log_to_driver=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


@pytest.fixture(scope="module")
def ray_cluster():
    port = free_port()
    temp = Path(tempfile.mkdtemp(prefix="pe-ray-"))   # short: Ray's socket paths live under it
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "RAY_worker_niceness": "0",   # compete with the machine's other jobs as equals
           "RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "4",
           "RAY_health_check_timeout_ms": "500", "RAY_ADDRESS": ""}
    sessions: dict[str, int] = {}
    try:
        sessions["head"] = start_node(["--head", f"--port={port}", "--include-dashboard=false",
                                       f"--temp-dir={temp}"], env)
        address = f"127.0.0.1:{port}"
        sessions["worker"] = start_node([f"--address={address}"], env)
        assert alive_nodes(address, env) == 2   # our two nodes, nobody else's
        yield Cluster(address, env, sessions)
    finally:
        for sid in sessions.values():
            kill_session(sid)
        shutil.rmtree(temp, ignore_errors=True)


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command}:\n{done.stderr[-3000:]}"
    return done


def training(runs: Path, seed: int) -> bool:
    """Seed ``seed``'s PPO is between its first rollout and its end."""
    folder = runs / f"pursuer_bench_flee-smoke-seed{seed}"
    return (folder / "progress.jsonl").is_file() and not (folder / "model_card.json").is_file()


def test_exploit_and_selfplay_through_the_cluster(ray_cluster, tmp_path):
    """Best responses of two seeds and a self-play run as tasks: the same files as here."""
    exploit = ["pursuer_bench_flee_filter", "--smoke", "--steps", "2048", "--episodes", "16",
               "--seed", "1", "2", "--cache", "exploit", "--no-progress"]
    selfplay = ["selfplay_bench", "--smoke", "--set", "generations=1", "--output-dir", "runs", "--quiet"]
    local_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    for where, extra, env in (("ray", ["--ray", ray_cluster.address], ray_cluster.env),
                              ("local", [], local_env)):
        (tmp_path / where).mkdir()
        run([str(BIN / "pe-exploit"), *exploit, *extra], tmp_path / where, env)
        run([str(BIN / "pe-selfplay"), *selfplay, *extra], tmp_path / where, env)
    reports = {where: sorted((tmp_path / where / "exploit").glob("*/*/exploit.json"))
               for where in ("ray", "local")}
    assert len(reports["ray"]) == 2
    for a, b in zip(reports["ray"], reports["local"], strict=True):
        assert a.relative_to(tmp_path / "ray") == b.relative_to(tmp_path / "local")
        assert json.loads(a.read_text())["rows"] == json.loads(b.read_text())["rows"]
        onnx = "best_response.onnx"
        assert (a.parent / onnx).read_bytes() == (b.parent / onnx).read_bytes()
    for role in ("pursuer", "evader"):
        name = f"runs/selfplay_bench-smoke/selfplay_bench-smoke_{role}.onnx"
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


def test_sweep_and_report_survive_a_dead_node(ray_cluster, tmp_path):
    ray_dir, local_dir = tmp_path / "ray", tmp_path / "local"
    ray_dir.mkdir()
    local_dir.mkdir()
    sweep = subprocess.Popen([str(BIN / "pe-train"), *SWEEP, "--output-dir", "runs", "--ray",
                              ray_cluster.address], cwd=ray_dir, env=ray_cluster.env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not (training(ray_dir / "runs", 1) and training(ray_dir / "runs", 2)):
        assert sweep.poll() is None and time.monotonic() < deadline, "both seeds never ran at once"
        time.sleep(0.2)
    # One CPU per node and both seeds training: one of them is on the worker node.
    report = subprocess.Popen([str(BIN / "pe-report"), *REPORT, "--out", "report", "--cache", "cache",
                               "--ray", ray_cluster.address], cwd=ray_dir, env=ray_cluster.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ray_cluster.kill("worker")
    sweep_out, _ = sweep.communicate(timeout=900)
    report_out, _ = report.communicate(timeout=900)
    assert sweep.returncode == 0, sweep_out[-3000:]
    assert report.returncode == 0, report_out[-3000:]
    assert alive_nodes(ray_cluster.address, ray_cluster.env) == 1

    # The seed that was on the dead node trained twice (SB3 numbers each attempt's TensorBoard run).
    attempts = [len(list((ray_dir / "runs" / f"pursuer_bench_flee-smoke-seed{s}" / "tb").glob("ppo_*")))
                for s in (1, 2)]
    assert sorted(attempts) == [1, 2], attempts

    local_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    run([str(BIN / "pe-train"), *SWEEP, "--output-dir", "runs"], local_dir, local_env)
    run([str(BIN / "pe-report"), *REPORT, "--out", "report", "--cache", "cache"], local_dir, local_env)

    for seed in (1, 2):
        name = f"pursuer_bench_flee-smoke-seed{seed}"
        ray_run, local_run = ray_dir / "runs" / name, local_dir / "runs" / name
        assert (ray_run / f"{name}.onnx").read_bytes() == (local_run / f"{name}.onnx").read_bytes()
        ray_card, local_card = (json.loads((d / "model_card.json").read_text()) for d in (ray_run, local_run))
        assert ray_card["steps"] == local_card["steps"] == 49152
        assert summaries(ray_card) == summaries(local_card)
    ray_sweep, local_sweep = (json.loads((d / "runs/pursuer_bench_flee-smoke-seeds/sweep.json").read_text())
                              for d in (ray_dir, local_dir))
    assert ray_sweep["spread"] == local_sweep["spread"]

    ray_chunks, local_chunks = (sorted((d / "cache").glob("*.jsonl")) for d in (ray_dir, local_dir))
    assert [p.name for p in ray_chunks] == [p.name for p in local_chunks] and ray_chunks
    for a, b in zip(ray_chunks, local_chunks, strict=True):
        assert a.read_text() == b.read_text()
    ray_rows, local_rows = ((d / "report" / "rows.csv").read_text() for d in (ray_dir, local_dir))
    assert ray_rows == local_rows


def summaries(card: dict) -> list[dict]:
    """The final evaluation's figures without its wall time."""
    rows = card["final_eval"]["results"]
    return [{k: v for k, v in row["summary"].items() if k != "wall_time_s"} for row in rows]
