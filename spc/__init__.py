"""spc: compile parallel-trained spiking networks into stepwise neuromorphic form, and prove them equal.

    import spc
    compiled = spc.compile(model, (T, B, F), "out/")       # trace, check causality, lower
    report = spc.verify("out/", x, model=model)           # parallel vs stepwise, layer by layer
    y = spc.run("out/", x)                                 # spc's stepwise simulator
"""

__version__ = "0.1.0"

from spc.api import compile, run, verify
from spc.compiler.artifact import Compiled, load
from spc.errors import SpcError
from spc.frontends.torch.neurons import DSN, IF, IPSU, LI, LIF, MPEPSN, PRF, PSN, PSU, RPSU, SPSN, ChannelwisePSN, MaskedPSN, SlidingPSN
from spc.frontends.torch.perstep import PerStep
from spc.frontends.torch.qat import quantization_aware
from spc.frontends import torchvision_stand_in

torchvision_stand_in.install()  # SpikingJelly's model zoo imports torchvision (see that module)

__all__ = ["compile", "run", "verify", "load", "Compiled", "SpcError", "IF", "LI", "LIF", "PSN", "SPSN", "MaskedPSN", "SlidingPSN", "PSU", "IPSU", "RPSU", "MPEPSN", "ChannelwisePSN", "DSN", "PRF", "PerStep", "quantization_aware"]
