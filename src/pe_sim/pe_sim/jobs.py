"""Independent jobs (training seeds, best responses, self-play runs, report chunks), run
here one after the other, or as Ray tasks on a cluster with ``--ray [ADDRESS]``.

A :class:`Job` names an importable function and its keyword arguments, so any worker
that has the workspace installed can run it; it writes its own results (run folders,
caches) to paths every worker reaches, and returns a small JSON-able summary. The
commands build their jobs, call :func:`run_jobs` and see each result as it arrives
(``on_result``), in completion order; :func:`run_jobs` returns them in job order.
Without ``ray_address`` nothing imports Ray; with it, :mod:`pe_sim.ray_jobs` does.
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pe_sim.cli import UserError

#: ``--ray`` without an address: Ray's own default (``RAY_ADDRESS``, a running local
#: cluster, else a new local instance sized to this machine).
LOCAL_RAY = "auto-local"
#: Environment variables that size a worker's thread pools to its job's CPUs.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")

OnResult = Callable[["Job", Any], None]


@dataclass(frozen=True)
class Job:
    """One unit of work: ``function(**kwargs)``, ``function`` as ``"module:name"``.

    ``cpus`` is what the job uses (its torch and numba threads are pinned to it on Ray);
    ``cwd`` is the folder relative paths in ``kwargs`` are relative to (the driver's).
    """

    name: str
    function: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    cpus: int = 1
    cwd: str = field(default_factory=os.getcwd)


def resolve(function: str) -> Callable[..., Any]:
    """The callable named ``"module:name"``."""
    module, _, name = function.partition(":")
    return getattr(importlib.import_module(module), name)


def execute(job: Job, pin_threads: bool = False) -> Any:
    """Run ``job`` in this process (from ``job.cwd``); with ``pin_threads`` its torch and
    numba thread pools are first limited to ``job.cpus``."""
    if not Path(job.cwd).is_dir():
        raise UserError(f"{job.name}: the folder it runs from, {job.cwd}, is not on this worker "
                        f"({socket.gethostname()}): run from a folder every worker reaches (a shared path)")
    if pin_threads:
        limit_threads(job.cpus)
    os.chdir(job.cwd)
    return resolve(job.function)(**job.kwargs)


def limit_threads(cpus: int) -> None:
    """Size this process's compute thread pools to ``cpus``: the variables torch and numba
    read when first imported, and their pools if already imported (numba's can only shrink
    below the ``NUMBA_NUM_THREADS`` the worker started with)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(cpus)
    numba = sys.modules.get("numba")
    if numba is not None:
        numba.set_num_threads(min(cpus, numba.config.NUMBA_NUM_THREADS))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(cpus)


def run_jobs(jobs: Sequence[Job], ray_address: str | None = None,
             on_result: OnResult | None = None, max_retries: int = 3) -> list[Any]:
    """Every job's result, in job order. Here (``ray_address`` None): one after the other in
    this process. On Ray: as tasks, each retried up to ``max_retries`` times when its worker
    or node dies (a job resumes from whatever it had written)."""
    if ray_address is not None:
        from pe_sim.ray_jobs import run_on_ray

        return run_on_ray(jobs, ray_address, on_result, max_retries)
    results = []
    cwd = os.getcwd()
    try:
        for job in jobs:
            results.append(execute(job))
            if on_result is not None:
                on_result(job, results[-1])
    finally:
        os.chdir(cwd)
    return results


def add_ray_argument(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]``: run the command's jobs on a Ray cluster."""
    parser.add_argument("--ray", nargs="?", const=LOCAL_RAY, default=None, metavar="ADDRESS",
                        help="run the jobs as Ray tasks: on the cluster at ADDRESS (host:port, "
                             "ray://host:port), or without ADDRESS on RAY_ADDRESS / a local Ray "
                             "(needs the Ray extra: make ray)")


def seed_list(text: str) -> list[int]:
    """argparse type: training seeds as ``1-5``, ``1,3,5`` or ``7``, each in [0, 100)."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            seeds += range(int(low), int(high or low) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 1-5 or 1,3,5, got {text!r}") from None
    if not seeds or any(not 0 <= s < 100 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds in [0, 100), got {text!r}")
    return seeds
