"""The chunked simulator: results do not depend on the chunk length (state carries exactly across
chunk boundaries), for float and integer graphs with every cell and firing rule."""

import numpy as np
import pytest
import torch
from torch import nn

import spc
from spc.runtime.sim import run_stepwise


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 12), spc.SlidingPSN(k=4, exp_init=False),
        nn.Linear(12, 12), spc.MaskedPSN(k=3, T=20, lambda_init=1.0),
        nn.Linear(12, 12), spc.SPSN(tau_syn=3.0, tau_mem=5.0, stochastic=True, seed=3),
        nn.Linear(12, 12), spc.LIF(tau=3.0, v_reset=None),
        nn.Linear(12, 4), spc.LI(tau=3.0),
    )  # fmt: skip


@pytest.fixture(scope="module")
def compiled():
    x = (np.random.default_rng(0).random((20, 6, 5)) < 0.5).astype(np.float32)
    return spc.compile(_model(), x, calib=x), x


@pytest.mark.parametrize("form", ["stepwise", "integer"])
def test_chunk_length_does_not_change_any_value(compiled, form):
    c, x = compiled
    graph = getattr(c, form)
    whole = run_stepwise(graph, x, chunk=20)
    assert any(whole.outputs[n.name].sum() for n in graph.neurons() if n.op.spiking)
    for chunk in (1, 3, 7):
        parts = run_stepwise(graph, x, chunk=chunk)
        for name, value in whole.outputs.items():
            np.testing.assert_array_equal(parts.outputs[name], value, err_msg=f"{form} {name} chunk={chunk}")
        for name, value in whole.membranes.items():
            np.testing.assert_array_equal(parts.membranes[name], value)
        assert parts.saturations == whole.saturations


def test_recording_only_the_output_gives_the_same_output(compiled):
    c, x = compiled
    assert set(run_stepwise(c.integer, x, record="output").outputs) == {c.integer.outputs[0]}
    np.testing.assert_array_equal(run_stepwise(c.integer, x, record="output", chunk=2).output, run_stepwise(c.integer, x).output)


def test_streaming_chunks_gives_the_same_output(compiled):
    from spc.runtime.sim import stream

    c, x = compiled
    pieces = list(stream(c.integer, (x[t : t + 6] for t in range(0, 20, 6))))
    assert [p.shape[0] for p in pieces] == [6, 6, 6, 2]
    np.testing.assert_array_equal(np.concatenate(pieces), run_stepwise(c.integer, x).output)


def test_teacher_replaces_only_neuron_outputs(compiled):
    c, x = compiled
    floats = run_stepwise(c.stepwise, x)
    taught = run_stepwise(c.integer, x, teacher=floats.outputs)
    first_neuron = c.integer.neurons()[0].name
    np.testing.assert_array_equal(taught.outputs[first_neuron], run_stepwise(c.integer, x).outputs[first_neuron])
