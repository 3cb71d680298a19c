"""The report's files: ``report.html`` (self-contained: styles inline, figures as data
URIs), ``report.md`` (figures in ``figures/``), ``rows.csv`` (one line per row),
``report.json`` (everything, per-episode values excepted), and the README's results
section (Markdown between ``<!-- report:begin -->`` and ``<!-- report:end -->``)."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from pe_bringup.report.document import Report

README_BEGIN = "<!-- report:begin -->"
README_END = "<!-- report:end -->"


def pct(e: dict[str, float] | None, digits: int = 1) -> str:
    """``91.4 % [89.5, 93.0]`` for an estimate of a rate; ``-`` for none."""
    if e is None or e["value"] is None or math.isnan(e["value"]):
        return "-"
    return f"{100 * e['value']:.{digits}f} % [{100 * e['low']:.{digits}f}, {100 * e['high']:.{digits}f}]"


def seconds(e: dict[str, float]) -> str:
    if math.isnan(e["value"]):
        return "-"
    return f"{e['value']:.1f} s [{e['low']:.1f}, {e['high']:.1f}]"


def metres(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.3f}"


def pursuer(row: dict[str, Any]) -> dict[str, Any]:
    return row["roles"].get("pursuer", {})


TABLE_HEADER = ("method", "capture (95 % CI)", "time to capture, mean (95 % CI)", "violation episodes",
                "pursuer intervention", "pursuer min clearance (m)")


OUTSIDE_MARK = " †"


def method_cell(row: dict[str, Any]) -> str:
    """The method's label, marked when a learned policy plays outside its training envelope."""
    return row["method_label"] + (OUTSIDE_MARK if row.get("outside_envelope") else "")


def envelope_footnote(rows: list[dict[str, Any]]) -> list[str]:
    notes = sorted({note for r in rows for note in r.get("outside_envelope", [])})
    if not notes:
        return []
    return ["† outside the training envelope of a learned policy: " + "; ".join(notes)]


def table_cells(row: dict[str, Any]) -> list[str]:
    p = pursuer(row)
    return [method_cell(row), pct(row["capture_rate"]), seconds(row["capture_time_mean_s"]),
            pct(row["violation_episode_rate"]),
            pct(p.get("intervention_rate"), 2) if p.get("filtered") else "no filter",
            metres(p.get("min_clearance_m", math.nan))]


def markdown_table(header: tuple[str, ...] | list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out)


def real_comparisons(report: Report, scenario: str, opponent: str) -> list[dict[str, Any]]:
    return [c for c in report.comparisons if c["scenario"] == scenario and c["opponent"] == opponent]


def comparison_line(c: dict[str, Any]) -> list[str]:
    sign = "+" if c["difference"] >= 0 else ""
    return [f"{c['a_label']} vs {c['b_label']}", f"{sign}{100 * c['difference']:.1f} points",
            f"{c['only_a']} / {c['only_b']}", f"{c['p_value']:.2g}", "yes" if c["real"] else "no"]


COMPARISON_HEADER = ("A vs B", "capture A - B", "seeds only A / only B caught", "McNemar p",
                     "real (p < 0.05)")


def robustness_table(report: Report, block: str, opponent: str) -> str | None:
    """Capture (95 % CI) of each method in each scenario of ``block`` against ``opponent``."""
    scenarios = list(dict.fromkeys(r["scenario"] for r in report.rows if r["block"] == block
                                   and r["opponent"] == opponent))
    if len(scenarios) < 2:
        return None
    labels = {r["scenario"]: r["scenario_label"] for r in report.rows}
    methods = list(dict.fromkeys(r["method_label"] for r in report.rows if r["block"] == block))
    by = {(r["method_label"], r["scenario"]): r for r in report.rows if r["opponent"] == opponent}
    lines = [[m] + [pct(by[(m, s)]["capture_rate"], 0) + (OUTSIDE_MARK if by[(m, s)].get("outside_envelope")
                                                          else "") if (m, s) in by else "-"
                    for s in scenarios] for m in methods]
    footnote = envelope_footnote([by[(m, s)] for m in methods for s in scenarios if (m, s) in by])
    return "\n\n".join([markdown_table(["method"] + [labels[s] for s in scenarios], lines), *footnote])


def play_time(report: Report) -> str:
    if report.play_time_s is None:
        return ""
    return f"; playing every row took {report.play_time_s / 60:.1f} min"


