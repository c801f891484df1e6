"""`Neuron`: one layer of spc's stepwise neurons (cells, then the firing rule) as a Lava Process.

The batch is folded into the neuron axis: the ports carry `batch · prod(shape)` values, sample-major,
the order of spc's `[B, *shape]` per-step tensors (stochastic firing hashes that flat index).

Each Lava step the model receives the synaptic input, adds the constant `offset` (the biases of the
synaptic layers before it, which Lava's Dense cannot hold), and advances spc's own kernels by one
step, carrying their state: `fixed_pt` runs the integer kernels of docs/integer-spec.md on an
integer neuron (spc.compiler.qcells), `floating_pt` the float kernels of spc.compiler.cells on a
float neuron, in float64. Lava step `s` (from 0) is spc's step `s − latency`: the layer idles, and
sends zeros, until its first input has travelled through `latency` Dense layers, and after its
`steps` steps (the input's T; None: as long as its cells are defined).

Ports: `a_in` (synaptic input), `s_out` (the layer's output: spikes, or the membrane of a
readout), `v_out` (the membrane that fires, before any reset). Var `saturations`: sat_W events so far.
"""

from __future__ import annotations

import math

import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from spc.runtime.integer import Saturations
from spc.runtime.neurons import run_neuron


class Neuron(AbstractProcess):
    """`neuron`: a `spc.compiler.cells.Neuron`; `offset`: per sample, in the layer's `shape`."""

    def __init__(self, *, neuron, shape: tuple[int, ...], batch: int, latency: int, offset: np.ndarray, steps: int | None = None, name: str | None = None):
        super().__init__(neuron=neuron, shape=tuple(shape), batch=batch, latency=latency, offset=offset, steps=steps, name=name)
        size = (batch * math.prod(shape),)
        self.a_in = InPort(shape=size)
        self.s_out = OutPort(shape=size)
        self.v_out = OutPort(shape=size)
        self.saturations = Var(shape=(1,), init=0)


class _NeuronModel(PyLoihiProcessModel):
    dtype: type  # of the values the model computes with

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.neuron = proc_params["neuron"]
        shape = proc_params["shape"]
        self.layout = (1, proc_params["batch"]) + tuple(shape)
        self.latency = proc_params["latency"]
        self.offset = np.asarray(proc_params["offset"], self.dtype).reshape(shape)
        self.limit = min(n for n in (self.neuron.time_steps, proc_params["steps"], np.inf) if n is not None)
        self.state, self.sats = None, Saturations()

    def run_spk(self):
        x = self.a_in.recv()
        t = self.time_step - 1 - self.latency
        if not 0 <= t < self.limit:
            zeros = np.zeros(x.shape, self.dtype)
            self.s_out.send(zeros)
            self.v_out.send(zeros)
            return
        x = np.asarray(x, self.dtype).reshape(self.layout) + self.offset
        h, out, self.state = run_neuron(self.neuron, x, t, self.state, self.sats)
        self.s_out.send(out.reshape(-1))
        self.v_out.send(h.reshape(-1))
        self.saturations[0] = self.sats.count


@implements(proc=Neuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNeuronFixed(_NeuronModel):
    """docs/integer-spec.md, bit for bit (spc's integer kernels, one step at a time)."""

    dtype = np.int64
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=32)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=32)
    saturations: np.ndarray = LavaPyType(np.ndarray, np.int64)


@implements(proc=Neuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyNeuronFloat(_NeuronModel):
    """spc.compiler.cells semantics in float64 (spc's float kernels, one step at a time)."""

    dtype = np.float64
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    saturations: np.ndarray = LavaPyType(np.ndarray, np.int64)
