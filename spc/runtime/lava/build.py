"""`build`: a compiled model's Lava process network (see `plan`), instantiated and wired, not run."""

from __future__ import annotations

import importlib
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg

from spc.compiler.artifact import Compiled, load
from spc.progress import bar
from spc.runtime.lava.plan import CLASSES, Plan, Proc, graph_for, plan_network
from spc.runtime.recording import check_input
from spc.runtime.synapses import synapse


RUN_CHUNKS = 20
"""Pieces a Lava run is split into for its progress bar (each costs a few milliseconds)."""


@dataclass
class LavaNetwork:
    """The processes of a plan: `source` plays the input, `layers` holds every neuron and synapse by
    its node name, `sinks` every recorded node's sink; `processes` has them all (alignment delays
    too) by plan name. Sinks leave their records in `directory` at the last of `run_steps`."""

    plan: Plan
    steps: int  # spc's steps T
    source: AbstractProcess
    layers: dict[str, AbstractProcess]
    sinks: dict[str, AbstractProcess]
    processes: dict[str, AbstractProcess]
    directory: Path
    owns_directory: bool

    @property
    def run_steps(self) -> int:
        """T plus the latency of the deepest recorded layer."""
        return self.steps + self.plan.depth

    def record_path(self, node: str) -> Path:
        return Path(self.sinks[node].proc_params["path"])

    def run(self, progress: bool = True) -> None:
        """Compile and start the processes, then run `run_steps` steps in up to RUN_CHUNKS pieces, each
        one step of a progress bar (on a terminal); Lava resumes a run exactly where it paused."""
        with bar(self.run_steps, f"Lava {self.plan.tag}: compiling", "step", progress) as steps:
            self.source.create_runtime(run_cfg=Loihi2SimCfg(select_tag=self.plan.tag))
            steps.set_description(f"Lava {self.plan.tag}")
            chunk = math.ceil(self.run_steps / RUN_CHUNKS)
            for start in range(0, self.run_steps, chunk):
                count = min(chunk, self.run_steps - start)
                self.source.run(condition=RunSteps(num_steps=count))
                steps.update(count)

    def close(self) -> None:
        """Stop the runtime (if it started) and remove the records (if `build` chose their folder)."""
        try:
            self.source.stop()
        finally:
            if self.owns_directory:
                shutil.rmtree(self.directory, ignore_errors=True)


def _compiled(compiled_or_directory) -> Compiled:
    return compiled_or_directory if isinstance(compiled_or_directory, Compiled) else load(compiled_or_directory)


def _input_data(plan: Plan, x: np.ndarray, run_steps: int) -> np.ndarray:
    """The source's buffer [B·n, steps] (Lava's time-last layout): x, quantized on the host for
    fixed_pt, then zeros while the deepest layers finish."""
    if plan.encode is not None:
        x = synapse(plan.encode, [x])
    flat = x.reshape(x.shape[0], -1).T
    data = np.zeros((flat.shape[0], run_steps), np.int32 if plan.integer else np.float64)
    data[:, : x.shape[0]] = flat
    return data


def _instance(proc: Proc, extra: dict, integer: bool) -> AbstractProcess:
    params = dict(proc.params, **extra)
    if proc.kind in ("Dense", "DelayDense"):
        params["weights"] = params["weights"].toarray()
    if proc.kind in ("Dense", "DelayDense", "Sparse", "DelaySparse"):
        params["weights"] = params["weights"].astype(np.int32 if integer else np.float64)
    if proc.kind == "DelaySparse":
        delays = params["weights"].astype(np.int64)
        delays.data[:] = params["delays"]  # one delay for every synapse, on the weights' pattern
        params["delays"] = delays
    if proc.kind != "RingBuffer":  # the one class here without a name argument
        params["name"] = proc.name
    module, name = CLASSES[proc.kind].rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**params)


def _wire(plan: Plan, x: np.ndarray, run_steps: int, directory: Path) -> dict[str, AbstractProcess]:
    """Every process of the plan, by name, connected."""
    processes: dict[str, AbstractProcess] = {}
    for i, proc in enumerate(plan.procs.values()):
        if proc.kind == "RingBuffer":
            extra = {"data": _input_data(plan, x, run_steps)}
        elif proc.kind == "Sink":
            extra = {"steps": run_steps, "path": str(directory / f"{i}.npy")}
        elif proc.kind == "Neuron":
            extra = {"steps": x.shape[0]}
        else:
            extra = {}
        processes[proc.name] = _instance(proc, extra, plan.integer)
    for link in plan.links:
        if link.dst_port == "v_ref":  # a RefPort reads a Var of the source
            processes[link.dst].v_ref.connect_var(getattr(processes[link.src], link.src_port))
        else:
            getattr(processes[link.src], link.src_port).connect(getattr(processes[link.dst], link.dst_port))
    return processes


def build(compiled_or_directory, x: np.ndarray | None = None, tag: str = "fixed_pt", steps: int = 1, directory: str | Path | None = None) -> LavaNetwork:
    """The Lava process network of a compiled model (a `Compiled` or its directory) for `tag`,
    playing x [T, B, ...] (without x: one sample of zeros for `steps` steps). Sinks write their
    records into `directory` (default: a new temporary folder, removed by `close()`)."""
    compiled = _compiled(compiled_or_directory)
    graph = graph_for(compiled, tag)
    if x is None:
        x = np.zeros((steps, 1) + tuple(graph.input.op.shape))
    x = check_input(graph, x)
    plan = plan_network(graph, tag, x.shape[1])
    run_steps = x.shape[0] + plan.depth
    owns = directory is None
    directory = Path(tempfile.mkdtemp(prefix="spc-lava-") if owns else directory)
    try:
        processes = _wire(plan, x, run_steps, directory)
    except BaseException:
        if owns:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    layers = {p.layer: processes[p.name] for p in plan.procs.values() if p.name == p.layer and p.kind != "RingBuffer"}
    sinks = {node: processes[probe.sink] for node, probe in plan.probes.items()}
    return LavaNetwork(plan, x.shape[0], processes[graph.input.name], layers, sinks, processes, directory, owns)
