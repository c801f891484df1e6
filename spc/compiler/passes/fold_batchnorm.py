"""Fold an inference-mode BatchNorm into the Linear or Conv that feeds it.

`BN(W x + b) = (s·W) x + (s·b + t)` per output channel. A BatchNorm is folded only when its producer
is a Linear/Conv with no other consumer; any other BatchNorm stays (every runtime implements it).
"""

from __future__ import annotations

from spc.compiler.ir import BatchNorm, Conv, Graph, Linear, Node


def fold_batchnorm(graph: Graph) -> Graph:
    nodes = {n.name: n for n in graph.nodes}
    renamed: dict[str, str] = {}  # folded BatchNorm -> the node that now produces its value
    for node in graph.nodes:
        if not isinstance(node.op, BatchNorm):
            continue
        producer = nodes[node.inputs[0]]
        if not isinstance(producer.op, (Linear, Conv)) or len(graph.consumers(producer.name)) != 1:
            continue
        op, bn = producer.op, node.op
        scale = bn.scale.reshape((-1,) + (1,) * (op.weight.ndim - 1))
        bias = bn.shift if op.bias is None else op.bias * bn.scale + bn.shift
        nodes[producer.name] = Node(producer.name, op.replace(weight=op.weight * scale, bias=bias), producer.inputs)
        renamed[node.name] = producer.name
        del nodes[node.name]
    rewired = tuple(Node(n.name, n.op, tuple(renamed.get(i, i) for i in n.inputs)) for n in nodes.values())
    return Graph(rewired, tuple(renamed.get(o, o) for o in graph.outputs))
