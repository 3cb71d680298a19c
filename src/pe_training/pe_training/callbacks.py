"""SB3 callbacks of ``pe-train``: progress bar + progress log, periodic validation on
held-out seeds (keeps the best checkpoint), periodic checkpoints."""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from pe_training.run import Checkpoint, append_jsonl


class ProgressCallback(BaseCallback):
    """A tqdm bar with steps/s and the capture rate over the last ``window`` episodes;
    one ``progress.jsonl`` row and rollout scalars (TensorBoard) per rollout.

    Reads the VecEnv's end-of-episode infos: an episode was a capture when it ended
    without ``TimeLimit.truncated``; ``violation_steps``/``interventions`` (from
    :class:`~pe_sim.envs.vec_env.BatchVecEnv`) give the safety figures."""

    def __init__(self, total_steps: int, log_path: Path | None, window: int = 500,
                 show_bar: bool = True) -> None:
        super().__init__()
        self.total_steps = total_steps
        self.log_path = log_path
        self.show_bar = show_bar
        self.captures: deque[bool] = deque(maxlen=window)
        self.lengths: deque[int] = deque(maxlen=window)
        self.violations: deque[int] = deque(maxlen=window)
        self.interventions: deque[float] = deque(maxlen=window)
        self.bar: tqdm | None = None
        self._t_rollout = 0.0
        self._steps_rollout = 0
        self._t_start = 0.0
        self._steps_start = 0
        self._last_bar = 0
        self._t_collect = 0.0
        self._steps_collect = 0

    # -- SB3 hooks ------------------------------------------------------------------------
    def _on_training_start(self) -> None:
        self._t_start = self._t_rollout = time.perf_counter()
        self._steps_start = self._steps_rollout = self._last_bar = self.num_timesteps
        if self.show_bar:
            tty = sys.stderr.isatty()
            self.bar = tqdm(total=self.total_steps, initial=self.num_timesteps, unit="step",
                            unit_scale=True, dynamic_ncols=True, mininterval=0.5 if tty else 30.0,
                            smoothing=0.05, desc="pe-train")

    def _on_rollout_start(self) -> None:
        self._t_collect = time.perf_counter()
        self._steps_collect = self.num_timesteps

    def _on_step(self) -> bool:
        dones = self.locals["dones"]
        if dones.any():
            infos = self.locals["infos"]
            for i in np.flatnonzero(dones):
                info = infos[i]
                self.captures.append(not info.get("TimeLimit.truncated", False))
                self.lengths.append(int(info.get("episode", {}).get("l", 0)))
                self.violations.append(int(info.get("violation_steps", 0)))
                if "interventions" in info:
                    length = max(int(info.get("episode", {}).get("l", 1)), 1)
                    self.interventions.append(info["interventions"] / length)
        if self.bar is not None:
            self.bar.update(self.num_timesteps - self._last_bar)
            self._last_bar = self.num_timesteps
        return True

    def _on_rollout_end(self) -> None:
        t = time.perf_counter()
        steps = self.num_timesteps - self._steps_rollout
        # Rate over the last full iteration (previous update + this rollout).
        rate = steps / max(t - self._t_rollout, 1e-9)
        self._t_rollout, self._steps_rollout = t, self.num_timesteps
        # Rollout collection alone (policy inference + env steps), without the PPO update.
        collect_rate = (self.num_timesteps - self._steps_collect) / max(t - self._t_collect, 1e-9)
        stats = self.recent()
        self.logger.record("time/steps_per_s", rate)
        for key, value in stats.items():
            if value is not None:
                self.logger.record(f"rollout/{key}", value)
        if self.bar is not None:
            capture = stats["capture_rate"]
            self.bar.set_postfix_str(
                f"{rate:,.0f} steps/s, capture {'-' if capture is None else f'{100 * capture:.1f}%'}"
                f" (last {len(self.captures)} ep)", refresh=False)
        if self.log_path is not None:
            append_jsonl(self.log_path, {
                "num_timesteps": self.num_timesteps, "wall_s": t - self._t_start,
                "steps_per_s": rate, "rollout_steps_per_s": collect_rate, **stats})

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def recent(self) -> dict[str, float | None]:
        """Capture rate, mean length, violation and intervention rates over the window."""
        n = len(self.captures)
        steps = sum(self.lengths)
        return {
            "capture_rate": float(np.mean(self.captures)) if n else None,
            "episode_length": steps / n if n else None,
            "violation_step_rate": sum(self.violations) / steps if steps else None,
            "intervention_rate": float(np.mean(self.interventions)) if self.interventions else None,
            "episodes_in_window": float(n),
        }


class ValidationCallback(BaseCallback):
    """Every ``every_steps``: ``evaluate()`` (returns a metrics summary, see
    :func:`pe_sim.metrics.summarize`), log it, keep the best checkpoint by ``score``."""

    def __init__(
        self,
        every_steps: int,
        evaluate: Callable[[], dict[str, Any]],
        score: Callable[[dict[str, Any]], float],
        best: Checkpoint,
        log_path: Path,
        state: Callable[[], dict[str, Any]],
        role: str,
    ) -> None:
        super().__init__()
        self.every_steps = every_steps
        self.evaluate = evaluate
        self.score = score
        self.best_checkpoint = best
        self.log_path = log_path
        self.state = state
        self.role = role
        self.best_score = -np.inf
        self.next_eval = every_steps
        self.history: list[dict[str, Any]] = []

    def _on_training_start(self) -> None:
        previous = self.best_checkpoint.state()
        if "score" in previous:
            self.best_score = float(previous["score"])
        self.next_eval = (self.num_timesteps // self.every_steps + 1) * self.every_steps

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            self.next_eval += self.every_steps
            self.run()
        return True

    def run(self) -> dict[str, Any]:
        t = time.perf_counter()
        summary = self.evaluate()
        wall = time.perf_counter() - t
        score = self.score(summary)
        role = summary["roles"].get(self.role, {})
        row = {
            "num_timesteps": self.num_timesteps, "score": score, "wall_s": wall,
            "capture_rate": summary["capture_rate"],
            "capture_time_mean_s": summary["capture_time_mean_s"],
            "violation_step_rate": role.get("violation_step_rate"),
            "intervention_rate": role.get("intervention_rate"),
        }
        for key in ("capture_rate", "capture_time_mean_s", "violation_step_rate", "intervention_rate"):
            value = row[key]
            if value is not None and np.isfinite(value):
                self.logger.record(f"eval/{key}", value)
        improved = score > self.best_score
        if improved:
            self.best_score = score
            self.best_checkpoint.save(self.model, self.model.get_vec_normalize_env(),
                                      {**self.state(), "score": score, "validation": row})
        row["best"] = improved
        self.history.append(row)
        append_jsonl(self.log_path, row)
        return row


class CheckpointEvery(BaseCallback):
    """Save a checkpoint (model, VecNormalize statistics, resume state) every ``every_steps``."""

    def __init__(self, every_steps: int, folder: Path, state: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self.every_steps = every_steps
        self.folder = folder
        self.state = state
        self.next_save = every_steps

    def _on_training_start(self) -> None:
        self.next_save = (self.num_timesteps // self.every_steps + 1) * self.every_steps

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_save:
            self.next_save += self.every_steps
            Checkpoint(self.folder / f"step_{self.num_timesteps:010d}.zip").save(
                self.model, self.model.get_vec_normalize_env(), self.state())
        return True


__all__ = ["CheckpointEvery", "ProgressCallback", "ValidationCallback"]
