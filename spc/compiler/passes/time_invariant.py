"""Opt-in: make time-indexed kernels time-invariant, so the network runs for any length.

A PSN (causal), MaskedPSN, IPSU or RPSU weighs its inputs by a T×T matrix; its exact stepwise form
(`StepIndexed`) is defined for t < T only. This pass replaces each such kernel by its projection on
time-invariant (Toeplitz) kernels, fitted by the current input plus a few exponentials whose decays
are shift decays 1 − 2^−n (`timekernel.fit_exponentials`), and the per-step bias by its mean. That
changes the model: every replacement is recorded as a `KernelApproximation` (the kernel's relative
error, the terms), never applied silently; `spc verify --model` then measures its effect on spikes
and accuracy as an approximation, not an equivalence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from spc.compiler.ir import Graph
from spc.errors import SpcError


MAX_TERMS = 8
"""The fit tries every set of up to MAX_TERMS − 1 of the 16 shift decays (about 26 000 least-squares fits)."""


@dataclass(frozen=True)
class KernelApproximation:
    layer: str
    kind: str
    kernel_relative_error: float  # ||W − W'||_F / ||W||_F, W' the fitted time-invariant kernel
    toeplitz_relative_error: float  # the part of it that no time-invariant kernel avoids
    bias_max_change: float
    terms: list = field(default_factory=list)  # [{"decay", "gain"}], the current input first

    def to_json(self) -> dict:
        return {"layer": self.layer, "kind": self.kind, "what": f"replaced the time-indexed kernel by {len(self.terms)} time-invariant terms (current input + shift-decay exponentials), the per-step bias by its mean", "kernel_relative_error": self.kernel_relative_error, "toeplitz_relative_error": self.toeplitz_relative_error, "bias_max_change": self.bias_max_change, "terms": self.terms}


def approximate_time_invariant(graph: Graph, max_terms: int = 4) -> tuple[Graph, list[KernelApproximation]]:
    """Replace every time-indexed kernel; ops provide `time_invariant(max_terms) -> (op, info)`, and
    the PSN family's causal T×T kernels (`effective_weight()`, `bias`) are converted here."""
    if not 1 <= max_terms <= MAX_TERMS:
        raise SpcError(f"time-invariant terms {max_terms} (--time-invariant, time_invariant=)", f"must be between 1 (the current input alone) and {MAX_TERMS}", f"give 1 to {MAX_TERMS} terms")
    from spc.frontends.torch.neurons.timekernel import psn_time_invariant  # the PSN family lives with the torch frontend

    replaced, approximations = {}, []
    for node in graph.neurons():
        op = node.op
        if op.time_steps is None:
            continue
        convert = getattr(op, "time_invariant", None) or (partial(psn_time_invariant, op) if hasattr(op, "effective_weight") else None)
        if convert is None:
            raise SpcError(f"layer '{node.name}' ({op.kind})", f"is defined for T = {op.time_steps} steps only and has no time-invariant approximation", "compile without the time-invariant approximation and run sequences of at most T steps")
        replaced[node.name], info = convert(max_terms)
        approximations.append(KernelApproximation(node.name, op.kind, **info))
    return graph.with_ops(replaced), approximations
