"""A training run's folder, its checkpoints and its provenance.

Layout of ``runs/<name>/`` (``runs/`` is gitignored)::

    config.yaml              the resolved training config
    run.json                 provenance: command, config hash, git revision, versions, robot
    tb/                      TensorBoard logs (SB3 logger + our rollout/eval scalars)
    progress.jsonl           one line per rollout: steps, steps/s, recent capture rate ...
    eval.jsonl               one line per periodic validation
    checkpoints/step_<N>.zip + .vecnormalize.pkl + .json   periodic checkpoints
    checkpoints/best.*       best validation score;  checkpoints/final.*  end of training
    <name>.onnx + <name>.model_card.md/.json               the exported policy
    final_eval/<label>/      pe-eval output of the model card's figures
"""

from __future__ import annotations

import json
import pickle
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from pe_sim.config_schema import from_data
from pe_training.config import RunConfig, TrainConfig

CHECKPOINT_DIR = "checkpoints"
VECNORM_SUFFIX = ".vecnormalize.pkl"


def git_revision(start: Path | None = None) -> str:
    """The commit the working tree is at, read from ``.git`` files (no git process);
    "unknown" outside a checkout. Uncommitted changes are not detected."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        git = folder / ".git"
        if git.is_file():  # worktree / submodule: "gitdir: <path>"
            text = git.read_text().strip()
            if text.startswith("gitdir:"):
                git = (folder / text.split(":", 1)[1].strip()).resolve()
        if not git.is_dir():
            continue
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        ref_file = git / ref
        if ref_file.exists():
            return ref_file.read_text().strip()
        packed = git / "packed-refs"
        if packed.exists():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
        return f"unknown ({ref} has no commit)"
    return "unknown"


def versions() -> dict[str, str]:
    """Versions of the libraries a trained policy depends on."""
    import gymnasium
    import numpy
    import onnx
    import onnxruntime
    import stable_baselines3
    import torch

    return {"python": sys.version.split()[0], "numpy": numpy.__version__, "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__, "gymnasium": gymnasium.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def command_line(prog: str, argv: list[str]) -> str:
    """The command as a user would type it."""
    return " ".join(shlex.quote(a) for a in [prog, *argv])


@dataclass
class Checkpoint:
    """A saved model (``<stem>.zip``), its VecNormalize statistics and its state."""

    model: Path

    @property
    def vecnormalize(self) -> Path:
        return self.model.with_name(self.model.stem + VECNORM_SUFFIX)

    @property
    def state_path(self) -> Path:
        return self.model.with_suffix(".json")

    @property
    def run_dir(self) -> Path:
        return self.model.parent.parent

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text()) if self.state_path.exists() else {}

    def save(self, model: PPO, vec_normalize: VecNormalize | None, state: dict[str, Any]) -> None:
        self.model.parent.mkdir(parents=True, exist_ok=True)
        model.save(self.model)
        if vec_normalize is not None:
            vec_normalize.save(self.vecnormalize)
        self.state_path.write_text(json.dumps(state, indent=2, default=float) + "\n")

    def load(self, env: Any = None) -> tuple[PPO, VecNormalize | None]:
        """The model (on ``env`` if given) and the VecNormalize statistics (wrapping ``env``'s
        inner VecEnv when given, else a detached object for normalising observations)."""
        vec_normalize = None
        if self.vecnormalize.exists():
            if env is not None:
                vec_normalize = VecNormalize.load(str(self.vecnormalize), env)
            else:
                with self.vecnormalize.open("rb") as f:
                    vec_normalize = pickle.load(f)
        model = PPO.load(self.model, env=vec_normalize if env is not None and vec_normalize else env,
                         device="cpu")
        return model, vec_normalize

    @classmethod
    def find(cls, source: str | Path) -> Checkpoint:
        """A checkpoint from a ``.zip`` path, or a run folder's best (else final, else latest)."""
        source = Path(source)
        if source.suffix == ".zip":
            if not source.exists():
                raise FileNotFoundError(f"no checkpoint {source}")
            return cls(source)
        folder = source / CHECKPOINT_DIR
        for stem in ("best", "final"):
            if (folder / f"{stem}.zip").exists():
                return cls(folder / f"{stem}.zip")
        latest = latest_checkpoint(source)
        if latest is None:
            raise FileNotFoundError(f"no checkpoint in {folder}")
        return latest


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The checkpoint with the most steps in ``run_dir`` (periodic, final or best)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    best: tuple[int, Path] | None = None
    for path in folder.glob("*.zip"):
        steps = Checkpoint(path).state().get("num_timesteps", -1)
        if best is None or steps > best[0]:
            best = (steps, path)
    return Checkpoint(best[1]) if best else None


def finished_result(path: Path, config_hash: str) -> dict[str, Any] | None:
    """The JSON a finished run wrote at ``path`` (model card, self-play summary) if it was
    made with the config hashing to ``config_hash``; else None (not finished, or another config)."""
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    return result if result.get("config_hash") == config_hash else None


def save_config(cfg: RunConfig, run_dir: Path, program: str = "pe-train") -> None:
    """The resolved config as ``<run_dir>/config.yaml`` (folders created)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(
        f"# resolved {program} config (hash {cfg.config_hash()})\n"
        + yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def load_run_config(run_dir: Path) -> TrainConfig:
    path = Path(run_dir) / "config.yaml"
    return from_data(TrainConfig, yaml.safe_load(path.read_text()), str(path)).validate(str(path))


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row, default=float) + "\n")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


__all__ = ["Checkpoint", "append_jsonl", "command_line", "git_revision", "latest_checkpoint",
           "load_run_config", "save_config", "versions"]
