"""From played rows to the report's numbers: metrics with 95 % intervals per row and
paired comparisons of methods on the same seeds.

Intervals: Wilson for rates over episodes (capture, violation episodes); percentile
bootstrap over episodes for times and for ratios of sums (intervention rate and
size: interventions / filter calls, resampling whole episodes). Paired comparison:
two methods on the same scenario, opponent and seeds; exact McNemar test on the
per-seed capture outcomes; a difference is called real at p < 0.05.
Record fields are read defensively (``getattr`` with defaults), so records with more
fields, or older ones with fewer, still load.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from pe_bringup.report.run import RowResult
from pe_bringup.report.stats import bootstrap_interval, mcnemar_exact, paired_outcomes, wilson_interval
from pe_sim.metrics import EpisodeRecord

SIGNIFICANCE = 0.05


def estimate(value: float, interval: tuple[float, float]) -> dict[str, float]:
    return {"value": value, "low": interval[0], "high": interval[1]}


def rate(successes: int, trials: int) -> dict[str, float]:
    """A rate with its Wilson interval."""
    return estimate(successes / trials if trials else math.nan, wilson_interval(successes, trials))


def ratio_of_sums(pairs: np.ndarray) -> dict[str, float]:
    """sum(numerator) / sum(denominator) over episodes (rows of ``pairs``), with a
    bootstrap interval resampling episodes."""
    if pairs.size == 0 or pairs[:, 1].sum() == 0:
        return estimate(math.nan, (math.nan, math.nan))

    def ratio(sample: np.ndarray) -> float:
        calls = sample[:, 1].sum()
        return float(sample[:, 0].sum() / calls) if calls else 0.0

    return estimate(ratio(pairs), bootstrap_interval(pairs, statistic=ratio, resamples=1000))


def role_robots(record: EpisodeRecord, role: str) -> list[Any]:
    return [robot for robot in record.robots if getattr(robot, "role", "") == role]


def role_metrics(records: Sequence[EpisodeRecord], role: str) -> dict[str, Any]:
    """Safety and filter metrics of ``role`` (docs/metrics.md), with intervals and the
    per-episode values the distribution plots draw."""
    robots = [role_robots(r, role) for r in records]
    violated = sum(1 for rs in robots if any(getattr(x, "violation_steps", 0) for x in rs))
    calls = np.array([sum(getattr(x, "filter_calls", 0) for x in rs) for rs in robots], dtype=float)
    interventions = np.array([sum(getattr(x, "interventions", 0) for x in rs) for rs in robots], dtype=float)
    size = np.array([sum(getattr(x, "correction_size_sum", 0.0) for x in rs) for rs in robots], dtype=float)
    backups = np.array([sum(getattr(x, "backups", 0) for x in rs) for rs in robots], dtype=float)
    clearance = np.array([min((getattr(x, "min_clearance", math.inf) for x in rs), default=math.inf)
                          for rs in robots], dtype=float)
    filtered = calls.sum() > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        per_episode_rate = np.where(calls > 0, interventions / np.maximum(calls, 1), np.nan)
    finite = clearance[np.isfinite(clearance)]
    return {
        "policies": sorted({getattr(x, "policy", "") for rs in robots for x in rs}),
        "filtered": bool(filtered),
        "violation_episode_rate": rate(violated, len(records)),
        "intervention_rate": ratio_of_sums(np.stack([interventions, calls], axis=1)) if filtered else None,
        "intervention_mean_size": ratio_of_sums(np.stack([size, calls], axis=1)) if filtered else None,
        "backup_rate": float(backups.sum() / calls.sum()) if filtered else None,
        "min_clearance_m": float(finite.min()) if finite.size else math.nan,
        "per_episode": {
            "intervention_rate": [None if math.isnan(v) else float(v) for v in per_episode_rate],
            "min_clearance_m": [float(v) if math.isfinite(v) else None for v in clearance],
        },
    }


def row_metrics(result: RowResult) -> dict[str, Any]:
    """Everything the report shows about one row."""
    row, records = result.row, result.records
    times = np.array([r.capture_time_s for r in records if r.captured], dtype=float)
    roles = sorted({getattr(x, "role", "") for r in records for x in r.robots})
    return {
        "block": row.block, "scenario": row.scenario.key, "scenario_label": row.scenario.label,
        "method": row.method.key, "method_label": row.method.label, "pursuer": row.method.source,
        "filter": row.method.filter, "opponent": row.opponent.key, "opponent_label": row.opponent.label,
        "evader": row.opponent.source, "episodes": len(records),
        "seeds": [records[0].seed, records[-1].seed] if records else [],
        "capture_rate": rate(sum(r.captured for r in records), len(records)),
        "capture_time_mean_s": estimate(float(times.mean()) if times.size else math.nan,
                                        bootstrap_interval(times)),
        "capture_time_median_s": float(np.median(times)) if times.size else math.nan,
        "capture_times_s": [float(t) for t in times],
        "max_time_s": max((r.duration_s for r in records), default=math.nan) if records else math.nan,
        "violation_episode_rate": rate(sum(1 for r in records if any(
            getattr(x, "violation_steps", 0) for x in r.robots)), len(records)),
        "roles": {role: role_metrics(records, role) for role in roles},
        "captured_by_seed": {r.seed: bool(r.captured) for r in records},
    }


def paired_comparisons(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every pair of methods played on the same scenario and opponent: capture-rate
    difference on their common seeds, discordant pairs and McNemar's exact p."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["scenario"], row["opponent"]), []).append(row)
    out = []
    for (scenario, opponent), members in groups.items():
        for a, b in combinations(members, 2):
            n, only_a, only_b = paired_outcomes(a["captured_by_seed"], b["captured_by_seed"])
            p = mcnemar_exact(only_a, only_b)
            out.append({
                "scenario": scenario, "opponent": opponent, "a": a["method"], "a_label": a["method_label"],
                "b": b["method"], "b_label": b["method_label"], "seeds": n, "only_a": only_a,
                "only_b": only_b, "difference": (only_a - only_b) / n if n else math.nan,
                "p_value": p, "real": p < SIGNIFICANCE,
            })
    return out


def training_seed_spread(rows: Sequence[dict[str, Any]], groups: dict[str, Sequence[str]]) -> list[dict]:
    """Spread of capture rate over training seeds: ``groups`` maps a configuration to
    the methods that are its seeds; one entry per (configuration, scenario, opponent)
    with at least two seeds played."""
    out = []
    by_key = {(r["method"], r["scenario"], r["opponent"]): r for r in rows}
    cells = sorted({(r["scenario"], r["opponent"]) for r in rows})
    for config, methods in groups.items():
        for scenario, opponent in cells:
            values = [by_key[(m, scenario, opponent)]["capture_rate"]["value"] for m in methods
                      if (m, scenario, opponent) in by_key]
            if len(values) >= 2:
                out.append({"config": config, "scenario": scenario, "opponent": opponent,
                            "seeds": len(values), "min": min(values), "max": max(values),
                            "mean": float(np.mean(values)), "std": float(np.std(values, ddof=1))})
    return out
