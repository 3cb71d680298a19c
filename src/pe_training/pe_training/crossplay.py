"""``pe-crossplay``: the capture matrix of every pursuer against every evader on the same
held-out episodes (every robot behind the safety filter), its Nash averaging
(:mod:`pe_training.nash`) as the rating, written as JSON and a heat-map PNG.

    pe-crossplay --scenario bench_1v1_flee                       # scripted + shipped policies
    pe-crossplay --pursuers scripted:proportional_navigation pursuer_bench_flee_filter \\
        --evaders scripted:flee runs/evader_bench_pn_filter/evader_bench_pn_filter.onnx \\
        --best-responses --episodes 1000
    pe-crossplay --episodes 20 --out /tmp/xp                     # a quick look

By default the players are the scripted references of each role plus every shipped policy
(``models/``) trained for the scenario; ``--best-responses`` adds the best responses cached
by ``pe-exploit`` for the scenario. Output: ``<out>/crossplay.json`` (the matrix with 95 %
Wilson intervals, Nash mixtures, ratings, worst cases, the command), ``<out>/crossplay.md``
(the table) and ``<out>/crossplay.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pe_sim.cli import console_main, positive_int
from pe_sim.evaluation import EVAL_SEED_BASE
from pe_sim.scenario import load_scenario
from pe_training.matchup import MatchResult, play
from pe_training.nash import NashAverage, nash_average
from pe_training.opponents import REFERENCE_OPPONENTS, identify
from pe_training.run import command_line, now

SCRIPTED_PURSUERS = REFERENCE_OPPONENTS["evader"]
SCRIPTED_EVADERS = REFERENCE_OPPONENTS["pursuer"]


@dataclass(frozen=True)
class CrossPlay:
    """The matrix (pursuers x evaders) of match results and its Nash averaging."""

    scenario: str
    pursuers: list[str]
    evaders: list[str]
    results: list[list[MatchResult]]
    nash: NashAverage

    @property
    def capture(self) -> np.ndarray:
        return np.array([[r.capture_rate for r in row] for row in self.results])

    def worst_case_own(self, role: str) -> list[float]:
        """Each player's worst win rate over the opponents that are not best responses plus
        the best responses trained against that player itself (the worst case of the
        robustness targets, docs/selfplay.md: a best response against another policy does
        not count)."""
        if role == "pursuer":
            players, others, win = self.pursuers, self.evaders, self.capture
        else:
            players, others, win = self.evaders, self.pursuers, 1.0 - self.capture.T
        targets = [best_response_target(other) for other in others]
        out = []
        for i, player in enumerate(players):
            own = (None, identity(player)) if any(targets) else (None,)
            mine = [j for j, target in enumerate(targets) if target in own]
            out.append(float(win[i, mine].min()))
        return out

    def to_dict(self) -> dict[str, Any]:
        n = self.nash
        return {
            "scenario": self.scenario, "pursuers": self.pursuers, "evaders": self.evaders,
            "capture": self.capture.tolist(),
            "capture_low": [[r.capture_low for r in row] for row in self.results],
            "capture_high": [[r.capture_high for r in row] for row in self.results],
            "violation_episodes": [[r.violation_episodes for r in row] for row in self.results],
            "episodes": self.results[0][0].episodes, "seed": self.results[0][0].seed,
            "filter": self.results[0][0].filter,
            "worst_case_capture": self.capture.min(axis=1).tolist(),
            "worst_case_escape": (1.0 - self.capture.max(axis=0)).tolist(),
            "worst_case_capture_own": self.worst_case_own("pursuer"),
            "worst_case_escape_own": self.worst_case_own("evader"),
            "nash": {"value": n.value, "pursuer_mixture": n.pursuer_mixture.tolist(),
                     "evader_mixture": n.evader_mixture.tolist(),
                     "pursuer_rating": n.pursuer_rating.tolist(), "evader_rating": n.evader_rating.tolist()},
        }


def crossplay(scenario: str, pursuers: Sequence[str], evaders: Sequence[str], episodes: int, *,
              seed: int = EVAL_SEED_BASE, filter: str = "all") -> CrossPlay:
    """Play every pursuer against every evader on the same seeds and rate them."""
    results = [[play(scenario, p, e, episodes, seed=seed, filter=filter) for e in evaders] for p in pursuers]
    matrix = np.array([[r.capture_rate for r in row] for row in results])
    return CrossPlay(results[0][0].scenario, list(pursuers), list(evaders), results, nash_average(matrix))


def best_response_target(source: str) -> str | None:
    """``<label>-<sha12>`` of the policy a cached best response was trained against (its
    cache folder, ``results/exploit/<label>-<sha12>/<key>/best_response.onnx``), else None."""
    path = Path(source)
    return path.parent.parent.name if path.name == "best_response.onnx" else None


def identity(source: str) -> str:
    """``<label>-<sha12>``: how the exploit cache names the policy ``source``."""
    ident = identify(source)
    return f"{ident.label}-{ident.sha256[:12]}"


def label(source: str) -> str:
    """A short name for a policy source (file stem, scripted kind abbreviated)."""
    short = {"scripted:pure_pursuit": "PP", "scripted:proportional_navigation": "PN",
             "scripted:flee": "flee", "scripted:random": "random"}
    if source in short:
        return short[source]
    path = Path(source)
    if path.name == "best_response.onnx":  # results/exploit/<policy>-<sha>/<role>-<steps>-seed<s>-<key>/
        seed = next((part for part in path.parent.name.split("-") if part.startswith("seed")), "")
        return f"BR({path.parent.parent.name.rsplit('-', 1)[0]}){' ' + seed if seed else ''}"
    return path.stem


def plot_heatmap(xp: CrossPlay, path: Path) -> Path:
    """The capture matrix as a heat map with each cell's rate and the ratings on the axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    capture = xp.capture
    fig, ax = plt.subplots(figsize=(4.5 + 0.9 * len(xp.evaders), 2.2 + 0.45 * len(xp.pursuers)))
    image = ax.imshow(100 * capture, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for i in range(capture.shape[0]):
        for j in range(capture.shape[1]):
            ax.text(j, i, f"{100 * capture[i, j]:.0f}", ha="center", va="center",
                    color="white" if capture[i, j] < 0.6 else "black", fontsize=8)
    n = xp.nash
    ax.set_xticks(range(len(xp.evaders)),
                  [f"{label(e)}\n{100 * r:.0f}" for e, r in zip(xp.evaders, n.evader_rating, strict=True)],
                  rotation=0, fontsize=8)
    ax.set_yticks(range(len(xp.pursuers)),
                  [f"{label(p)} {100 * r:.0f}" for p, r in zip(xp.pursuers, n.pursuer_rating, strict=True)],
                  fontsize=8)
    ax.set_xlabel("evader (Nash-averaged escape rating, %)")
    ax.set_ylabel("pursuer (Nash-averaged capture rating, %)")
    ax.set_title(f"capture % on {xp.scenario}, {xp.results[0][0].episodes} episodes per cell\n"
                 f"game value {100 * n.value:.1f} %", fontsize=9)
    fig.colorbar(image, ax=ax, label="capture %")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def shipped_of_role(scenario: str, role: str) -> list[str]:
    """Shipped policies (``models/``) of ``role`` trained on ``scenario``."""
    from pe_policy.policy import resolve_source, shipped_policies

    out = []
    for name in shipped_policies():
        ident = identify(resolve_source(name))
        if ident.role == role and ident.scenario == scenario:
            out.append(ident.source)
    return out


def cached_best_responses(scenario: str, role: str, root: str | Path = "results/exploit") -> list[str]:
    """Best responses of ``role`` cached by ``pe-exploit`` for ``scenario``."""
    out = []
    for path in sorted(Path(root).glob("*/*/best_response.onnx")):
        ident = identify(str(path))
        if ident.role == role and ident.scenario == scenario:
            out.append(str(path))
    return out


def format_matrix(xp: CrossPlay) -> str:
    width = max(8, *(len(label(e)) + 2 for e in xp.evaders))
    head = (f"{'pursuer':<34}" + "".join(f"{label(e)[:width - 1]:>{width}}" for e in xp.evaders)
            + f"{'rating':>9}{'worst':>9}")
    lines = [head]
    for p, row, rating in zip(xp.pursuers, xp.capture, xp.nash.pursuer_rating, strict=True):
        lines.append(f"{label(p)[:33]:<34}" + "".join(f"{100 * c:>{width - 2}.1f} %" for c in row)
                     + f"{100 * rating:>7.1f} %{100 * row.min():>7.1f} %")
    lines.append(f"{'evader rating (escape)':<34}"
                 + "".join(f"{100 * r:>{width - 2}.1f} %" for r in xp.nash.evader_rating))
    lines.append(f"game value (capture at the Nash equilibrium): {100 * xp.nash.value:.1f} %")
    return "\n".join(lines)


def markdown_matrix(xp: CrossPlay) -> str:
    """The matrix as a Markdown table: capture % per cell, each pursuer's Nash rating, its
    worst case over every evader and over its own kinds (see :meth:`CrossPlay.worst_case_own`),
    and the evaders' escape ratings."""
    own = xp.worst_case_own("pursuer")
    lines = ["| pursuer \\ evader | " + " | ".join(label(e) for e in xp.evaders)
             + " | rating | worst | worst (own BR) |",
             "|---" * (len(xp.evaders) + 4) + "|"]
    for p, row, rating, mine in zip(xp.pursuers, xp.capture, xp.nash.pursuer_rating, own, strict=True):
        lines.append(f"| {label(p)} | " + " | ".join(f"{100 * c:.1f}" for c in row)
                     + f" | {100 * rating:.1f} | {100 * row.min():.1f} | {100 * mine:.1f} |")
    escape_own = xp.worst_case_own("evader")
    lines.append("| evader rating (escape) | " + " | ".join(f"{100 * r:.1f}" for r in xp.nash.evader_rating)
                 + " | | | |")
    lines.append("| evader worst escape (own BR) | " + " | ".join(f"{100 * r:.1f}" for r in escape_own)
                 + " | | | |")
    note = (f"Capture % on `{xp.scenario}`, {xp.results[0][0].episodes} held-out episodes per cell, every "
            f"robot behind the filter; game value {100 * xp.nash.value:.1f} %.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pe-crossplay", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="bench_1v1_flee")
    p.add_argument("--pursuers", nargs="+",
                   help="pursuer sources (default: PP, PN and the shipped pursuers)")
    p.add_argument("--evaders", nargs="+",
                   help="evader sources (default: flee, random and the shipped evaders)")
    p.add_argument("--best-responses", action="store_true",
                   help="add the best responses cached by pe-exploit for this scenario")
    p.add_argument("--exploit-cache", default="results/exploit")
    p.add_argument("--episodes", type=positive_int, default=1000, help="held-out episodes per cell")
    p.add_argument("--out", help="output folder (default results/crossplay/<scenario>)")
    return p


@console_main("pe-crossplay")
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    load_scenario(args.scenario)  # a bad scenario fails here, before any episode
    pursuers = args.pursuers or [*SCRIPTED_PURSUERS, *shipped_of_role(args.scenario, "pursuer")]
    evaders = args.evaders or [*SCRIPTED_EVADERS, *shipped_of_role(args.scenario, "evader")]
    if args.best_responses:
        pursuers += cached_best_responses(args.scenario, "pursuer", args.exploit_cache)
        evaders += cached_best_responses(args.scenario, "evader", args.exploit_cache)
    for role, sources in (("pursuer", pursuers), ("evader", evaders)):
        for source in sources:
            identify(source, role)  # UserError: not of this role
    t0 = time.perf_counter()
    xp = crossplay(args.scenario, pursuers, evaders, args.episodes)
    out = Path(args.out or f"results/crossplay/{args.scenario}")
    data = {**xp.to_dict(), "command": command_line("pe-crossplay", argv),
            "wall_time_s": time.perf_counter() - t0, "finished": now()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "crossplay.json").write_text(json.dumps(data, indent=2, default=float) + "\n")
    plot_heatmap(xp, out / "crossplay.png")
    (out / "crossplay.md").write_text(markdown_matrix(xp))
    print(format_matrix(xp))
    print(f"written: {out}/crossplay.json, crossplay.md, crossplay.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
