"""Model cards: ``<policy>.model_card.json`` (machine-readable) and ``.model_card.md``
(for people) next to an exported ``<policy>.onnx``."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def card_paths(onnx_path: Path) -> tuple[Path, Path]:
    stem = onnx_path.with_suffix("")
    return stem.with_name(stem.name + ".model_card.json"), stem.with_name(stem.name + ".model_card.md")


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100.0 * x:.2f} %"


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def eval_table(evaluations: list[dict[str, Any]], role: str) -> str:
    """A markdown table: one row per evaluated policy (figures of the learner's role)."""
    rows = ["| policy | capture rate | time to capture mean / median (s) | violations/step (all robots) "
            "| violation episodes | intervention rate (" + role + ") | backup rate |",
            "|---|---|---|---|---|---|---|"]
    for ev in evaluations:
        s = ev["summary"]
        roles = s["roles"]
        mine = roles.get(role, {})
        steps = sum(r["robot_steps"] for r in roles.values())
        viol = sum(r["violation_step_rate"] * r["robot_steps"] for r in roles.values()
                   if not math.isnan(r["violation_step_rate"]))
        viol_ep = max((r["violation_episode_rate"] for r in roles.values()), default=math.nan)
        rows.append(
            f"| {ev['label']} | {_pct(s['capture_rate'])} | {_num(s['capture_time_mean_s'])} / "
            f"{_num(s['capture_time_median_s'])} | {_pct(viol / steps if steps else math.nan)} | "
            f"{_pct(viol_ep)} (any role) | {_pct(mine.get('intervention_rate'))} | "
            f"{_pct(mine.get('backup_rate'))} |")
    return "\n".join(rows)


def head_lines(card: dict[str, Any]) -> list[str]:
    """Title and summary of a card."""
    return [f"# Model card: {card['name']}", "", card.get("summary", ""), "", "## What it is", ""]


def how_trained_lines(card: dict[str, Any]) -> list[str]:
    """Observation spec and config hash (the end of "What it is"), then the training command."""
    envelope = card.get("envelope")
    return [f"- **Observation spec**: `{json.dumps(card['observation_spec'], sort_keys=True)}`",
            f"- **Training config hash**: `{card['config_hash']}`",
            *([f"- **Operating envelope** (pe-eval warns outside it, `--strict` refuses): "
               f"`{json.dumps(envelope, sort_keys=True)}`"] if envelope else []), "",
            "## How it was trained", "", "```", card["command"], "```", ""]


def provenance_lines(card: dict[str, Any]) -> list[str]:
    """Git revision, times and package versions (the end of "How it was trained")."""
    return [f"- git revision: `{card['git_revision']}`; started {card['started']}, "
            f"finished {card['finished']}",
            f"- versions: {', '.join(f'{k} {v}' for k, v in card['versions'].items())}", ""]


def evaluation_lines(card: dict[str, Any], remark: str = "") -> list[str]:
    """The final evaluation table (with ``remark`` under it) and the commands of its rows."""
    final = card.get("final_eval")
    if not final:
        return []
    return [f"## Evaluation ({final['episodes']} held-out episodes, seeds {final['seed']}.."
            f"{final['seed'] + final['episodes'] - 1}, filter `{final['filter']}`)", "",
            eval_table(final["results"], card["role"]), "",
            *([remark, ""] if remark else []),
            "Reproduce each row with:", "", "```", *[ev["command"] for ev in final["results"]], "```", ""]


def render_markdown(card: dict[str, Any]) -> str:
    cfg = card["config"]
    lines = [
        *head_lines(card),
        f"- **Role**: {card['role']} (robot `{card['robot']}`) on scenario `{card['scenario']}`, "
        f"trained against `{cfg['opponent']}`"
        + (f", teammates `{cfg['teammate']}`" if cfg.get("teammate") else ""),
        f"- **Variant**: {card['variant']}",
        f"- **File**: `{card['onnx']}` — input `obs` (float32, (B, {card['observation_spec']['dim']})) raw "
        "observations; output `action` (float32, (B, 2)) in [-1, 1], mapped linearly to "
        f"v in [{card['action_bounds']['low'][0]}, {card['action_bounds']['high'][0]}] m/s and "
        f"omega in [{card['action_bounds']['low'][1]}, {card['action_bounds']['high'][1]}] rad/s. "
        "Observation normalisation is folded into the graph.",
        *how_trained_lines(card),
        f"- algorithm: SB3 PPO on `BatchVecEnv` ({cfg['num_envs']} envs), seed {cfg['seed']}, "
        f"{card['steps']:,} env steps (budget {cfg['total_steps']:,})",
        f"- wall time: {card['wall_time_s'] / 60:.1f} min (training {card['train_time_s'] / 60:.1f} min), "
        f"median {card.get('steps_per_s_median') or 0:,.0f} env steps/s",
        f"- exported checkpoint: `{card['exported_checkpoint']}` at {card['exported_steps']:,} steps "
        f"({card['export_rule']})",
        *provenance_lines(card),
    ]
    lines += evaluation_lines(card)
    if card.get("validation"):
        lines += ["## Validation during training (held-out validation seeds)", "",
                  "| steps | capture rate | violations/step | intervention rate | best |",
                  "|---|---|---|---|---|"]
        for row in card["validation"]:
            lines.append(f"| {row['num_timesteps']:,} | {_pct(row['capture_rate'])} | "
                         f"{_pct(row.get('violation_step_rate'))} | {_pct(row.get('intervention_rate'))} | "
                         f"{'yes' if row.get('best') else ''} |")
        lines.append("")
    return "\n".join(lines + notes_and_config(card, cfg))


def notes_and_config(card: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    """The closing markdown sections of every model card: notes and the full config."""
    lines = ["## Notes", "", card["notes"], ""] if card.get("notes") else []
    return [*lines, "## Full training config", "", "```yaml",
            yaml.safe_dump(cfg, sort_keys=False).rstrip(), "```", ""]


def write_model_card(
    card: dict[str, Any], onnx_path: str | Path, render: Callable[[dict[str, Any]], str] = render_markdown
) -> tuple[Path, Path]:
    """Write the JSON and the markdown card (``render(card)``) next to ``onnx_path``."""
    json_path, md_path = card_paths(Path(onnx_path))
    json_path.write_text(json.dumps(card, indent=2, default=float, sort_keys=False) + "\n")
    md_path.write_text(render(card))
    return json_path, md_path


__all__ = ["card_paths", "eval_table", "evaluation_lines", "head_lines", "how_trained_lines",
           "notes_and_config", "provenance_lines", "render_markdown", "write_model_card"]
