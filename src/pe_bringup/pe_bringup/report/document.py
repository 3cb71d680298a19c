"""The report as data: rows with intervals, paired comparisons and figures, built from
played rows; the writers (:mod:`pe_bringup.report.writers`) only format it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pe_bringup.report import figures
from pe_bringup.report.analysis import paired_comparisons, row_metrics, training_seed_spread
from pe_bringup.report.matrix import Matrix
from pe_bringup.report.run import RowResult
from pe_policy.replay import check_replay, replay_episode


@dataclass
class Figure:
    """A PNG with its caption; ``key`` names its file in the output folder."""

    key: str
    caption: str
    png: bytes


@dataclass
class Report:
    title: str
    command: str
    matrix: dict[str, Any]
    rows: list[dict[str, Any]]
    comparisons: list[dict[str, Any]]
    seed_spread: list[dict[str, Any]]
    figures: list[Figure] = field(default_factory=list)
    wall_time_s: float = 0.0
    played_chunks: int = 0
    cached_chunks: int = 0
    play_time_s: float | None = None    # wall time of playing every row, cached ones included

    def cells(self) -> list[tuple[str, str, str]]:
        """(block, scenario, opponent) in matrix order."""
        return list(dict.fromkeys((r["block"], r["scenario"], r["opponent"]) for r in self.rows))

    def rows_of(self, scenario: str, opponent: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["scenario"] == scenario and r["opponent"] == opponent]


def matrix_description(matrix: Matrix) -> dict[str, Any]:
    return {
        "episodes": matrix.episodes, "first_seed": matrix.seed,
        "last_seed": matrix.seed + matrix.episodes - 1,
        "blocks": [{"family": b.family, "scenarios": [{"key": s.key, "label": s.label, "base": s.base,
                                                      "changes": [list(c) for c in s.changes]}
                                                     for s in b.scenarios],
                    "methods": [vars(m) for m in b.methods], "opponents": [vars(o) for o in b.opponents]}
                   for b in matrix.blocks],
    }


def build_report(matrix: Matrix, results: Sequence[RowResult], *, command: str, wall_time_s: float,
                 thumbnails: bool = True, title: str = "pe-stack evaluation report") -> Report:
    rows = [dict(row_metrics(result), outside_envelope=envelope_notes(result)) for result in results]
    report = Report(
        title=title, command=command, matrix=matrix_description(matrix), rows=rows,
        comparisons=paired_comparisons(rows), seed_spread=training_seed_spread(rows, seed_groups(matrix)),
        wall_time_s=wall_time_s, played_chunks=sum(r.played_chunks for r in results),
        cached_chunks=sum(r.cached_chunks for r in results),
        play_time_s=None if any(r.play_time_s is None for r in results)
        else sum(r.play_time_s for r in results))
    report.figures = make_figures(report, results if thumbnails else [])
    return report


def envelope_notes(result: RowResult) -> list[str]:
    """Why a row's learned policies play outside what they were trained for (their
    operating envelope, :func:`pe_policy.evaluate.check_envelopes`); empty when inside."""
    import warnings

    from pe_policy.evaluate import check_envelopes
    from pe_policy.policy import SCRIPTED_PREFIX, load_policy

    scenario, row = result.scenario, result.row
    sources = [row.method.source if r.role == "pursuer" else row.opponent.source for r in scenario.robots]
    policies = [load_policy(source, scenario, i) for i, source in enumerate(sources)
                if not source.startswith(SCRIPTED_PREFIX)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_envelopes(scenario, policies, strict=False)
    return sorted({str(w.message) for w in caught})


def seed_groups(matrix: Matrix) -> dict[str, list[str]]:
    """Methods that are training seeds of one configuration (model cards with the same
    config name), by configuration; only groups of two or more."""
    from pe_bringup.report.matrix import model_card

    groups: dict[str, list[str]] = {}
    for block in matrix.blocks:
        for method in block.methods:
            config = model_card(method.source).get("config", {}).get("name") if ":" not in method.source \
                else None
            if config:
                groups.setdefault(f"{config} ({method.filter})", []).append(method.key)
    return {k: sorted(set(v)) for k, v in groups.items() if len(set(v)) >= 2}


def make_figures(report: Report, results: Sequence[RowResult]) -> list[Figure]:
    out = []
    for block, scenario, opponent in report.cells():
        rows = report.rows_of(scenario, opponent)
        first_of_block = scenario == next(r["scenario"] for r in report.rows if r["block"] == block)
        if not first_of_block:
            continue
        cell = f"{scenario} vs {opponent}"
        key = f"{scenario}-{opponent}"
        out.append(Figure(f"capture-{key}", f"Capture over time, {cell}",
                          figures.capture_over_time(rows, f"capture over time: {cell}")))
        png = figures.distribution(rows, "pursuer", "intervention_rate", "pursuer intervention rate per "
                                   "episode (%)", f"filter interventions: {cell}", scale=100.0)
        if png:
            out.append(Figure(f"interventions-{key}", f"Per-episode pursuer intervention rate, {cell} "
                              "(boxes: quartiles, whiskers: 5-95 %, triangle: mean)", png))
        png = figures.distribution(rows, "pursuer", "min_clearance_m", "pursuer minimum clearance per "
                                   "episode (m)", f"minimum clearance: {cell}")
        if png:
            out.append(Figure(f"clearance-{key}", f"Per-episode pursuer minimum clearance, {cell}", png))
    if len(report.rows) > 1:
        out.append(Figure("capture-heat-map", "Capture rate of every method in every scenario and against "
                          "every opponent (cross-play)", figures.capture_heat_map(report.rows)))
    out += thumbnails(report, results)
    return out


def thumbnails(report: Report, results: Sequence[RowResult]) -> list[Figure]:
    """For the first scenario and opponent of each block: per method with the pursuer
    behind the filter, the episode with the most pursuer corrections, replayed."""
    out = []
    firsts = {}
    for result in results:
        firsts.setdefault(result.row.block, (result.row.scenario.key, result.row.opponent.key))
    for result in results:
        row = result.row
        if (row.scenario.key, row.opponent.key) != firsts[row.block] or row.method.filter not in ("all",
                                                                                                 "pursuer"):
            continue
        if not result.records:
            continue
        record = max(result.records, key=lambda r: (sum(x.interventions for x in r.robots if
                                                        x.role == "pursuer"), -r.seed))
        log = replay_episode(result.scenario, {"pursuer": row.method.source, "evader": row.opponent.source},
                             record.seed, filter=row.method.filter)
        problems = check_replay(log, record)
        outcome = f"captured {log.capture_step * log.dt:.1f} s" if log.captured else "no capture"
        corrections = int(log.intervened[:, list(log.robot_roles).index("pursuer")].sum())
        title = f"{row.method.label}\nseed {record.seed}: {outcome}, {corrections} pursuer corrections"
        caption = f"{row.method.label} vs {row.opponent.label}, {row.scenario.key}, seed {record.seed} " \
                  "(the row's episode with the most pursuer corrections; dots: corrected steps)"
        if problems:
            caption += "; REPLAY DIFFERS FROM THE RECORD: " + "; ".join(problems)
        out.append(Figure(f"trajectory-{row.scenario.key}-{row.opponent.key}-{row.method.key}", caption,
                          figures.trajectory_thumbnail(log, title)))
    return out
