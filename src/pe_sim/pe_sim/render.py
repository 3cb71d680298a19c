"""Trajectory plots of one episode: arena, obstacles, each robot's path in its own
colour, start and end markers, the capture point, the steps with a safety
violation and those where the safety filter corrected a command. PNG via
matplotlib's Agg backend (no display needed). The ``pe-plot`` command
(:mod:`pe_policy.viewer`) draws recordings, episode records and simulated episodes
with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pe_sim.episode_log import EpisodeLog

PURSUER_COLOURS = ("#d62728", "#ff7f0e", "#8c564b", "#e377c2")
EVADER_COLOURS = ("#1f77b4", "#2ca02c", "#17becf", "#9467bd")


def robot_colours(roles: list[str]) -> list[str]:
    """A colour per robot: reds/oranges for pursuers, blues/greens for evaders."""
    out, counts = [], {"pursuer": 0, "evader": 0}
    for role in roles:
        palette = PURSUER_COLOURS if role == "pursuer" else EVADER_COLOURS
        out.append(palette[counts[role] % len(palette)])
        counts[role] += 1
    return out


def draw_episode(ax, record: EpisodeLog, *, upto: int | None = None, legend: bool = True,
                 title: str | None = None) -> None:
    """Draw ``record`` on matplotlib axes ``ax`` (world frame, metres): arena, obstacles,
    each robot's path up to step ``upto`` (default: the whole episode), start markers,
    violations (x), the steps where the filter corrected a robot (filled circles, when
    the recording has them) and the capture point."""
    from matplotlib.patches import Circle, Rectangle

    width, height = record.arena
    hw, hh = 0.5 * width, 0.5 * height
    ax.add_patch(Rectangle((-hw, -hh), width, height, fill=False, lw=2.0, ec="black"))
    for cx, cy, r in record.obstacles:
        ax.add_patch(Circle((cx, cy), r, fc="0.6", ec="0.25", lw=1.0, zorder=1))
    colours = robot_colours(record.robot_roles)
    arrow = 0.06 * max(width, height)
    last = record.steps if upto is None else int(upto)
    for i, (name, role) in enumerate(zip(record.robot_names, record.robot_roles, strict=True)):
        c = colours[i]
        xy = record.pose[: last + 1, i, :2]
        policy = record.policies.get(name)
        label = f"{name} ({role}{', ' + policy if policy else ''})"
        ax.plot(xy[:, 0], xy[:, 1], "-", color=c, lw=1.6, label=label, zorder=3)
        x0, y0, th0 = record.pose[0, i]
        ax.plot(x0, y0, "o", ms=9, mfc="white", mec=c, mew=2.0, zorder=5)
        ax.annotate("", xy=(x0 + arrow * np.cos(th0), y0 + arrow * np.sin(th0)), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "->", "color": c, "lw": 1.8}, zorder=5)
        ax.plot(xy[-1, 0], xy[-1, 1], "s", ms=6, color=c, zorder=5)
        # Body outline at the end, so contact with walls/obstacles is visible.
        ax.add_patch(Circle(tuple(xy[-1]), record.robot_radii[i], fill=False, ec=c, lw=1.0, zorder=4))
        corrected = record.intervention_steps(i)
        corrected = corrected[corrected <= last]
        if corrected.size:
            ax.plot(xy[corrected, 0], xy[corrected, 1], "o", ms=4, mfc=c, mec="black", mew=0.6,
                    zorder=6, label=f"{name} filter correction ({corrected.size} steps)")
        bad = record.violation_steps(i)
        bad = bad[bad <= last]
        if bad.size:
            # Where the overlap happened (within the step, before any push-out) when recorded;
            # else the pose after the step.
            at = (record.contact_pose[bad - 1, i, :2] if record.contact_pose is not None
                  else xy[bad])
            ax.plot(at[:, 0], at[:, 1], "x", color="black", ms=6, mew=1.5, zorder=6,
                    label=f"{name} violation ({bad.size} steps)")
            for cx, cy in at:
                ax.add_patch(Circle((cx, cy), record.robot_radii[i], fill=False, ec="black",
                                    lw=0.6, ls=":", zorder=6))
    if record.captured and last >= record.capture_step:
        k = record.capture_step
        pursuers = [i for i, r in enumerate(record.robot_roles) if r == "pursuer"]
        evaders = [i for i, r in enumerate(record.robot_roles) if r == "evader"]
        pairs = [(np.hypot(*(record.pose[k, p, :2] - record.pose[k, e, :2])), p, e)
                 for p in pursuers for e in evaders]
        _, _, e = min(pairs)
        ex, ey = record.pose[k, e, :2]
        ax.plot(ex, ey, "*", ms=20, mfc="gold", mec="black", zorder=7,
                label=f"capture at {k * record.dt:.2f} s")
        ax.add_patch(Circle((ex, ey), record.capture_radius, fill=False, ls="--", ec="black",
                            lw=1.0, zorder=6))
    ax.set_title(title if title is not None else default_title(record), fontsize=11)
    pad = 0.03 * max(width, height)
    ax.set_xlim(-hw - pad, hw + pad)
    ax.set_ylim(-hh - pad, hh + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(True, lw=0.3, alpha=0.5)
    if legend:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=8, frameon=False)


def outcome_text(record: EpisodeLog) -> str:
    """How the episode ended, e.g. ``captured at step 412 (20.60 s)``."""
    if record.captured:
        return f"captured at step {record.capture_step} ({record.capture_step * record.dt:.2f} s)"
    return f"no capture in {record.steps} steps ({record.steps * record.dt:.1f} s)"


def default_title(record: EpisodeLog) -> str:
    n_viol = int(record.violation.any(axis=1).sum())
    text = f"{record.scenario_name}  seed {record.seed}\n{outcome_text(record)}; " \
           f"steps with a violation: {n_viol}"
    if record.intervened is not None:
        text += f"; filter corrections: {int(record.intervened.sum())}"
    return text


def plot_episode(record: EpisodeLog, path: str | Path, *, dpi: int = 110,
                 title: str | None = None, figsize: float = 7.5, legend: bool = True) -> Path:
    """Draw ``record`` and save it as a PNG at ``path``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    width, height = record.arena
    fig, ax = plt.subplots(figsize=(figsize, figsize * height / width + (0.6 if legend else 0.0)), dpi=dpi)
    draw_episode(ax, record, title=title, legend=legend)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
