"""Who a policy source is and whom it is judged against: its role, a content hash that
identifies it for caches, and the reference opponents of each role.

Sources are those of :func:`pe_policy.policy.load_policy` (``scripted:<kind>``, a shipped
policy's name, an ``.onnx`` path); bare scripted kinds are accepted too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pe_policy.policy import SCRIPTED_PREFIX, resolve_source
from pe_sim.cli import UserError
from pe_sim.scripted import KINDS

ROLES = ("pursuer", "evader")

#: The role a scripted kind plays unless told otherwise (``random`` drives either; the
#: benchmarks use it as an evader).
SCRIPTED_ROLE = {"pure_pursuit": "pursuer", "proportional_navigation": "pursuer",
                 "flee": "evader", "random": "evader"}

#: The scripted opponents a policy of each role is judged against besides learned ones:
#: a pursuer against the flee and random evaders, an evader against pure pursuit and PN.
REFERENCE_OPPONENTS = {
    "pursuer": ("scripted:flee", "scripted:random"),
    "evader": ("scripted:pure_pursuit", "scripted:proportional_navigation"),
}


def other_role(role: str) -> str:
    return "evader" if role == "pursuer" else "pursuer"


@dataclass(frozen=True)
class PolicyIdentity:
    """A policy source resolved: ``source`` as load_policy takes it, its role, the
    scenario it was trained on (None for scripted), a short label and a SHA-256 of its
    content (the file's bytes, or the scripted source string)."""

    source: str
    role: str
    scenario: str | None
    label: str
    sha256: str

    @property
    def is_scripted(self) -> bool:
        return self.source.startswith(SCRIPTED_PREFIX)


def normalise_source(source: str) -> str:
    """``scripted:<kind>`` for a bare kind, a shipped name resolved to its file, else as given."""
    if source in KINDS:
        return SCRIPTED_PREFIX + source
    return resolve_source(source)


def identify(source: str, role: str | None = None) -> PolicyIdentity:
    """The :class:`PolicyIdentity` of ``source``; ``role`` overrides a scripted kind's
    default role and must match a learned policy's. Raises :class:`UserError` (wrong role,
    unknown kind or source) or FileNotFoundError (no such file)."""
    source = normalise_source(source)
    if source.startswith(SCRIPTED_PREFIX):
        kind = source[len(SCRIPTED_PREFIX):]
        if kind not in KINDS:
            raise UserError(f"unknown scripted policy {kind!r}; choose from {list(KINDS)}")
        digest = hashlib.sha256(source.encode()).hexdigest()
        return PolicyIdentity(source, role or SCRIPTED_ROLE[kind], None, kind, digest)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(2, "no policy file", str(path))
    from pe_policy.onnx_policy import read_metadata

    metadata = read_metadata(path)
    if role is not None and role != metadata.role:
        raise UserError(f"{path} is a {metadata.role} policy; it cannot play the {role}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return PolicyIdentity(str(path), metadata.role, metadata.scenario, path.stem, digest)


__all__ = ["REFERENCE_OPPONENTS", "ROLES", "SCRIPTED_ROLE", "PolicyIdentity", "identify", "normalise_source",
           "other_role"]
