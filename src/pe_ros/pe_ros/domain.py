"""Isolated graphs: a DDS domain of one's own, and the check that nobody else is on it.

Two graphs with the same node and topic names on one DDS domain cross-talk
silently (and in lockstep even share stamps). A launcher therefore claims a
domain for the lifetime of its graph:

1. a per-domain lock file (``$TMPDIR/pe-stack-domains/<id>.lock``, ``flock``)
   keeps two launchers on this machine from picking the same domain;
2. a short discovery on the domain lists the nodes already there; a domain with
   any non-hidden node is not free, and a chosen domain that holds a node with
   one of our names is refused.

The lock is released when the :class:`DomainClaim` is closed or its process
ends (the kernel drops ``flock`` locks of dead processes), so a killed launcher
never leaves a domain blocked. Fast DDS's default port mapping allows domain
ids 0-232; automatic picks come from :data:`AUTO_DOMAINS`, away from 0 (the
default every ROS user shares).
"""

from __future__ import annotations

import fcntl
import os
import random
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

AUTO_DOMAINS = range(100, 201)
DISCOVERY_WAIT_S = 1.5
MAX_DOMAIN_ID = 232


class DomainBusy(RuntimeError):
    """The chosen domain is used by another graph; the message says by whom."""


def _lock_dir() -> Path:
    folder = Path(tempfile.gettempdir()) / "pe-stack-domains"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def nodes_on_domain(domain_id: int, wait_s: float = DISCOVERY_WAIT_S) -> list[str]:
    """Full names of the non-hidden nodes seen on ``domain_id`` within ``wait_s`` seconds."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    try:
        node = rclpy.create_node("_pe_domain_probe", context=context,
                                 enable_rosout=False, start_parameter_services=False)
        try:
            deadline = time.monotonic() + wait_s
            seen: set[str] = set()
            while time.monotonic() < deadline:
                for name, namespace in node.get_node_names_and_namespaces():
                    if not name.startswith("_"):
                        seen.add(f"{namespace.rstrip('/')}/{name}")
                time.sleep(0.1)
            return sorted(seen)
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


@dataclass
class DomainClaim:
    """A domain this process holds (see the module docstring); close it when done."""

    domain_id: int
    _fd: int

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> DomainClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _try_lock(domain_id: int) -> int | None:
    fd = os.open(_lock_dir() / f"{domain_id}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def claim_domain(domain_id: int | None = None, our_names: Iterable[str] = (),
                 candidates: Iterable[int] = AUTO_DOMAINS,
                 wait_s: float = DISCOVERY_WAIT_S) -> DomainClaim:
    """Claim ``domain_id``, or a free domain from ``candidates`` when it is None.

    A given domain is refused (:class:`DomainBusy`) when another launcher of this
    machine holds it or when a node named like one of ``our_names`` is on it; other
    nodes there are tolerated (the user chose the domain). An automatic pick takes a
    domain with no lock and no node at all."""
    if domain_id is not None:
        if not 0 <= domain_id <= MAX_DOMAIN_ID:
            raise ValueError(f"domain id must be in [0, {MAX_DOMAIN_ID}], got {domain_id}")
        fd = _try_lock(domain_id)
        if fd is None:
            raise DomainBusy(f"ROS domain {domain_id} is in use by another pe-stack graph on this "
                             "machine; choose another --domain-id or leave it out to pick a free one")
        ours = set(our_names)
        clash = [n for n in nodes_on_domain(domain_id, wait_s) if n in ours]
        if clash:
            os.close(fd)
            raise DomainBusy(f"ROS domain {domain_id} already has nodes named {', '.join(clash)}: "
                             "another graph is running there; choose another --domain-id or "
                             "leave it out to pick a free one")
        return DomainClaim(domain_id, fd)
    order = list(candidates)
    random.shuffle(order)
    for candidate in order:
        fd = _try_lock(candidate)
        if fd is None:
            continue
        if not nodes_on_domain(candidate, wait_s):
            return DomainClaim(candidate, fd)
        os.close(fd)
    raise DomainBusy(f"no free ROS domain among {len(order)} candidates: each is locked by "
                     "another graph or has nodes; give one with --domain-id")
