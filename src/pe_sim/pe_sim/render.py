"""Trajectory plots of one episode (``pe-plot``): arena, obstacles, each robot's
path in its own colour, start and end markers, the capture point and the steps
with a safety violation. PNG via matplotlib's Agg backend (no display needed).

Usage::

    pe-plot episode.npz -o episode.png
    pe-plot --scenario bench_1v1_flee --seed 3 --pursuer pure_pursuit --evader flee -o ep.png

The input is an :mod:`pe_sim.episode_log` recording, or an episode simulated on
the fly with scripted robots (and optionally saved with ``--save-episode``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pe_sim.cli import console_main, positive_int, seed_int
from pe_sim.episode_log import EpisodeLog, simulate_episode

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


def plot_episode(record: EpisodeLog, path: str | Path, *, dpi: int = 110,
                 title: str | None = None) -> Path:
    """Draw ``record`` and save it as a PNG at ``path``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    width, height = record.arena
    hw, hh = 0.5 * width, 0.5 * height
    fig, ax = plt.subplots(figsize=(7.5, 7.5 * height / width + 0.6), dpi=dpi)
    ax.add_patch(Rectangle((-hw, -hh), width, height, fill=False, lw=2.0, ec="black"))
    for cx, cy, r in record.obstacles:
        ax.add_patch(Circle((cx, cy), r, fc="0.6", ec="0.25", lw=1.0, zorder=1))
    colours = robot_colours(record.robot_roles)
    arrow = 0.06 * max(width, height)
    for i, (name, role) in enumerate(zip(record.robot_names, record.robot_roles, strict=True)):
        c = colours[i]
        xy = record.pose[:, i, :2]
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
        bad = record.violation_steps(i)
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
    if record.captured:
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
    outcome = (f"captured at step {record.capture_step} ({record.capture_step * record.dt:.2f} s)"
               if record.captured else f"no capture in {record.steps} steps "
               f"({record.steps * record.dt:.1f} s)")
    n_viol = int(record.violation.any(axis=1).sum())
    ax.set_title(title or f"{record.scenario_name}  seed {record.seed}\n{outcome}; "
                 f"steps with a violation: {n_viol}", fontsize=11)
    pad = 0.03 * max(width, height)
    ax.set_xlim(-hw - pad, hw + pad)
    ax.set_ylim(-hh - pad, hh + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


@console_main("pe-plot")
def main(argv: list[str] | None = None) -> int:
    from pe_sim.scenario import load_scenario
    from pe_sim.scripted import KINDS

    parser = argparse.ArgumentParser(
        prog="pe-plot", description="Plot one pursuit-evasion episode as a PNG.")
    parser.add_argument("episode", nargs="?", help="an episode recording (.npz from pe_sim.episode_log)")
    parser.add_argument("--scenario", help="simulate an episode of this scenario (name or YAML path)")
    parser.add_argument("--seed", type=seed_int, default=0, help="episode seed (with --scenario)")
    parser.add_argument("--pursuer", default="pure_pursuit", choices=KINDS,
                        help="scripted policy of every pursuer (with --scenario)")
    parser.add_argument("--evader", default="flee", choices=KINDS,
                        help="scripted policy of every evader (with --scenario)")
    parser.add_argument("--save-episode", help="also save the simulated episode's recording here")
    parser.add_argument("-o", "--output", help="PNG path (default: next to the recording, or "
                        "<scenario>_seed<S>.png)")
    parser.add_argument("--dpi", type=positive_int, default=110)
    args = parser.parse_args(argv)
    if (args.episode is None) == (args.scenario is None):
        parser.error("give either an episode recording or --scenario")
    if args.episode:
        record = EpisodeLog.load(args.episode)
        out = args.output or str(Path(args.episode).with_suffix(".png"))
    else:
        scenario = load_scenario(args.scenario)
        record = simulate_episode(scenario, args.seed, args.pursuer, args.evader)
        if args.save_episode:
            record.save(args.save_episode)
        out = args.output or f"{scenario.name}_seed{args.seed}.png"
    path = plot_episode(record, out, dpi=args.dpi)
    outcome = f"capture at step {record.capture_step}" if record.captured else "no capture"
    print(f"{path}: {record.scenario_name} seed {record.seed}, {record.steps} steps, {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
