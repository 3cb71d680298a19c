"""Model cards of BarrierNet policies (``<name>.model_card.json`` / ``.md`` next to the
``.onnx``), with the evaluation table of :func:`pe_training.model_card.eval_table`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pe_training.model_card import (
    _num,
    _pct,
    evaluation_lines,
    head_lines,
    how_trained_lines,
    notes_and_config,
    provenance_lines,
    write_model_card,
)


def render_markdown(card: dict[str, Any]) -> str:
    cfg = card["config"]
    method = cfg["method"]
    layout = card["gain_layout"]
    lines = [
        *head_lines(card),
        f"- **Role**: {card['role']} (robot `{card['robot']}`) on scenario `{card['scenario']}`, "
        f"opponent `{cfg['opponent']}`",
        f"- **Model**: BarrierNet -- MLP {cfg['net_arch']} ({cfg['activation']}) -> u_ref and one class-K "
        f"gain per barrier ({layout['gain_min']}-{layout['gain_max']} 1/s, log-uniform; slots "
        f"{', '.join(layout['slots'])}) -> the VCP-CBF QP of the safety filter (`{cfg['filter_config']}`).",
        f"- **File**: `{card['onnx']}` -- the network part. Input `obs` (float32, (B, "
        f"{card['observation_spec']['dim']})) raw observations; outputs `action` (u_ref in [-1, 1]), "
        "`u_ref` (m/s, rad/s), `gains` (1/s). The QP runs in the filter with those gains: evaluate with "
        "`--filter all` (or `pursuer`).",
        *how_trained_lines(card),
        f"- method: **{method}** -- {card['method_summary']}",
        f"- seed {cfg['seed']}; {card['steps']:,} {card['steps_unit']}",
        f"- wall time: {card['wall_time_s'] / 60:.1f} min (training {card['train_time_s'] / 60:.1f} min)",
        f"- exported: {card['chosen']}",
        f"- export check: ONNX network + filter QP vs the training-time layer on {card['export_check']['n']} "
        f"observations: max |du| = {card['export_check']['max_abs_du']:.2e}",
        *provenance_lines(card),
    ]
    lines += evaluation_lines(card, "For the BarrierNet row the intervention rate is the QP's: calls where "
                              "the filter's output differs from the network's u_ref by more than 1e-3 "
                              "(scaled).")
    if card.get("validation"):
        key = "num_timesteps" if method == "ppo" else "stage"
        lines += ["## Validation during training (held-out validation seeds)", "",
                  f"| {key} | capture rate | time to capture (s) | violations/step | intervention rate "
                  "| best |",
                  "|---|---|---|---|---|---|"]
        for row in card["validation"]:
            k = f"{row[key]:,}" if key == "num_timesteps" else row[key]
            lines.append(f"| {k} | {_pct(row['capture_rate'])} | {_num(row.get('capture_time_mean_s'))} | "
                         f"{_pct(row.get('violation_step_rate'))} | {_pct(row.get('intervention_rate'))} | "
                         f"{'yes' if row.get('best') else ''} |")
        lines.append("")
    return "\n".join(lines + notes_and_config(card, cfg))


def write_card(card: dict[str, Any], onnx_path: str | Path) -> tuple[Path, Path]:
    """Write the JSON and markdown cards next to ``onnx_path``."""
    return write_model_card(card, onnx_path, render=render_markdown)


__all__ = ["render_markdown", "write_card"]
