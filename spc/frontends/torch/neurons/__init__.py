"""spc's trainable neurons, one family per module, each next to its IR operation and lowering."""

from spc.frontends.torch.neurons.lif import IF, LI, LIF, LIFOp, LIOp
from spc.frontends.torch.neurons.psn import PSN, MaskedPSN, MaskedPSNOp, PSNOp, SlidingPSN, SlidingPSNOp
from spc.frontends.torch.neurons.spsn import SPSN, SPSNOp
from spc.frontends.torch.neurons.base import ParallelNeuronOp

TRAINABLE = (PSN, MaskedPSN, SlidingPSN, SPSN, IF, LIF, LI)

__all__ = ["IF", "LI", "LIF", "LIFOp", "LIOp", "PSN", "MaskedPSN", "MaskedPSNOp", "PSNOp", "SlidingPSN", "SlidingPSNOp", "SPSN", "SPSNOp", "ParallelNeuronOp", "TRAINABLE"]
