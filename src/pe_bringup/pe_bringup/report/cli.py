"""``pe-report``: run the evaluation matrix (cached, incremental) and write the report.

    pe-report                                  # default matrix, 500 episodes per row
    pe-report --matrix small --episodes 40     # a quick one
    pe-report --update-readme                  # also regenerate the README's results section
    pe-report --ray                            # unplayed chunks as Ray tasks (docs/ray.md)

Output in ``--out`` (default ``results/report``): ``report.html`` (self-contained),
``report.md``, ``rows.csv``, ``report.json`` and ``figures/``. Finished chunks of
rows are cached in ``--cache`` (default ``results/report-cache``): rerunning
plays only rows whose policy, opponent, scenario, seeds or filter changed, and a
run stopped with Ctrl-C keeps every chunk it finished.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from pe_bringup.report.cache import ResultCache
from pe_bringup.report.document import build_report
from pe_bringup.report.matrix import MATRICES
from pe_bringup.report.run import BACKENDS, run_matrix
from pe_bringup.report.writers import markdown, update_readme, write_report
from pe_sim.cli import check_seed_range, console_main, positive_int, seed_int
from pe_sim.evaluation import EVAL_SEED_BASE
from pe_sim.jobs import add_ray_argument


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pe-report", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--matrix", default="default", choices=sorted(MATRICES))
    p.add_argument("--episodes", type=positive_int, default=500, help="episodes per row")
    p.add_argument("--seed", type=seed_int, default=EVAL_SEED_BASE,
                   help="first episode seed (held out)")
    p.add_argument("--backend", default="batch", choices=BACKENDS,
                   help="batch: headless simulator; ros: each chunk through pe-launch eval")
    p.add_argument("--domain-id", type=int, default=None,
                   help="DDS domain of the ros backend (default: a free one)")
    p.add_argument("--filter-config", default="vcp_cbf", help="filter config name or YAML path")
    p.add_argument("--num-envs", type=positive_int, default=256,
                   help="episodes simulated in parallel (batch)")
    p.add_argument("--out", default="results/report", help="report folder")
    p.add_argument("--cache", default="results/report-cache", help="result cache folder")
    p.add_argument("--fresh", action="store_true", help="ignore cached results (and overwrite them)")
    p.add_argument("--no-thumbnails", action="store_true", help="skip the replayed trajectory thumbnails")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--update-readme", nargs="?", const="README.md", default=None, metavar="README",
                   help="replace the README's section between <!-- report:begin/end --> with the report")
    add_ray_argument(p)
    return p


@console_main("pe-report")
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_seed_range(parser, args.seed, args.episodes)
    if args.update_readme and not Path(args.update_readme).is_file():
        parser.error(f"--update-readme: {args.update_readme}: no such file")
    cache_dir = Path(args.cache)
    if args.fresh and cache_dir.is_dir():
        for stale in [*cache_dir.glob("*.jsonl"), *cache_dir.glob("*.meta.json")]:
            stale.unlink()
    matrix = MATRICES[args.matrix](args.episodes, args.seed)
    started = time.perf_counter()
    try:
        results = run_matrix(matrix, ResultCache(cache_dir), backend=args.backend,
                             filter_config=args.filter_config, num_envs=args.num_envs,
                             progress=not args.no_progress, domain_id=args.domain_id, ray_address=args.ray)
    except KeyboardInterrupt:
        print(f"\npe-report: stopped; finished chunks are kept in {cache_dir}/ (rerun to continue)",
              file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"pe-report: error: {error}", file=sys.stderr)
        return 2
    command = "pe-report " + shlex.join(argv if argv is not None else sys.argv[1:])
    report = build_report(matrix, results, command=command.strip(),
                          wall_time_s=time.perf_counter() - started, thumbnails=not args.no_thumbnails)
    paths = write_report(report, args.out)
    if args.update_readme:
        update_readme(args.update_readme, markdown(report, figures_dir=None, heading="###", variants=False))
    print(f"{len(report.rows)} rows, {matrix.episodes} episodes each, "
          f"{report.wall_time_s:.0f} s ({report.played_chunks} chunks played, {report.cached_chunks} cached)")
    for kind, path in paths.items():
        print(f"{kind:>5}: {path}")
    if args.update_readme:
        print(f"updated the results section of {args.update_readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
