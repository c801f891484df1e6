"""Bounded fuzzing of every loader spc has (hypothesis): arbitrary bytes and mutations of valid
files either load or raise spc's own clean error, never anything else. `make fuzz` runs longer."""

import json
import resource

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spc.errors import SpcError

import fuzz_targets as targets  # noqa: E402  (fuzz/ is on the path: conftest.py)

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    return targets.seed_artifact(tmp_path_factory.mktemp("fuzz"))


def _clean(call):
    try:
        call()
    except SpcError:
        pass


def _flips(data: bytes):
    """Strategies for corrupting valid bytes: flipped bytes, truncation, appended garbage."""
    return st.one_of(
        st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1, max_size=8).map(lambda fl: bytes(b if i not in dict(fl) else dict(fl)[i] for i, b in enumerate(data))),
        st.integers(0, len(data)).map(lambda n: data[:n]),
        st.binary(max_size=64).map(lambda tail: data + tail),
    )


def _valid_npy(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("npy") / "x.npy"
    np.save(path, np.ones((5, 2, 4), np.float32))
    return path.read_bytes()


@FUZZ
@given(data=st.binary(max_size=256))
def test_npy_loader_on_random_bytes(seed, data):
    graph = __import__("spc").load(seed).integer
    _clean(lambda: targets.npy(data, graph))


def test_npy_loader_on_corrupted_files(seed, tmp_path_factory):
    graph = __import__("spc").load(seed).integer
    valid = _valid_npy(tmp_path_factory)

    @FUZZ
    @given(data=_flips(valid))
    def run(data):
        _clean(lambda: targets.npy(data, graph))

    run()


def test_checkpoint_loader_on_corrupted_files(tmp_path_factory):
    import torch

    path = tmp_path_factory.mktemp("pt") / "w.pt"
    torch.save({"0.weight": torch.ones(2, 3), "0.bias": torch.zeros(2)}, path)
    valid = path.read_bytes()

    @FUZZ
    @given(data=st.one_of(_flips(valid), st.binary(max_size=128)))
    def run(data):
        _clean(lambda: targets.checkpoint(data))

    run()


json_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.text(max_size=8), lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


def test_graph_json_mutations(seed):
    doc = json.loads((seed / "integer" / "graph.json").read_text())

    @FUZZ
    @given(path=st.lists(st.one_of(st.integers(0, 50), st.sampled_from(["op", "kind", "weight", "bias", "cells", "fire", "inputs", "shape", "decay", "shift", "threshold", "lut", "taps", "scale", "bits"])), min_size=1, max_size=6), value=json_values)
    def run(path, value):
        mutated = targets.mutate_json(doc, path, value)
        _clean(lambda: targets.graph_directory(seed, graph_json=targets.json_bytes(mutated)))

    run()


def test_graph_json_random_bytes_and_weights_corruption(seed):
    weights = (seed / "integer" / "weights.npz").read_bytes()

    @FUZZ
    @given(junk=st.binary(max_size=128), corrupted=_flips(weights))
    def run(junk, corrupted):
        _clean(lambda: targets.graph_directory(seed, graph_json=junk))
        _clean(lambda: targets.graph_directory(seed, weights=corrupted))

    run()


def test_regression_zip_member_of_an_unknown_zip_version(seed):
    """Found by `make fuzz`: zipfile raised NotImplementedError on a damaged weights.npz."""
    data = bytearray((seed / "integer" / "weights.npz").read_bytes())
    central = data.rfind(b"PK\x01\x02")  # the central directory entry of the last member
    data[central + 6] = 145  # "version needed to extract": 14.5
    with pytest.raises(SpcError, match="cannot be read"):
        targets.graph_directory(seed, weights=bytes(data))


def test_nir_reader_on_corrupted_files(seed):
    valid = (seed / "model.nir").read_bytes()

    @FUZZ
    @given(data=st.one_of(_flips(valid), st.binary(max_size=128)))
    def run(data):
        _clean(lambda: targets.nir_file(data))

    run()


def test_regression_nir_file_with_a_damaged_symbol_table(seed):
    """Found by `make fuzz`: h5py raised RuntimeError ("bad symbol table node signature")."""
    data = (seed / "model.nir").read_bytes()
    last = data.rfind(b"SNOD")  # the symbol table of a group deep in the file
    with pytest.raises(SpcError, match="damaged HDF5 file"):
        targets.nir_file(data[:last] + b"XNOD" + data[last + 4 :])


def test_onnx_files_read_back_on_corrupted_files(seed):
    valid = (seed / "model_seq.onnx").read_bytes()
    targets.onnx_file(seed, valid)  # the valid file runs

    @FUZZ
    @given(data=st.one_of(_flips(valid), st.binary(max_size=128)))
    def run(data):
        _clean(lambda: targets.onnx_file(seed, data))

    run()


def test_an_onnx_file_without_spc_metadata_is_refused(seed):
    import onnx

    model = onnx.load(seed / "model_seq.onnx")
    del model.metadata_props[:]
    with pytest.raises(SpcError, match="not an ONNX model spc wrote"):
        targets.onnx_file(seed, model.SerializeToString())


def _peak_memory() -> int:
    """The process's largest resident set so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_size_bombs_are_refused_before_they_are_read(seed):
    """Archives declaring up to 4 GiB (holding up to 128 MiB) load or are refused, and reading them
    never takes more memory than a fraction of what they declare: declared sizes are checked before reading."""
    before = _peak_memory()

    @settings(FUZZ, max_examples=40)
    @given(kind=st.sampled_from(targets.BOMBS), elements=st.integers(0, 29).flatmap(lambda e: st.integers(2**e // 2, 2**e)), held=st.integers(0, 2**22))
    @example(kind="nir", elements=3 * 2**26, held=0)  # 1.5 GiB declared in a few KiB of HDF5
    @example(kind="npz-deflated", elements=2**24, held=2**27)  # 128 MiB inflated from 128 KiB
    @example(kind="npz-extra", elements=2**24, held=2**27)
    @example(kind="npz", elements=2**28, held=64)  # 2 GiB declared, 64 bytes held
    def run(kind, elements, held):
        _clean(lambda: targets.size_bomb(seed, kind, elements, held))

    run()
    assert _peak_memory() - before < 2**26  # a bomb that was read would take 128 MiB and more
