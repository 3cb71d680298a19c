"""Hidden-layer activations of the policy and value networks (config key ``activation``).

``tanh`` is :class:`Tanh`: the same function as ``torch.nn.Tanh``, computed by numpy.
On the pinned CPU build of torch (2.13.0+cpu) ``torch.tanh`` is not vectorised: a
median 268 us for a 2048 x 64 float32 batch, against 21 us for ``numpy.tanh`` and 28 us
for ``torch.sigmoid``; one PPO update of pursuer_bench_flee takes 0.347 s with
``torch.nn.Tanh`` and 0.268 s with this one (``scripts/activation_bench.py`` prints both,
2026-11-26). The two agree to a
float32 rounding step (6e-8 on [-8, 8]); the gradient is ``1 - tanh^2`` as in torch.

Exported graphs (``torch.export`` / ONNX) see ``torch.tanh``: an ONNX ``Tanh`` node.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class _NumpyTanh(torch.autograd.Function):
    """tanh of a CPU tensor by ``numpy.tanh``; backward ``grad * (1 - y^2)``."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        y = torch.from_numpy(np.asarray(np.tanh(x.detach().numpy())))  # asarray: 0-d stays an array
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return grad * (1.0 - y * y)


class Tanh(nn.Tanh):
    """``nn.Tanh`` with numpy's vectorised forward for eager CPU tensors.

    Falls back to ``torch.tanh`` while tracing (``torch.export``/dynamo ONNX export,
    ``torch.jit.trace``) and for any tensor numpy cannot view: not on the CPU, or not
    float32/float64."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (torch.compiler.is_compiling() or torch.jit.is_tracing() or x.device.type != "cpu"
                or x.dtype not in (torch.float32, torch.float64)):
            return torch.tanh(x)
        return _NumpyTanh.apply(x)


#: Config name -> module class (``ppo.activation``, BarrierNet's ``activation``).
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": Tanh, "relu": nn.ReLU, "elu": nn.ELU}

__all__ = ["ACTIVATIONS", "Tanh"]
