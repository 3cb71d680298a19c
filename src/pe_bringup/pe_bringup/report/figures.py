"""The report's plots as PNG bytes (matplotlib, Agg): capture over time, distributions
of per-episode intervention rate and minimum clearance, the capture heat map over
methods x (scenario, opponent), and trajectory thumbnails of replayed episodes with
the filter's corrections marked."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pe_sim.episode_log import EpisodeLog


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    _pyplot().close(fig)
    return buffer.getvalue()


def capture_over_time(rows: Sequence[dict[str, Any]], title: str) -> bytes:
    """Fraction of episodes captured by time t (s), one curve per method."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.0), dpi=90)
    for row in rows:
        times = np.sort(np.asarray(row["capture_times_s"], dtype=float))
        end = row["max_time_s"] if math.isfinite(row["max_time_s"]) else (times[-1] if times.size else 1.0)
        t = np.concatenate([[0.0], times, [end]])
        counts = np.concatenate([[0.0], np.arange(1, times.size + 1), [times.size]])
        fraction = counts / max(1, row["episodes"])
        ax.step(t, 100.0 * fraction, where="post", label=row["method_label"], lw=1.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("episodes captured (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, lw=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return png_bytes(fig)


def distribution(rows: Sequence[dict[str, Any]], role: str, metric: str, ylabel: str,
                 title: str, scale: float = 1.0) -> bytes | None:
    """Box plots of a per-episode metric of ``role`` (``intervention_rate`` or
    ``min_clearance_m``), one box per method that has it; None if none has."""
    data, labels = [], []
    for row in rows:
        role_data = row["roles"].get(role)
        values = [v for v in (role_data or {}).get("per_episode", {}).get(metric, []) if v is not None]
        if values:
            data.append(scale * np.asarray(values, dtype=float))
            labels.append(row["method_label"])
    if not data:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(data) + 1.4), dpi=90)
    ax.boxplot(data, orientation="horizontal", whis=(5, 95), showmeans=True, flierprops={"ms": 2})
    ax.set_yticks(range(1, len(labels) + 1), labels, fontsize=7)
    ax.set_xlabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", lw=0.3)
    fig.tight_layout()
    return png_bytes(fig)


def capture_heat_map(rows: Sequence[dict[str, Any]]) -> bytes:
    """Capture rate (%) of every method (rows) in every (scenario, opponent) cell (columns)."""
    methods = list(dict.fromkeys(r["method_label"] for r in rows))
    cells = list(dict.fromkeys((r["scenario"], r["opponent"]) for r in rows))
    grid = np.full((len(methods), len(cells)), np.nan)
    for r in rows:
        grid[methods.index(r["method_label"]), cells.index((r["scenario"], r["opponent"]))] = \
            100.0 * r["capture_rate"]["value"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.0 * len(cells) + 3.5, 0.42 * len(methods) + 1.8), dpi=90)
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0.0, vmax=100.0, aspect="auto")
    for i in range(len(methods)):
        for j in range(len(cells)):
            if not math.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if grid[i, j] < 60 else "black")
    ax.set_xticks(range(len(cells)), [f"{s}\nvs {o}" for s, o in cells], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(methods)), methods, fontsize=7)
    fig.colorbar(image, ax=ax, label="capture (%)")
    ax.set_title("capture rate: methods x (scenario, opponent)", fontsize=10)
    fig.tight_layout()
    return png_bytes(fig)


def trajectory_thumbnail(log: EpisodeLog, title: str) -> bytes:
    """A small trajectory plot of a replayed episode, corrections marked."""
    from pe_sim.render import draw_episode

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4.6), dpi=80)
    draw_episode(ax, log, legend=False, title=title)
    ax.title.set_fontsize(7)
    ax.tick_params(labelsize=6)
    ax.xaxis.label.set_fontsize(7)
    ax.yaxis.label.set_fontsize(7)
    fig.tight_layout()
    return png_bytes(fig)
