"""Refuse neurons whose parallel form uses future inputs, or (opted in) drop the future part.

A full PSN's T×T weight may reach above the diagonal, and a masked PSN with λ < 1 is dense: no
stepwise neuron can compute them without waiting for inputs that have not arrived. With
`drop_future=True` the upper triangle is dropped (the layer becomes a causal PSN) and the share of
weight mass removed is recorded as an `Approximation`, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from spc.compiler.ir import Graph
from spc.errors import SpcError


@dataclass(frozen=True)
class Approximation:
    layer: str
    kind: str
    dropped_weight_share: float

    def to_json(self) -> dict:
        return {"layer": self.layer, "kind": self.kind, "what": f"dropped the weights on future inputs (upper triangle), {100 * self.dropped_weight_share:.1f}% of the weight mass", "dropped_weight_share": self.dropped_weight_share}


def check_causality(graph: Graph, drop_future: bool = False) -> tuple[Graph, list[Approximation]]:
    """Operations that can be non-causal provide `future_share()`, `causality_hint()` and `drop_future()`."""
    replaced, approximations = {}, []
    for node in graph.neurons():
        share_of = getattr(node.op, "future_share", None)
        if share_of is None or share_of() == 0.0:
            continue
        share = share_of()
        if not drop_future:
            hint = node.op.causality_hint()
            raise SpcError(
                f"layer '{node.name}' ({node.op.kind})",
                f"uses future inputs: {100 * share:.1f}% of its weight mass lies above the diagonal ({hint}), so no stepwise neuron can compute it",
                "retrain it as a MaskedPSN (λ = 1) or SlidingPSN, which are causal; or pass --drop-future (Python: drop_future=True) to drop the upper triangle, with the effect reported by `spc verify --model`",
            )
        replaced[node.name] = node.op.drop_future()
        approximations.append(Approximation(node.name, node.op.kind, share))
    return graph.with_ops(replaced), approximations
