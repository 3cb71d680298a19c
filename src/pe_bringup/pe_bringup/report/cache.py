"""The report's result cache: episode records keyed by what determines them.

A chunk of a row (consecutive seeds) is stored as ``<key>.jsonl`` (one
:class:`~pe_sim.metrics.EpisodeRecord` per line) in the cache folder, where the key
hashes the pursuer and evader policy (file content for learned ones, the name for
scripted ones), the scenario's content, the seed range, the filter selection and the
filter config's content, and the backend. A new or retrained policy, an edited
scenario or filter config therefore reruns only the rows it touches; a chunk is
written atomically when it finishes, so a stopped run keeps every finished chunk.
Code changes of the simulator or the scripted robots are not part of the key:
delete the folder (or pass ``--fresh``) after such a change.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pe_bringup.report.matrix import Row
from pe_policy.policy import SCRIPTED_PREFIX, resolve_source
from pe_safety_filter.config import filter_config_path
from pe_sim.metrics import EpisodeRecord, read_jsonl
from pe_sim.scenario import Scenario

CACHE_FORMAT = "pe-report.cache/1"


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def source_identity(source: str) -> str:
    """What a policy source's behaviour depends on: its name (scripted) or file hash."""
    if source.startswith(SCRIPTED_PREFIX):
        return source
    return "sha256:" + file_sha256(resolve_source(source))


def scenario_identity(scenario: Scenario) -> str:
    """Hash of the scenario's content (every field that shapes an episode)."""
    return hashlib.sha256(json.dumps(scenario.to_dict(), sort_keys=True).encode()).hexdigest()


def chunk_key(row: Row, scenario: Scenario, seed: int, episodes: int, filter_config: str,
              backend: str) -> str:
    """The cache key of seeds ``seed .. seed + episodes - 1`` of ``row``."""
    filter_id = "none" if row.method.filter == "none" else file_sha256(filter_config_path(filter_config))
    parts = {
        "format": CACHE_FORMAT, "pursuer": source_identity(row.method.source),
        "evader": source_identity(row.opponent.source), "scenario": scenario_identity(scenario),
        "seed": seed, "episodes": episodes, "filter": row.method.filter, "filter_config": filter_id,
        "backend": backend,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


class ResultCache:
    """Episode records by chunk key, one JSON-lines file each, in ``folder``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.jsonl"

    def load(self, key: str) -> list[EpisodeRecord] | None:
        path = self.path(key)
        return read_jsonl(path) if path.is_file() else None

    def play_time_s(self, key: str) -> float | None:
        """Wall time (s) it took to play the chunk ``key``, if recorded."""
        meta = self.folder / f"{key}.meta.json"
        return float(json.loads(meta.read_text())["play_time_s"]) if meta.is_file() else None

    def store(self, key: str, records: list[EpisodeRecord], play_time_s: float | None = None) -> None:
        """Write ``records`` under ``key`` atomically (a partial file is never seen), and
        the wall time it took to play them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if play_time_s is not None:
            (self.folder / f"{key}.meta.json").write_text(json.dumps({"play_time_s": play_time_s}) + "\n")
        tmp = self.path(key).with_suffix(f".tmp{os.getpid()}")
        tmp.write_text("".join(r.to_json() + "\n" for r in records))
        os.replace(tmp, self.path(key))
