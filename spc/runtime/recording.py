"""What a run of a graph produced, and the checks every runtime applies to its input."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spc.compiler.ir import Graph
from spc.errors import SpcError


@dataclass
class Recording:
    """Every node's output and every neuron's membrane, as time-major numpy arrays [T, B, ...]."""

    output_name: str  # which entry of `outputs` is the model's output
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    membranes: dict[str, np.ndarray] = field(default_factory=dict)
    saturations: dict[str, int] = field(default_factory=dict)  # integer runs: sat_W events per layer
    cell_outputs: dict[str, list[np.ndarray]] = field(default_factory=dict)  # when asked: every cell's output

    @property
    def output(self) -> np.ndarray:
        return self.outputs[self.output_name]


def check_input(graph: Graph, x: np.ndarray, subject: str = "input") -> np.ndarray:
    """Validate a time-major input [T, B, *shape] against the graph; return it as a numpy array."""
    x = np.asarray(x)
    expected = graph.input.op.shape
    if x.dtype.kind not in "fiub":
        raise SpcError(subject, f"has dtype {x.dtype}; expected a numeric array", "save the input as float32")
    if x.ndim != 2 + len(expected) or x.shape[2:] != tuple(expected):
        want = ", ".join(["T", "B"] + [str(d) for d in expected])
        raise SpcError(subject, f"has shape {x.shape}; this model takes time-major [{want}]", "reshape the input (time first, then batch)")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise SpcError(subject, f"has shape {x.shape}: no time steps or no samples", "give at least one step and one sample")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise SpcError(subject, "contains NaN or Inf", "clean the input data")
    limit = graph.time_steps
    if limit is not None and x.shape[0] > limit:
        layer = next(n.name for n in graph.neurons() if n.op.time_steps == limit)
        raise SpcError(subject, f"has T = {x.shape[0]} steps, but layer '{layer}' is time-indexed and defined only for T <= {limit}", f"run at most {limit} steps, or retrain that layer as a SlidingPSN, which runs for any length")
    return x


def input_warnings(compiled, x: np.ndarray) -> list[str]:
    """What the integer form does to this input that its user should know: a model calibrated on
    integer (spike) input quantizes with scale 1, so non-integer (analog) values are rounded, and an
    activity count takes them for spikes."""
    calibration = (compiled.quantization or {}).get("calibration", {})
    if compiled.integer is None or not calibration.get("input_is_integer"):
        return []
    fractional = np.count_nonzero(x != np.rint(x))
    if not fractional:
        return []
    return [
        f"{fractional / x.size:.1%} of its values are not integers, but the model was calibrated on integer (spike) input, so its integer form "
        f"rounds them to integers (e.g. analog values in [0, 1) to 0 or 1) and counts their synapses as accumulates, not multiply-accumulates; "
        f"recompile with --calib on inputs like these, or give spike input"
    ]
