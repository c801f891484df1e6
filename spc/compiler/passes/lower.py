"""Rewrite every parallel neuron into its stepwise `Neuron` (cells + firing rule).

Each neuron family owns its lowering (`op.lower()`); this pass only applies them, keeping node names
so that every layer of the stepwise graph can be compared with the same layer of the parallel one.
"""

from __future__ import annotations

from spc.compiler.cells import Neuron
from spc.compiler.ir import Graph


def lower(graph: Graph) -> Graph:
    return graph.with_ops({n.name: n.op.lower() for n in graph.neurons() if not isinstance(n.op, Neuron)})
