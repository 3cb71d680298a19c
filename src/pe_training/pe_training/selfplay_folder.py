"""A self-play run's folder (``runs/<name>/``): how far it got, the checkpoints a resume
starts from, the log of the ``pe-selfplay`` calls that made it (``sessions.jsonl``), and
a copy of it under another name that goes on from where it stopped (``--fork``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pe_sim.cli import UserError
from pe_training.opponents import ROLES
from pe_training.run import CHECKPOINT_DIR, Checkpoint, append_jsonl

#: The run folder's log of the ``pe-selfplay`` calls that made it (one JSON line each).
SESSIONS = "sessions.jsonl"


def completed_generations(run_dir: Path) -> int:
    """Generations a run folder has finished (rows of ``selfplay.jsonl``)."""
    log = run_dir / "selfplay.jsonl"
    return len(log.read_text().splitlines()) if log.exists() else 0


def fork_run(source: Path, destination: Path) -> None:
    """Copy the finished generations of the run in ``source`` (logs, snapshots, checkpoints)
    to ``destination``, with the snapshot paths its logs hold rewritten, so that
    ``destination`` resumes where ``source`` stopped; its final policies and cards stay."""
    def skipped(folder: str, names: list[str]) -> list[str]:
        top = Path(folder) == source
        return [n for n in names if top and (n == "tb" or n == "crossplay.png" or n.endswith(".onnx")
                                              or ".model_card." in n)]

    shutil.copytree(source, destination, ignore=skipped)
    snapshot_dir = (source / "generations").resolve()

    def moved(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: moved(v) for k, v in value.items()}
        if isinstance(value, list):
            return [moved(v) for v in value]
        if isinstance(value, str) and value.endswith(".onnx") \
                and Path(value).resolve().parent == snapshot_dir:
            return str(destination / "generations" / Path(value).name)
        return value

    for log in ("matches.jsonl", "crossplay.jsonl"):
        path = destination / log
        if path.exists():
            rows = [moved(json.loads(line)) for line in path.read_text().splitlines()]
            path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def record_session(run_dir: Path, session: dict[str, Any]) -> list[dict[str, Any]]:
    """Append ``session`` (the command, start time and revision of one ``pe-selfplay`` call
    and its first generation) to the run's ``sessions.jsonl``; every session so far. A
    run made before sessions were recorded starts the list with its ``selfplay.json``."""
    log = run_dir / SESSIONS
    if not log.exists() and (run_dir / "selfplay.json").exists():
        earlier = json.loads((run_dir / "selfplay.json").read_text())
        append_jsonl(log, {"command": earlier["command"], "started": earlier["started"],
                           "git_revision": earlier["git_revision"], "first_generation": 1})
    append_jsonl(log, session)
    return [json.loads(line) for line in log.read_text().splitlines()]


def generations_wall_time(run_dir: Path) -> float:
    """Seconds the run's generations took (both learners' training and the cross-play),
    over every session."""
    rows = [json.loads(line) for line in (run_dir / "selfplay.jsonl").read_text().splitlines()]
    return sum(r["pursuer"]["wall_s"] + r["evader"]["wall_s"] + r["crossplay_wall_s"] for r in rows)


def resume_checkpoints(run_dir: Path, done: int) -> dict[str, Checkpoint]:
    """Both learners' checkpoints, which must be at generation ``done``."""
    out = {}
    for role in ROLES:
        ckpt = Checkpoint(run_dir / CHECKPOINT_DIR / f"{role}.zip")
        generation = ckpt.state().get("generation")
        if not ckpt.model.exists() or generation != done:
            raise UserError(f"{run_dir}: the {role} checkpoint is at generation {generation}, the log "
                            f"at {done}; start over with --overwrite")
        out[role] = ckpt
    return out


__all__ = ["SESSIONS", "completed_generations", "fork_run", "generations_wall_time", "record_session",
           "resume_checkpoints"]