def markdown(report: Report, *, figures_dir: str | None = "figures", heading: str = "#",
             variants: bool = True) -> str:
    """The report in Markdown: per (scenario, opponent) tables, robustness, comparisons
    (``variants`` False, for the README: tables of the shipped scenarios only, variants in
    the robustness summary, comparisons in each family's first scenario and opponent)."""
    m = report.matrix
    out = [f"{heading} {report.title}", "",
           f"Generated by `{report.command}`: {m['episodes']} episodes per row on the held-out seeds "
           f"{m['first_seed']}..{m['last_seed']} (the same seeds in every row), {len(report.rows)} rows, "
           f"wall time {report.wall_time_s / 60:.1f} min ({report.played_chunks} chunks played, "
           f"{report.cached_chunks} from the cache{play_time(report)}). Intervals: 95 %, Wilson for "
           "rates, bootstrap over episodes for times and intervention rates. Violation episodes count "
           "robots of either role; "
           "the evader is behind the filter in every row.", ""]
    for block, scenario, opponent in report.cells():
        if not variants and scenario != block:
            continue
        rows = report.rows_of(scenario, opponent)
        out += [f"{heading}# {scenario} ({rows[0]['scenario_label']}) vs {rows[0]['opponent_label']}", "",
                markdown_table(TABLE_HEADER, [table_cells(r) for r in rows]), ""]
        out += [line + "\n" for line in envelope_footnote(rows)]
    for block in dict.fromkeys(r["block"] for r in report.rows):
        for opponent in dict.fromkeys(r["opponent"] for r in report.rows if r["block"] == block):
            table = robustness_table(report, block, opponent)
            if table:
                out += [f"{heading}# Robustness: capture per scenario variant, {block} family vs {opponent}",
                        "", table, ""]
    first_cells = {block: (scenario, opponent) for block, scenario, opponent in reversed(report.cells())}
    for block, scenario, opponent in report.cells():
        comparisons = real_comparisons(report, scenario, opponent)
        shown = (scenario, opponent) == first_cells[block] if not variants else scenario == block
        if comparisons and shown:
            out += [f"{heading}# Paired comparisons, {scenario} vs {opponent} (same seeds, McNemar exact)",
                    "",
                    markdown_table(COMPARISON_HEADER, [comparison_line(c) for c in comparisons]), ""]
    if report.seed_spread:
        out += [f"{heading}# Spread over training seeds", "", markdown_table(
            ("configuration", "scenario", "opponent", "seeds", "capture min-max", "mean (sd)"),
            [[s["config"], s["scenario"], s["opponent"], str(s["seeds"]),
              f"{100 * s['min']:.1f}-{100 * s['max']:.1f} %",
              f"{100 * s['mean']:.1f} % ({100 * s['std']:.1f})"]
             for s in report.seed_spread]), ""]
    else:
        out += ["One training seed per shipped policy: no spread over training seeds to show (model cards "
                "give the spread their training commands measured).", ""]
    if figures_dir:
        for figure in report.figures:
            out += [f"![{figure.caption}]({figures_dir}/{figure.key}.png)", ""]
    return "\n".join(out).rstrip() + "\n"


def csv_text(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["block", "scenario", "method", "pursuer", "filter", "opponent", "evader", "episodes",
                     "first_seed", "last_seed", "capture_rate", "capture_low", "capture_high",
                     "capture_time_mean_s", "capture_time_low_s", "capture_time_high_s",
                     "capture_time_median_s", "violation_episode_rate", "violation_low", "violation_high",
                     "pursuer_intervention_rate", "pursuer_intervention_low", "pursuer_intervention_high",
                     "pursuer_intervention_mean_size", "pursuer_backup_rate", "pursuer_min_clearance_m",
                     "evader_intervention_rate", "evader_min_clearance_m"])
    for r in report.rows:
        p, e = pursuer(r), r["roles"].get("evader", {})
        ir = p.get("intervention_rate") or {"value": None, "low": None, "high": None}
        size = p.get("intervention_mean_size") or {"value": None}
        writer.writerow([r["block"], r["scenario"], r["method"], r["pursuer"], r["filter"], r["opponent"],
                         r["evader"], r["episodes"], *(r["seeds"] or ["", ""]),
                         *(r["capture_rate"][k] for k in ("value", "low", "high")),
                         *(r["capture_time_mean_s"][k] for k in ("value", "low", "high")),
                         r["capture_time_median_s"],
                         *(r["violation_episode_rate"][k] for k in ("value", "low", "high")),
                         ir["value"], ir["low"], ir["high"], size["value"], p.get("backup_rate"),
                         p.get("min_clearance_m"),
                         (e.get("intervention_rate") or {}).get("value"), e.get("min_clearance_m")])
    return buffer.getvalue()


