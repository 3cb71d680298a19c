"""Console entry points of this package that check their arguments before the work starts.

``pe-filter-eval`` runs :func:`pe_safety_filter.evaluate_reckless.main` behind
:func:`pe_sim.cli.console_main`, with its episode count and seed checked first
(an episode count below 1 or a seed range outside [0, 2**63) is refused with exit 2).
"""

from __future__ import annotations

import argparse
import sys

from pe_sim.cli import check_seed_range, console_main, positive_int, seed_int


@console_main("pe-filter-eval")
def filter_eval_main(argv: list[str] | None = None) -> int:
    """``pe-filter-eval``: see :mod:`pe_safety_filter.evaluate_reckless`."""
    from pe_safety_filter import evaluate_reckless

    argv = sys.argv[1:] if argv is None else list(argv)
    checks = argparse.ArgumentParser(prog="pe-filter-eval", add_help=False)
    checks.add_argument("--episodes", type=positive_int, default=1000)
    checks.add_argument("--seed", type=seed_int, default=0)
    known, _ = checks.parse_known_args(argv)
    check_seed_range(checks, known.seed, known.episodes)
    evaluate_reckless.main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(filter_eval_main())
