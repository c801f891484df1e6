"""Running a stepwise neuron (cells, then the firing rule) over a chunk of time steps, with state
carried from chunk to chunk: the one driver for float and integer neurons.

Layer-major within a chunk: each cell runs over all the chunk's steps before the next cell starts,
which is exact because a cell's output at step t depends only on its inputs up to t. Only a reset,
which feeds the firing rule back into the last cell's state, forces that cell and the firing rule
into one loop over the steps. The per-cell updates live in `float_cells` (spc.compiler.cells) and
`integer` (docs/integer-spec.md).
"""

from __future__ import annotations

import numpy as np

from spc.compiler.cells import Neuron
from spc.runtime import float_cells, integer, integer_native


def _cell_kernel(cell):
    """The kernel that runs `cell`: native where spc.runtime.integer_native has one, else numpy's
    (the integer ones on int64, whatever integers the layer before produced)."""
    if not cell.integer:
        return float_cells.CELLS[type(cell)]
    fast = integer_native.kernel(cell)
    if fast is not None:
        return fast
    numpy_kernel = integer.CELLS[type(cell)]
    return lambda cell, x, *rest: numpy_kernel(cell, x.astype(np.int64, copy=False), *rest)


def run_neuron(neuron: Neuron, x: np.ndarray, t0: int = 0, state: list | None = None, sats: integer.Saturations | None = None, cell_outputs: list | None = None, terms: integer.Terms | None = None):
    """Run the neuron on the steps t0, t0+1, ... of x [t, B, ...].

    Returns (membrane that fires, output, state); pass the state back with the next chunk. Integer
    saturation events are added to `sats`; `cell_outputs`, when given, receives every cell's output
    (for a cell that is reset, its value before the reset), for calibration. `terms` (the Linear
    producing x, as `integer.Terms`) feed a first cell that adds its input term by term (Xylo's
    synaptic current). A readout that fires (Xylo's) outputs its membrane. Integer spikes (and spike
    counts) are uint8, float spikes in the membrane's dtype."""
    is_integer = neuron.cells[0].integer
    kernels = integer if is_integer else float_cells
    sats = sats if sats is not None else integer.Saturations()
    state = list(state) if state is not None else [None] * len(neuron.cells)
    cell_outputs = [] if cell_outputs is None else cell_outputs
    fire = neuron.fire
    fused = is_integer and integer_native.fuses(neuron)  # the last cell and the firing rule natively
    resets = fire is not None and fire.reset != "none"
    for i, cell in enumerate(neuron.cells[:-1] if resets or fused else neuron.cells):
        if getattr(cell, "input_first", False):
            x, state[i] = integer.synaptic_current(cell, x.astype(np.int64, copy=False), state[i], sats, terms)
        else:
            x, state[i] = _cell_kernel(cell)(cell, x, state[i], t0, sats)
        cell_outputs.append(x)
    if fused:
        h, s, state[-1] = integer_native.fired(neuron.cells[-1], fire, x, state[-1], sats)
        cell_outputs.append(h)
        return h, s, state
    if fire is None:
        return x, x, state
    spike_dtype = (np.uint8 if fire.max_spikes <= 255 else np.int64) if is_integer else x.dtype
    if not resets:
        return x, kernels.spikes(fire, x, t0).astype(spike_dtype), state
    cell = neuron.cells[-1]
    x = x.astype(np.int64, copy=False) if is_integer else x
    step = kernels.membrane_step(cell, x.shape[2:], sats)
    v = state[-1] if state[-1] is not None else np.zeros_like(x[0])
    h, s = np.empty_like(x), np.empty(x.shape, spike_dtype)
    for t in range(x.shape[0]):
        v = step(v, x[t])
        h[t] = v
        fired = kernels.spikes(fire, v[None], t0 + t)[0]
        s[t] = fired
        v = kernels.reset(fire, cell, v, fired, sats)
    state[-1] = v
    cell_outputs.append(h)
    return h, (h if getattr(fire, "readout", False) else s), state
