"""`Sink`: records what arrives on its ports at every step and hands the whole record back at once.

Lava's `Var.get()` and `Monitor` move one element per message (~25 µs each); a sink instead keeps
its buffer `[steps, ports, size]` in its own process and, at its last step, writes it with one
`np.save` to `path`, which the runner reads after the run. Port `s_in` takes a layer's output,
`v_in` (when `membranes`) its membrane. With `voltage`, the sink instead reads a stock neuron's
voltage `v` through the RefPort `v_ref` after every step (Lava's management phase, after the
neuron's update), and records it as both: how a host reads the membrane of a stock readout, which
sends only spikes.
"""

from __future__ import annotations

import os

import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyRefPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, RefPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class Sink(AbstractProcess):
    def __init__(self, *, size: int, steps: int, path: str, membranes: bool, voltage: bool = False, name: str | None = None):
        super().__init__(size=size, steps=steps, path=path, membranes=membranes, voltage=voltage, name=name)
        self.s_in = InPort(shape=(size,))
        self.v_in = InPort(shape=(size,))
        self.v_ref = RefPort(shape=(size,))


class _SinkModel(PyLoihiProcessModel):
    dtype: type

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.steps, self.path, self.membranes = proc_params["steps"], proc_params["path"], proc_params["membranes"]
        self.voltage = proc_params.get("voltage", False)
        self.buffer = np.zeros((self.steps, 1 + self.membranes, proc_params["size"]), self.dtype)

    def run_spk(self):
        if not self.voltage:
            self.store([self.s_in.recv(), self.v_in.recv()] if self.membranes else [self.s_in.recv()])

    def post_guard(self):
        return self.voltage

    def run_post_mgmt(self):
        v = self.v_ref.read()
        self.store([v, v] if self.membranes else [v])

    def store(self, received: list) -> None:
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
    v_ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32, precision=32)


@implements(proc=Sink, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySinkFloat(_SinkModel):
    dtype = np.float64
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    v_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    v_ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, float)
