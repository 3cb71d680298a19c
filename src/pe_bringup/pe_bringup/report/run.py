"""Play the matrix: every row in chunks of seeds, cached, with a progress bar and ETA.

Chunks not in the cache are independent jobs (:mod:`pe_sim.jobs`): played here one after
the other, or as Ray tasks with ``pe-report --ray``; each is cached as it finishes.

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
from pe_sim.jobs import Job, run_jobs
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


@dataclass(frozen=True)
class Chunk:
    """Seeds ``seed .. seed + episodes - 1`` of the matrix's row ``row_index``, cached under ``key``."""

    row_index: int
    seed: int
    episodes: int
    key: str


def run_matrix(matrix: Matrix, cache: ResultCache, *, backend: str = "batch",
               filter_config: str = "vcp_cbf", num_envs: int = 256, progress: bool = True,
               domain_id: int | None = None, ray_address: str | None = None) -> list[RowResult]:
    """Play every row of ``matrix``: cached chunks are loaded, the others played as jobs
    (:mod:`pe_sim.jobs`: here one after the other, or as Ray tasks at ``ray_address``), each
    stored in the cache as it finishes. ``domain_id``: the DDS domain of the ``ros``
    backend (default: pe-launch picks a free one)."""
    from tqdm import tqdm

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    scenarios = {row.scenario.key: row.scenario.build() for row in matrix.rows}
    chunks = [Chunk(i, seed, episodes, chunk_key(row, scenarios[row.scenario.key], seed, episodes,
                                                 filter_config, backend))
              for i, row in enumerate(matrix.rows) for seed, episodes in seed_chunks(row)]
    records = {c.key: cache.load(c.key) for c in chunks}
    missing = {c.key: c for c in chunks if records[c.key] is None}
    times = {c.key: cache.play_time_s(c.key) for c in chunks if c.key not in missing}
    bar = tqdm(total=sum(row.episodes for row in matrix.rows), unit="ep", disable=not progress,
               file=sys.stderr, dynamic_ncols=True, smoothing=0.05)
    bar.update(sum(len(r) for r in records.values() if r is not None))
    local = ray_address is None
    settings = {"backend": backend, "filter_config": filter_config, "num_envs": num_envs,
                "domain_id": domain_id, "on_record": (lambda _: bar.update(1)) if local else None}
    rows = matrix.rows
    jobs = [Job(name=c.key, function="pe_bringup.report.run:play_chunk",
                kwargs={"row": rows[c.row_index], "scenario": scenarios[rows[c.row_index].scenario.key],
                        "seed": c.seed, "episodes": c.episodes, **settings})
            for c in missing.values()]

    def store(job: Job, played: PlayedChunk) -> None:
        cache.store(job.name, played.records, played.seconds)
        records[job.name], times[job.name] = played.records, played.seconds
        if not local:
            bar.update(len(played.records))

    try:
        run_jobs(jobs, ray_address, on_result=store)
    finally:
        bar.close()
    return [row_result(row, scenarios[row.scenario.key], [c for c in chunks if c.row_index == i], records,
                       times, set(missing)) for i, row in enumerate(matrix.rows)]


def row_result(row: Row, scenario: Scenario, chunks: list[Chunk], records: dict[str, list[EpisodeRecord]],
               times: dict[str, float | None], played: set[str]) -> RowResult:
    """A row from its ``chunks`` (seed order): records, chunks cached and played, and the
    time playing them took (None when a chunk's time is unknown)."""
    seconds = [times.get(c.key) for c in chunks]
    n_played = sum(c.key in played for c in chunks)
    return RowResult(row, scenario, [r for c in chunks for r in records[c.key]],
                     cached_chunks=len(chunks) - n_played, played_chunks=n_played,
                     play_time_s=None if any(t is None for t in seconds) else float(sum(seconds)))


@dataclass
class PlayedChunk:
    """A chunk's records and the wall time (s) it took to play them."""

    records: list[EpisodeRecord]
    seconds: float


def play_chunk(row: Row, scenario: Scenario, seed: int, episodes: int, *, backend: str,
               filter_config: str, num_envs: int, on_record=None,
               domain_id: int | None = None) -> PlayedChunk:
    """Play one chunk of a row with ``backend`` (the job of a chunk)."""
    started = time.perf_counter()
    by_role = {"pursuer": row.method.source, "evader": row.opponent.source}
    if backend == "batch":
        records = evaluate(scenario, by_role, episodes, seed=seed, filter=row.method.filter,
                           filter_config=filter_config, num_envs=num_envs, on_record=on_record).records
    else:
        records = play_chunk_ros(scenario, by_role, seed, episodes, row.method.filter, filter_config,
                                 domain_id)
        for record in records if on_record is not None else ():
            on_record(record)
    return PlayedChunk(records, time.perf_counter() - started)


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
