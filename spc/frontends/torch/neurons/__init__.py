"""spc's trainable neurons, one family per module, each next to its IR operation and lowering."""

from spc.frontends.torch.neurons.lif import IF, LI, LIF, LIFOp, LIOp
from spc.frontends.torch.neurons.psn import PSN, MaskedPSN, MaskedPSNOp, PSNOp, SlidingPSN, SlidingPSNOp
from spc.frontends.torch.neurons.spsn import SPSN, SPSNOp
from spc.frontends.torch.neurons.base import ParallelNeuronOp
from spc.frontends.torch.neurons.psu import IPSU, PSU, RPSU, IPSUOp, PSUOp, RPSUOp
from spc.frontends.torch.neurons.mpe import MPEPSN, MPEPSNOp
from spc.frontends.torch.neurons.channelwise import ChannelwisePSN, ChannelwisePSNOp
from spc.frontends.torch.neurons.dsn import DSN, DSNOp
from spc.frontends.torch.neurons.prf import PRF, PRFOp
from spc.frontends.torch.neurons.timekernel import TimeInvariantPSNOp

TRAINABLE = (PSN, MaskedPSN, SlidingPSN, SPSN, IF, LIF, LI, PSU, IPSU, RPSU, MPEPSN, ChannelwisePSN, DSN, PRF)

__all__ = [
    "IF", "LI", "LIF", "LIFOp", "LIOp", "PSN", "MaskedPSN", "MaskedPSNOp", "PSNOp", "SlidingPSN", "SlidingPSNOp", "SPSN", "SPSNOp",
    "PSU", "IPSU", "RPSU", "PSUOp", "IPSUOp", "RPSUOp", "MPEPSN", "MPEPSNOp", "ChannelwisePSN", "ChannelwisePSNOp",
    "DSN", "DSNOp", "PRF", "PRFOp", "TimeInvariantPSNOp", "ParallelNeuronOp", "TRAINABLE",
]
