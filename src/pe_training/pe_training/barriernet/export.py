"""ONNX export of the BarrierNet network part (the QP stays in the safety filter).

The graph: raw observations ``obs`` (B, dim) -> fixed normalisation -> actor MLP ->
tanh head -> outputs ``action`` (B, 2) (u_ref in [-1, 1]), ``u_ref`` (B, 2) (m/s,
rad/s) and ``gains`` (B, G) (1/s, slot order of
:class:`~pe_policy.barriernet_policy.GainLayout`). Metadata: the contract of every
exported policy (:class:`~pe_policy.contract.PolicyMetadata`) plus
``pe.barriernet`` (layout, the filter parameters trained with, the method).
``onnx.checker`` runs on every export; the file loads with
:meth:`pe_policy.barriernet_policy.BarrierNetPolicy.from_onnx` (and, u_ref only,
as a plain ``OnnxPolicy``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pe_policy.barriernet_policy import KEY_BARRIERNET, OUTPUT_GAINS, OUTPUT_U_REF, GainLayout
from pe_policy.contract import OUTPUT_NAME, PolicyMetadata
from pe_training.barriernet.network import BarrierNetActorCritic, ExportedBarrierNet, UnitToPhysical
from pe_training.export import save_onnx

BARRIERNET_FORMAT = "1"


def export_barriernet(
    policy: BarrierNetActorCritic,
    layout: GainLayout,
    lo: np.ndarray,
    hi: np.ndarray,
    path: str | Path,
    metadata: PolicyMetadata,
    extra: dict[str, Any],
) -> Path:
    """Write the network part of ``policy`` to ``path`` (one self-contained file).

    ``lo``/``hi``: the robot's command bounds; ``extra``: more ``pe.barriernet``
    metadata (at least ``filter``: the filter config as ``FilterConfig.to_dict()``)."""
    module = ExportedBarrierNet(policy, UnitToPhysical(lo, hi, layout))
    norm = {"epsilon": 0.0, "clip": module.features_extractor.clip, "folded": True, "fixed": True}
    props = PolicyMetadata(**{**metadata.__dict__, "obs_normalization": norm}).to_props()
    props[KEY_BARRIERNET] = json.dumps({"format": BARRIERNET_FORMAT, "layout": layout.to_dict(),
                                        **extra}, sort_keys=True, default=float)
    return save_onnx(module, int(np.prod(policy.observation_space.shape)),
                     [OUTPUT_NAME, OUTPUT_U_REF, OUTPUT_GAINS], props, path, "pe_training.barriernet.export")


def torch_outputs(policy: BarrierNetActorCritic, layout: GainLayout, lo: np.ndarray, hi: np.ndarray,
                  obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u_ref (B, 2), gains (B, G)) of the torch network for raw observations, float64."""
    module = ExportedBarrierNet(policy, UnitToPhysical(lo, hi, layout)).cpu().eval()
    with torch.no_grad():
        _, u, g = module(torch.as_tensor(np.asarray(obs, dtype=np.float32)))
    return u.double().numpy(), g.double().numpy()


__all__ = ["BARRIERNET_FORMAT", "export_barriernet", "torch_outputs"]