def json_data(report: Report) -> dict[str, Any]:
    def lean(row: dict[str, Any]) -> dict[str, Any]:
        row = {k: v for k, v in row.items() if k not in ("captured_by_seed", "capture_times_s")}
        row["roles"] = {role: {k: v for k, v in m.items() if k != "per_episode"}
                        for role, m in row["roles"].items()}
        return row

    return {"title": report.title, "command": report.command, "matrix": report.matrix,
            "wall_time_s": report.wall_time_s, "played_chunks": report.played_chunks,
            "cached_chunks": report.cached_chunks, "play_time_s": report.play_time_s,
            "rows": [lean(r) for r in report.rows],
            "comparisons": report.comparisons, "training_seed_spread": report.seed_spread,
            "figures": [{"file": f"figures/{f.key}.png", "caption": f.caption} for f in report.figures]}


STYLE = """
body{font-family:sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}
th,td{border:1px solid #bbb;padding:0.25em 0.6em;text-align:right}
th{background:#eee} td:first-child,th:first-child{text-align:left}
tr.real td{background:#eef7ee} figure{display:inline-block;margin:0.5em;vertical-align:top;max-width:48%}
figure.thumb{max-width:31%} figure img{max-width:100%} figcaption{font-size:0.8em;color:#444}
"""


def html_table(header, lines, classes=None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    out = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for k, cells in enumerate(lines):
        cls = f' class="{classes[k]}"' if classes and classes[k] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def html_figure(figure, css: str = "") -> str:
    data = base64.b64encode(figure.png).decode()
    cls = f' class="{css}"' if css else ""
    return (f'<figure{cls}><img src="data:image/png;base64,{data}" alt="{html.escape(figure.caption)}">'
            f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>")


def html_page(report: Report) -> str:
    md_intro = markdown(report, figures_dir=None).split("\n\n")[1]
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(report.title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(report.title)}</h1>", f"<p>{html.escape(md_intro.replace('`', ''))}</p>"]
    for _block, scenario, opponent in report.cells():
        rows = report.rows_of(scenario, opponent)
        parts += [f"<h2>{html.escape(scenario)} ({html.escape(rows[0]['scenario_label'])}) vs "
                  f"{html.escape(rows[0]['opponent_label'])}</h2>",
                  html_table(TABLE_HEADER, [table_cells(r) for r in rows])]
        parts += [f"<p class=\"note\">{html.escape(line)}</p>" for line in envelope_footnote(rows)]
        comparisons = real_comparisons(report, scenario, opponent)
        if comparisons:
            parts += ["<details><summary>Paired comparisons (same seeds, McNemar exact)</summary>",
                      html_table(COMPARISON_HEADER, [comparison_line(c) for c in comparisons],
                                 ["real" if c["real"] else "" for c in comparisons]), "</details>"]
    parts.append("<h2>Figures</h2>")
    parts += [html_figure(f, "thumb" if f.key.startswith("trajectory-") else "") for f in report.figures]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(report: Report, folder: str | Path) -> dict[str, Path]:
    """Write every file of the report into ``folder``; returns them by kind."""
    folder = Path(folder)
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    for figure in report.figures:
        (folder / "figures" / f"{figure.key}.png").write_bytes(figure.png)
    paths = {"html": folder / "report.html", "md": folder / "report.md", "csv": folder / "rows.csv",
             "json": folder / "report.json"}
    paths["html"].write_text(html_page(report))
    paths["md"].write_text(markdown(report))
    paths["csv"].write_text(csv_text(report))
    paths["json"].write_text(json.dumps(json_data(report), indent=1, default=float, allow_nan=True) + "\n")
    return paths


def update_readme(readme: str | Path, section: str) -> None:
    """Replace the text between the report markers of ``readme`` with ``section``."""
    path = Path(readme)
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{path} has no {README_BEGIN} ... {README_END} markers")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    path.write_text(f"{head}{README_BEGIN}\n{section.rstrip()}\n{README_END}{tail}")
