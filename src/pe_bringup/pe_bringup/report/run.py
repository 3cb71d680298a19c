"""Play the matrix: every row in chunks of seeds, cached, with a progress bar and ETA.

Backends: ``batch`` plays a chunk with :func:`pe_policy.evaluate.evaluate` (the
headless batch simulator); ``ros`` runs ``pe-launch eval ... --out DIR`` in a
subprocess (the ROS 2 graph: a process per node over DDS, on a free domain) and
reads ``DIR/episodes.jsonl``. Both give equal records for equal seeds.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from pe_bringup.report.cache import ResultCache, chunk_key
from pe_bringup.report.matrix import Matrix, Row
from pe_policy.evaluate import evaluate
from pe_sim.metrics import EpisodeRecord
from pe_sim.scenario import Scenario

CHUNK_EPISODES = 250
BACKENDS = ("batch", "ros")


@dataclass
class RowResult:
    """A played row: its scenario and its records in seed order."""

    row: Row
    scenario: Scenario
    records: list[EpisodeRecord]
    cached_chunks: int
    played_chunks: int
    play_time_s: float | None = None     # wall time of playing every chunk (None: not recorded)


def seed_chunks(row: Row, size: int | None = None) -> Iterator[tuple[int, int]]:
    """(first seed, episodes) of each chunk of ``row`` (``size``: :data:`CHUNK_EPISODES`)."""
    size = size or CHUNK_EPISODES
    for start in range(0, row.episodes, size):
        yield row.seed + start, min(size, row.episodes - start)


def run_matrix(matrix: Matrix, cache: ResultCache, *, backend: str = "batch",
               filter_config: str = "vcp_cbf", num_envs: int = 256, progress: bool = True,
               domain_id: int | None = None) -> list[RowResult]:
    """Play every row of ``matrix`` (cached chunks are loaded, not played). ``domain_id``:
    the DDS domain of the ``ros`` backend (default: pe-launch picks a free one)."""
    from tqdm import tqdm

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    total = sum(row.episodes for row in matrix.rows)
    bar = tqdm(total=total, unit="ep", disable=not progress, file=sys.stderr, dynamic_ncols=True,
               smoothing=0.05)
    scenarios: dict[str, Scenario] = {}
    results = []
    try:
        for row in matrix.rows:
            scenario = scenarios.setdefault(row.scenario.key, row.scenario.build())
            bar.set_description(row.label[:60])
            records: list[EpisodeRecord] = []
            cached = played = 0
            play_time: float | None = 0.0
            for seed, episodes in seed_chunks(row):
                key = chunk_key(row, scenario, seed, episodes, filter_config, backend)
                chunk = cache.load(key)
                if chunk is None:
                    started = time.perf_counter()
                    chunk = play_chunk(row, scenario, seed, episodes, backend=backend,
                                       filter_config=filter_config, num_envs=num_envs,
                                       on_record=lambda _: bar.update(1), domain_id=domain_id)
                    seconds = time.perf_counter() - started
                    cache.store(key, chunk, seconds)
                    played += 1
                else:
                    bar.update(len(chunk))
                    cached += 1
                    seconds = cache.play_time_s(key)
                play_time = None if play_time is None or seconds is None else play_time + seconds
                records += chunk
            results.append(RowResult(row, scenario, records, cached, played, play_time))
    finally:
        bar.close()
    return results


def play_chunk(row: Row, scenario: Scenario, seed: int, episodes: int, *, backend: str,
               filter_config: str, num_envs: int, on_record,
               domain_id: int | None = None) -> list[EpisodeRecord]:
    """Play one chunk of a row with ``backend``."""
    by_role = {"pursuer": row.method.source, "evader": row.opponent.source}
    if backend == "batch":
        return evaluate(scenario, by_role, episodes, seed=seed, filter=row.method.filter,
                        filter_config=filter_config, num_envs=num_envs, on_record=on_record).records
    records = play_chunk_ros(scenario, by_role, seed, episodes, row.method.filter, filter_config, domain_id)
    for record in records:
        on_record(record)
    return records


def play_chunk_ros(scenario: Scenario, by_role: dict[str, str], seed: int, episodes: int,
                   filter: str, filter_config: str, domain_id: int | None = None) -> list[EpisodeRecord]:
    """The chunk through the ROS 2 graph: ``pe-launch eval`` in a subprocess."""
    from pe_sim.metrics import read_jsonl

    launcher = Path(sys.executable).with_name("pe-launch")
    with tempfile.TemporaryDirectory(prefix="pe-report-ros-") as tmp:
        scenario_file = Path(tmp) / f"{scenario.name}.yaml"
        scenario_file.write_text(yaml.safe_dump(scenario.to_dict(), sort_keys=False))
        out = Path(tmp) / "out"
        command = [str(launcher), "eval", "--scenario", str(scenario_file), "--pursuer", by_role["pursuer"],
                   "--evader", by_role["evader"], "--episodes", str(episodes), "--seed", str(seed),
                   "--filter", filter, "--filter-config", filter_config, "--out", str(out), "--quiet"]
        if domain_id is not None:
            command += ["--domain-id", str(domain_id)]
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not (out / "episodes.jsonl").is_file():
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise RuntimeError(f"pe-launch eval failed (exit {done.returncode}, "
                               f"{time.monotonic() - started:.0f} s):\n{tail}")
        return read_jsonl(out / "episodes.jsonl")
