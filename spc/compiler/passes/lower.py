"""Rewrite every parallel neuron into its stepwise form (cells + firing rule).

Each neuron family owns its lowering (`op.lower()`); this pass only applies them, keeping node names
so that every layer of the stepwise graph can be compared with the same layer of the parallel one.

Most families lower to one `Neuron`. A neuron whose membrane is a sum of filters (PSU: d − θ·r) lowers
to a `Subgraph`: branch neurons and `Add`s named `layer:suffix`, then a last node that keeps the
layer's own name and holds its membrane and firing rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spc.compiler.cells import DelayLine, Leaky, Neuron
from spc.compiler.ir import Graph, NeuronOp, Node, Op

INPUT = ""
"""In a Subgraph, the name that stands for the layer's input."""


@dataclass(frozen=True)
class Subgraph:
    """`nodes`: (suffix, op, inputs) in topological order; inputs are earlier suffixes or INPUT. The
    last node's suffix is ignored: it takes the layer's name."""

    nodes: tuple[tuple[str, Op, tuple[str, ...]], ...]

    def expand(self, name: str, source: str) -> list[Node]:
        names = {INPUT: source}
        nodes = []
        for i, (suffix, op, inputs) in enumerate(self.nodes):
            own = name if i == len(self.nodes) - 1 else f"{name}:{suffix}"
            nodes.append(Node(own, op, tuple(names[s] for s in inputs)))
            names[suffix] = own
        return nodes


def passthrough() -> Leaky:
    """The cell that holds a sum as a membrane: y = x (decay 0, gain 1). Its integer form is a pure
    shift, which realigns the sum onto the membrane's scale exactly."""
    return Leaky(decay=np.zeros(1), gain=np.ones(1))


def lag() -> DelayLine:
    """A one-step delay cell, y[t] = x[t − 1]."""
    return DelayLine(taps=np.array([[1.0, 0.0]]), bias=np.zeros(1))


def lower(graph: Graph) -> Graph:
    nodes: list[Node] = []
    for node in graph.nodes:
        form = node.op.lower() if isinstance(node.op, NeuronOp) and not isinstance(node.op, Neuron) else node.op
        if isinstance(form, Subgraph):
            nodes += form.expand(node.name, node.inputs[0])
        else:
            nodes.append(Node(node.name, form, node.inputs))
    return Graph(tuple(nodes), graph.outputs)
