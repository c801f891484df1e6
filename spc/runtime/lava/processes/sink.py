"""`Sink`: records what arrives on its ports at every step and hands the whole record back at once.

Lava's `Var.get()` and `Monitor` move one element per message (~25 µs each); a sink instead keeps
its buffer `[steps, ports, size]` in its own process and, at its last step, writes it with one
`np.save` to `path`, which the runner reads after the run. Port `s_in` takes a layer's output,
`v_in` (when `membranes`) its membrane.
"""

from __future__ import annotations

import os

import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class Sink(AbstractProcess):
    def __init__(self, *, size: int, steps: int, path: str, membranes: bool, name: str | None = None):
        super().__init__(size=size, steps=steps, path=path, membranes=membranes, name=name)
        self.s_in = InPort(shape=(size,))
        self.v_in = InPort(shape=(size,))


class _SinkModel(PyLoihiProcessModel):
    dtype: type

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.steps, self.path, self.membranes = proc_params["steps"], proc_params["path"], proc_params["membranes"]
        self.buffer = np.zeros((self.steps, 1 + self.membranes, proc_params["size"]), self.dtype)

    def run_spk(self):
        received = [self.s_in.recv(), self.v_in.recv()] if self.membranes else [self.s_in.recv()]
        if self.time_step <= self.steps:
            self.buffer[self.time_step - 1] = received
        if self.time_step == self.steps:
            np.save(self.path + ".part.npy", self.buffer)
            os.replace(self.path + ".part.npy", self.path)  # the runner never sees half a file


@implements(proc=Sink, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySinkFixed(_SinkModel):
    dtype = np.int64
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=32)
    v_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=32)


@implements(proc=Sink, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySinkFloat(_SinkModel):
    dtype = np.float64
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    v_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
