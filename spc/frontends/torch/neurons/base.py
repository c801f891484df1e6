"""What every neuron family provides: an IR operation that can run its parallel form in torch
and lower itself to the stepwise `Neuron` (cells + firing rule)."""

from __future__ import annotations

import numpy as np
import torch

from spc.compiler.cells import Neuron
from spc.compiler.ir import NeuronOp


class ParallelNeuronOp(NeuronOp):
    """A trained neuron layer in its parallel (training) form."""

    def parallel(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the whole sequence x [T, B, ...]; return (membrane h that fires, output)."""
        raise NotImplementedError

    def lower(self) -> Neuron:
        """The equivalent stepwise neuron, or, for a membrane that sums several filters, a
        `spc.compiler.passes.lower.Subgraph` of branch neurons whose last node is the layer."""
        raise NotImplementedError


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A parameter's value as a numpy array that owns its memory."""
    return t.detach().cpu().numpy().copy()
