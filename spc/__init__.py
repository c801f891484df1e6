"""spc: compile parallel-trained spiking networks into stepwise neuromorphic form, and prove them equal.

    import spc
    compiled = spc.compile(model, (T, B, F), "out/")       # trace, check causality, lower
    report = spc.verify("out/", x, model=model)           # parallel vs stepwise, layer by layer
    y = spc.run("out/", x)                                 # spc's stepwise simulator

The public names are imported on first use, so that `import spc` (and with it `spc --help` and
`spc --version`) does not load torch.
"""

import importlib

__version__ = "0.1.0"

_NEURONS = ("IF", "LI", "LIF", "PSN", "SPSN", "MaskedPSN", "SlidingPSN", "PSU", "IPSU", "RPSU", "MPEPSN", "ChannelwisePSN", "DSN", "PRF")
_EXPORTS = {
    "compile": "spc.api",
    "run": "spc.api",
    "verify": "spc.api",
    "load": "spc.compiler.artifact",
    "Compiled": "spc.compiler.artifact",
    "SpcError": "spc.errors",
    **dict.fromkeys(_NEURONS, "spc.frontends.torch.neurons"),
    "PerStep": "spc.frontends.torch.perstep",
    "quantization_aware": "spc.frontends.torch.qat",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'spc' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


from spc.frontends import torchvision_stand_in  # noqa: E402

torchvision_stand_in.install()  # SpikingJelly's model zoo imports torchvision (see that module)
