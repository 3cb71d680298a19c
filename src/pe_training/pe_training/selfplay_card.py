"""Model cards of the policies a self-play run exports (``<name>_<role>.model_card.json``
and ``.md`` next to the ``.onnx``, as :mod:`pe_training.model_card` writes them for
``pe-train``): how the run was set up, the final evaluation against the role's reference
opponents and the other side's final policy on held-out test episodes (95 % Wilson
intervals), and the policy's row of the last cross-play matrix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pe_sim.evaluation import EVAL_SEED_BASE
from pe_training.crossplay import CrossPlay, label
from pe_training.matchup import episodes_per_variant, play
from pe_training.model_card import head_lines, how_trained_lines, notes_and_config, provenance_lines
from pe_training.opponents import REFERENCE_OPPONENTS


def final_evaluation(policy: str, role: str, other_final: str, scenario: str,
                     episodes: int) -> list[dict[str, Any]]:
    """The policy against its reference opponents and the other side's final policy."""
    rows = []
    for opponent in [*REFERENCE_OPPONENTS[role], other_final]:
        pursuer, evader = (policy, opponent) if role == "pursuer" else (opponent, policy)
        r = play(scenario, pursuer, evader, episodes)
        low, high = r.win_interval(role)
        each = episodes_per_variant(scenario, episodes)
        command = (f"pe-eval --scenario {scenario} --episodes {each} --pursuer {pursuer} "
                   f"--evader {evader} --filter all")
        rows.append({"opponent": opponent, "win_rate": r.win_rate(role), "win_low": low, "win_high": high,
                     "violation_episodes": r.violation_episodes, "command": command, **r.to_dict()})
    return rows


def crossplay_row(xp: CrossPlay, policy_index: int, role: str) -> dict[str, Any]:
    """The policy's win rates in the last cross-play matrix and its Nash-averaged rating."""
    if role == "pursuer":
        rates = {label(e): r.capture_rate for e, r in zip(xp.evaders, xp.results[policy_index], strict=True)}
        rating = float(xp.nash.pursuer_rating[policy_index])
    else:
        rates = {label(p): 1.0 - row[policy_index].capture_rate
                 for p, row in zip(xp.pursuers, xp.results, strict=True)}
        rating = float(xp.nash.evader_rating[policy_index])
    return {"win_rates": rates, "rating": rating, "value": xp.nash.value,
            "episodes": xp.results[0][0].episodes}


def file_kind(card: dict[str, Any]) -> str:
    if card["selfplay_config"].get(f"{card['role']}_learner") == "barriernet":
        return ("a BarrierNet network: outputs u_ref and one class-K gain per barrier; the QP runs in "
                "the safety filter with those gains, so evaluate it with `--filter all`")
    return "the same ONNX contract as every pe-train policy"


def wall_time_text(card: dict[str, Any]) -> str:
    """The run's wall time; for a run made by several ``pe-selfplay`` calls (a resumed or
    extended run: the commands above, in order) each call's first generation and revision."""
    sessions = card.get("sessions", [])
    if len(sessions) < 2:
        return f"whole run {card['wall_time_s'] / 60:.1f} min"
    calls = ", ".join(f"generation {s['first_generation']} at {s['git_revision'][:7]}" for s in sessions)
    return (f"{len(sessions)} `pe-selfplay` calls (from {calls}): every generation's training and "
            f"cross-play {card['generations_wall_time_s'] / 60:.1f} min, the last call "
            f"{card['wall_time_s'] / 60:.1f} min")


def render(card: dict[str, Any]) -> str:
    role = card["role"]
    win = "capture" if role == "pursuer" else "escape"
    final = card["final_eval"]
    lines = [*head_lines(card),
             f"- **Role**: {role} on scenario `{card['scenario']}`, self-play against a PFSP pool "
             f"(`{card['selfplay_config']['pool']['weighting']}` weighting)",
             f"- **File**: `{card['onnx']}` ({file_kind(card)})",
             *how_trained_lines(card),
             f"- {card['steps']:,} env steps for this learner in {card['generations']} generations; "
             f"{wall_time_text(card)}",
             *provenance_lines(card),
             f"## Evaluation ({final['episodes']} held-out episodes, seeds {EVAL_SEED_BASE}.., filter on "
             "every robot)", "",
             f"| opponent | {win} (95 % Wilson) | violation episodes |", "|---|---|---|"]
    for row in final["rows"]:
        lines.append(f"| `{row['opponent']}` | {100 * row['win_rate']:.1f} % [{100 * row['win_low']:.1f}, "
                     f"{100 * row['win_high']:.1f}] | {row['violation_episodes']} |")
    xp = card["crossplay"]
    lines += ["", "Reproduce each row with:", "", "```", *[r["command"] for r in final["rows"]], "```", "",
              f"## Last cross-play matrix ({xp['episodes']} validation episodes per cell)", "",
              f"Nash-averaged {win} rating {100 * xp['rating']:.1f} % (game value, capture: "
              f"{100 * xp['value']:.1f} %); {win} by opponent: "
              + ", ".join(f"{k} {100 * v:.0f} %" for k, v in xp["win_rates"].items()), ""]
    return "\n".join(lines + notes_and_config(card, card["config"]))


def write_cards(summary: dict[str, Any], xp: CrossPlay, finals: dict[str, Path], episodes: int,
                observation_specs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Evaluate both final policies and write their cards; the cards by role."""
    from pe_training.model_card import write_model_card

    cards = {}
    for role, path in finals.items():
        other = finals["evader" if role == "pursuer" else "pursuer"]
        index = len(xp.pursuers) - 1 if role == "pursuer" else len(xp.evaders) - 1
        card = {
            "name": path.stem, "onnx": path.name, "role": role, "scenario": xp.scenario,
            "summary": f"Self-play {role} (`pe-selfplay`) for scenario `{xp.scenario}`.",
            "command": "\n".join(s["command"] for s in summary["sessions"]),
            "sessions": summary["sessions"], "generations_wall_time_s": summary["generations_wall_time_s"],
            "config": summary["learner_configs"][role],
            "config_hash": summary["learner_config_hashes"][role], "selfplay_config": summary["config"],
            "steps": summary["steps_per_learner"], "generations": summary["config"]["generations"],
            "wall_time_s": summary["wall_time_s"], "git_revision": summary["git_revision"],
            "started": summary["started"], "finished": summary["finished"], "versions": summary["versions"],
            "observation_spec": observation_specs[role],
            "final_eval": {"episodes": episodes,
                           "rows": final_evaluation(str(path), role, str(other), xp.scenario, episodes)},
            "crossplay": crossplay_row(xp, index, role),
        }
        write_model_card(card, path, render)
        cards[role] = json.loads(json.dumps(card, default=float))
    return cards


__all__ = ["crossplay_row", "final_evaluation", "render", "write_cards"]
