"""Animations of one episode (``pe-play``): GIF through Pillow, MP4 when ffmpeg exists.

Each frame shows the arena and obstacles, every robot as its body disc with a
heading line and its recent trail, the capture radius around each pursuer, the
robots whose command the safety filter corrected in that step (thick red ring,
when the recording has the filter's corrections), the time, and at the end the
outcome. World frame, metres; one frame every ``stride`` steps of ``dt`` seconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from pe_sim.episode_log import EpisodeLog
from pe_sim.render import outcome_text, robot_colours

CORRECTION_COLOUR = "#e41a1c"


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None


def frame_steps(record: EpisodeLog, max_frames: int = 150) -> np.ndarray:
    """Step indices (rows of ``record.pose``) drawn as frames: evenly spaced, at most
    ``max_frames``, always including the start and the last step."""
    stride = max(1, int(np.ceil(record.steps / max(1, max_frames - 1))))
    steps = np.arange(0, record.steps + 1, stride)
    return steps if steps[-1] == record.steps else np.append(steps, record.steps)


def animate_episode(record: EpisodeLog, path: str | Path, *, max_frames: int = 150, fps: int = 15,
                    dpi: int = 80, trail_s: float = 6.0) -> Path:
    """Write the animation of ``record`` to ``path`` (``.gif``, or ``.mp4`` with ffmpeg)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import animation
    from matplotlib import pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    path = Path(path)
    if path.suffix not in (".gif", ".mp4"):
        raise ValueError(f"{path}: the animation must be a .gif or an .mp4")
    if path.suffix == ".mp4" and not ffmpeg_available():
        raise RuntimeError("writing .mp4 needs ffmpeg on PATH; write a .gif instead")
    width, height = record.arena
    hw, hh = 0.5 * width, 0.5 * height
    fig, ax = plt.subplots(figsize=(6.0, 6.0 * height / width + 0.4), dpi=dpi)
    ax.add_patch(Rectangle((-hw, -hh), width, height, fill=False, lw=2.0, ec="black"))
    for cx, cy, r in record.obstacles:
        ax.add_patch(Circle((cx, cy), r, fc="0.6", ec="0.25", lw=1.0))
    pad = 0.03 * max(width, height)
    ax.set_xlim(-hw - pad, hw + pad)
    ax.set_ylim(-hh - pad, hh + pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    colours = robot_colours(record.robot_roles)
    names = [f"{name} ({record.policies.get(name, record.robot_roles[i])})"
             for i, name in enumerate(record.robot_names)]
    trails = [ax.plot([], [], "-", color=c, lw=1.5, alpha=0.8, label=names[i])[0]
              for i, c in enumerate(colours)]
    bodies = [ax.add_patch(Circle((0, 0), record.robot_radii[i], fc=c, ec=c, lw=1.0, zorder=5))
              for i, c in enumerate(colours)]
    headings = [ax.plot([], [], "-", color="black", lw=1.5, zorder=6)[0] for _ in colours]
    captures = [ax.add_patch(Circle((0, 0), record.capture_radius, fill=False, ls="--", ec=c, lw=0.8))
                for i, c in enumerate(colours) if record.robot_roles[i] == "pursuer"]
    pursuers = [i for i, role in enumerate(record.robot_roles) if role == "pursuer"]
    rings = [ax.add_patch(Circle((0, 0), 2.2 * record.robot_radii[i], fill=False, ec=CORRECTION_COLOUR,
                                 lw=2.5, zorder=7, visible=False)) for i in range(len(colours))]
    clock = ax.text(0.02, 0.98, "", transform=ax.transAxes, va="top", fontsize=10,
                    bbox={"fc": "white", "ec": "0.7", "alpha": 0.85})
    ax.plot([], [], "o", mfc="none", mec=CORRECTION_COLOUR, mew=2.0, label="filter corrected the command")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2, fontsize=7, frameon=False)
    ax.set_title(f"{record.scenario_name}  seed {record.seed}", fontsize=10)
    fig.tight_layout()
    trail_steps = max(1, round(trail_s / record.dt))
    steps = frame_steps(record, max_frames)
    arrow = 2.5 * max(record.robot_radii)

    def draw(k: int):
        for i in range(len(colours)):
            x, y, th = record.pose[k, i]
            xy = record.pose[max(0, k - trail_steps): k + 1, i, :2]
            trails[i].set_data(xy[:, 0], xy[:, 1])
            bodies[i].center = (x, y)
            headings[i].set_data([x, x + arrow * np.cos(th)], [y, y + arrow * np.sin(th)])
            corrected = record.intervened is not None and k > 0 and bool(record.intervened[k - 1, i])
            rings[i].center = (x, y)
            rings[i].set_visible(corrected)
        for circle, i in zip(captures, pursuers, strict=True):
            circle.center = tuple(record.pose[k, i, :2])
        text = f"t = {k * record.dt:5.2f} s   step {k}/{record.steps}"
        if k == record.steps:
            text += f"\n{outcome_text(record)}"
        clock.set_text(text)
        return [*trails, *bodies, *headings, *captures, *rings, clock]

    anim = animation.FuncAnimation(fig, draw, frames=[int(k) for k in steps], blit=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = animation.PillowWriter(fps=fps) if path.suffix == ".gif" else animation.FFMpegWriter(fps=fps)
    anim.save(str(path), writer=writer, dpi=dpi)
    plt.close(fig)
    return path
