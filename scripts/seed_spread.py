"""The spread over training seeds of one method's final evaluations, from the model
cards its runs wrote (docs/selfplay.md quotes its output).

    .venv/bin/python scripts/seed_spread.py models/selfplay_bench_pursuer.model_card.json \
        runs/selfplay_bench-seed2/selfplay_bench-seed2_pursuer.model_card.json \
        runs/selfplay_bench-seed3/selfplay_bench-seed3_pursuer.model_card.json

Each card's final evaluation (the same held-out test episodes for every card) is matched
by opponent: a self-play card's rows (an opponent from the card's own run folder, the
self-play partner of that seed, as "own <role>"), or a ``pe-train`` card's row of the
learner against its training opponent (``pe-train <config> --seeds 2-3`` cards beside
the shipped seed-1 card, e.g. ``models/evader_bench_pn_filter.model_card.json``). Per
opponent: each seed's win rate (capture for a pursuer, escape for an evader) and their
mean with its 95 % Student-t interval over seeds (``pe_training.sweep.spread``),
and the violation episodes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pe_training.sweep import spread as sweep_spread


def opponent_label(row: dict[str, Any]) -> str:
    """The row's opponent; one from the card's own run (a self-play partner) as 'own <role>'."""
    name = Path(row["opponent"]).name
    if not row["opponent"].startswith("scripted:") and name.endswith(("_pursuer.onnx", "_evader.onnx")):
        return "own " + name.rsplit("_", 1)[1].removesuffix(".onnx")
    return row["opponent"]


def final_rows(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The card's final evaluation as rows of opponent, win rate and violation episodes."""
    final = card["final_eval"]
    if "rows" in final:                                    # a self-play card
        return final["rows"]
    rows = []                                              # a pe-train card: the learner's row
    for result in final["results"]:
        if result["label"] != card["name"]:
            continue
        summary = result["summary"]
        capture = summary["capture_rate"]
        violations = max(r["violation_episode_rate"] for r in summary["roles"].values())
        rows.append({"opponent": card["config"]["opponent"],
                     "win_rate": capture if card["role"] == "pursuer" else 1.0 - capture,
                     "violation_episodes": round(violations * summary["episodes"])})
    return rows


def training_seed(card: dict[str, Any]) -> int:
    """The run's seed: a self-play run's own (its evader learner's config seed is offset)."""
    return (card.get("selfplay_config") or card["config"])["seed"]


def spread(cards: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per opponent: seeds, win rates, the mean's 95 % interval (``pe_training.sweep.spread``)
    and the violation episodes over all seeds."""
    rows = [final_rows(card) for card in cards]
    out = sweep_spread([{"name": None, "seed": training_seed(card),
                         "win_rates": {opponent_label(r): r["win_rate"] for r in card_rows}}
                        for card, card_rows in zip(cards, rows, strict=True)])
    for label, entry in out.items():
        entry["violations"] = sum(r["violation_episodes"] for card_rows in rows for r in card_rows
                                  if opponent_label(r) == label)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cards", nargs="+", type=Path, help="model_card.json of each seed's run")
    parser.add_argument("--json", type=Path, help="also write the spread here")
    args = parser.parse_args()
    cards = [json.loads(path.read_text()) for path in args.cards]
    roles = {card["role"] for card in cards}
    if len(roles) != 1:
        parser.error(f"the cards are of different roles {sorted(roles)}")
    table = spread(cards)
    win = "capture" if roles == {"pursuer"} else "escape"
    print(f"{len(cards)} seeds, {cards[0]['final_eval']['episodes']} held-out episodes per figure, {win} %")
    for label, e in table.items():
        each = ", ".join(f"seed {s}: {100 * w:.1f}" for s, w in zip(e["seeds"], e["win_rates"], strict=True))
        print(f"{label:<40} mean {100 * e['mean']:5.1f} [{100 * e['low']:5.1f}, {100 * e['high']:5.1f}]"
              f"  ({each}; violation episodes {e['violations']})")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
