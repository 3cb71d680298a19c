"""``pe-train <config> --seeds 1-5``: one training run per seed, as independent jobs (here
one after the other, or on a Ray cluster with ``--ray``), and the spread of their final
evaluation over seeds.

Seed ``s`` trains ``<name>-seed<s>`` in ``<output_dir>/<name>-seed<s>/`` exactly as
``pe-train <config> --seed s --name <name>-seed<s>`` would: a seed's run is deterministic,
wherever it runs. A job whose worker dies is run again and continues from the run's
latest checkpoint (its episodes after the checkpoint then differ from an uninterrupted
run's: the simulator's mid-episode state is not checkpointed); a finished run's model
card is reused. The spread is written to ``<output_dir>/<name>-seeds/sweep.json``:
per reference opponent of the final evaluation, each seed's win rate and their mean with
a 95 % Student-t interval over seeds.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from pe_sim.cli import UserError
from pe_sim.config_schema import from_data
from pe_sim.jobs import Job, run_jobs
from pe_training.config import TrainConfig
from pe_training.run import now


def seed_config(cfg: TrainConfig, seed: int) -> TrainConfig:
    """``cfg`` for training seed ``seed``: its own seed and run name."""
    return dataclasses.replace(cfg, seed=seed, name=f"{cfg.name}-seed{seed}")


def train_seed(config: dict[str, Any], command: str, ship: str | None, final_eval: bool) -> dict[str, Any]:
    """The job of one seed: train (or continue, or reuse) the run ``config`` describes; a
    short summary of its model card."""
    from pe_training.train import train_or_resume  # here: pe_training.train imports this module

    cfg = from_data(TrainConfig, config, "<sweep job>").validate("<sweep job>")
    return card_summary(train_or_resume(cfg, command=command, ship=ship, final_eval=final_eval), cfg)


def card_summary(card: dict[str, Any], cfg: TrainConfig) -> dict[str, Any]:
    """What the sweep keeps of a run: seed, folder, policy, timing, final-evaluation rates."""
    win = "capture_rate"
    rates = {}
    for row in (card.get("final_eval") or {}).get("results", []):
        rate = row["summary"][win]
        rates[row["label"]] = rate if card["role"] == "pursuer" else 1.0 - rate
    return {"seed": cfg.seed, "name": cfg.name, "run_dir": str(cfg.run_dir), "role": card["role"],
            "steps": card["steps"], "wall_time_s": card["wall_time_s"],
            "policy": str(cfg.run_dir / f"{cfg.name}.onnx"), "win_rates": rates,
            "git_revision": card.get("git_revision")}


def mean_interval(values: list[float], bounds: tuple[float, float] | None = None) -> dict[str, float]:
    """Mean of ``values`` with its 95 % Student-t interval (the mean itself for one value),
    clipped to ``bounds`` (e.g. (0, 1) for rates)."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"mean": mean, "low": low, "high": high, "std": float(x.std(ddof=1)) if len(x) > 1 else 0.0}


def spread(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Per evaluated policy label (the learner is ``learner``): each seed's win rate and
    their mean with a 95 % interval over seeds."""
    out: dict[str, Any] = {}
    for s in summaries:
        for label, rate in s["win_rates"].items():
            key = "learner" if label == s["name"] else label
            out.setdefault(key, {"seeds": [], "win_rates": []})
            out[key]["seeds"].append(s["seed"])
            out[key]["win_rates"].append(rate)
    for entry in out.values():
        entry.update(mean_interval(entry["win_rates"], bounds=(0.0, 1.0)))
    return out


def prepare(cfg: TrainConfig, seeds: list[int], *, overwrite: bool, resume: bool) -> list[TrainConfig]:
    """One config per seed; existing run folders are refused, discarded (``overwrite``) or
    continued (``resume``)."""
    configs = [seed_config(cfg, s) for s in seeds]
    existing = [c.run_dir for c in configs if c.run_dir.exists() and any(c.run_dir.iterdir())]
    if existing and overwrite:
        for folder in existing:
            shutil.rmtree(folder)
    elif existing and not resume:
        raise UserError(f"{existing[0]} exists: pass --resume to continue the sweep or --overwrite "
                        "to start over")
    return configs


def sweep(cfg: TrainConfig, seeds: list[int], *, command: str, ray_address: str | None = None,
          ship: str | None = None, final_eval: bool = True, overwrite: bool = False,
          resume: bool = False) -> dict[str, Any]:
    """Train every seed (see the module docstring); the sweep summary, also written to
    ``<output_dir>/<name>-seeds/sweep.json``."""
    configs = prepare(cfg, seeds, overwrite=overwrite, resume=resume)
    jobs = [Job(name=c.name, function="pe_training.sweep:train_seed", cpus=c.torch_threads,
                kwargs={"config": c.to_dict(), "command": command, "ship": ship, "final_eval": final_eval})
            for c in configs]

    def show(job: Job, summary: dict[str, Any]) -> None:
        rates = ", ".join(f"{k} {100 * v:.1f} %" for k, v in summary["win_rates"].items())
        print(f"seed {summary['seed']}: {summary['steps']:,} steps in {summary['wall_time_s'] / 60:.1f} min"
              + (f"; win rate {rates}" if rates else ""), file=sys.stderr)

    started = now()
    summaries = run_jobs(jobs, ray_address, on_result=show)
    result = {"name": cfg.name, "command": command, "seeds": seeds, "ray": ray_address,
              "started": started, "finished": now(), "runs": summaries, "spread": spread(summaries)}
    folder = Path(cfg.output_dir) / f"{cfg.name}-seeds"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    for label, entry in result["spread"].items():
        print(f"{label}: win rate {100 * entry['mean']:.1f} % [{100 * entry['low']:.1f}, "
              f"{100 * entry['high']:.1f}] (95 % over {len(entry['seeds'])} seeds)", file=sys.stderr)
    print(f"written: {folder / 'sweep.json'}", file=sys.stderr)
    return result
