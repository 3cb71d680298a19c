"""The Ray backend of :func:`pe_sim.jobs.run_jobs`: each job one Ray Core task.

A task declares the job's CPUs (``num_cpus``), so Ray runs as many at once as a node has
CPUs, and starts its worker with the thread variables set to them (Ray sets
``OMP_NUM_THREADS`` only; numba would start a thread per core of the node). A task
whose worker process or node dies is retried (``max_retries``); an exception the job
raises is not retried, it reaches the caller as itself. Only imported with ``--ray``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from pe_sim.cli import UserError
from pe_sim.jobs import LOCAL_RAY, THREAD_VARIABLES, Job, OnResult, execute


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Refuse a ``host:port`` that nothing answers on (``ray.init`` would retry for minutes);
    ``ray://`` client addresses and Ray's keywords are left to Ray."""
    if address in (LOCAL_RAY, "auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except (OSError, ValueError):
        raise UserError(f"--ray {address}: no Ray head answers there (expected host:port of "
                        "`ray start --head --port=PORT`)") from None


def connect(address: str) -> Any:
    """``ray`` connected to the cluster at ``address`` (:data:`LOCAL_RAY`: Ray's default)."""
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray, the optional extra: make ray "
                        "(or pip install -r requirements/ray.txt)") from None
    check_reachable(address)
    if address == LOCAL_RAY:
        # A local instance this call starts: its workers at the machine's normal priority (Ray
        # renices workers to 15 by default, which starves them next to any other job).
        os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        ray.init(address=None if address == LOCAL_RAY else address, log_to_driver=False,
                 configure_logging=False)
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise UserError(f"--ray {address}: cannot connect: {error}") from None
    return ray


def run_on_ray(jobs: Sequence[Job], address: str, on_result: OnResult | None,
               max_retries: int) -> list[Any]:
    """Submit every job, hand each result to ``on_result`` as it finishes; results in job order."""
    ray = connect(address)
    try:
        task = ray.remote(execute)
        refs = {}
        for index, job in enumerate(jobs):
            env = {name: str(job.cpus) for name in THREAD_VARIABLES}
            ref = task.options(num_cpus=job.cpus, max_retries=max_retries, retry_exceptions=False,
                               name=job.name, runtime_env={"env_vars": env}).remote(job, True)
            refs[ref] = index
        results: list[Any] = [None] * len(jobs)
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            index = refs[ready[0]]
            try:
                results[index] = ray.get(ready[0])
            except ray.exceptions.RayTaskError as error:
                if isinstance(error.cause, UserError):
                    raise error.cause from None  # the job's one-line message, not a remote traceback
                raise
            if on_result is not None:
                on_result(jobs[index], results[index])
        return results
    finally:
        ray.shutdown()
