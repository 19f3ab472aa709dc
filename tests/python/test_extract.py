"""semrsm.extract: the streaming .npy writer (plain numpy) and, with PyTorch, forward hooks."""

from __future__ import annotations

import numpy as np
import pytest

import semrsm
from semrsm import SemrsmError, ShapeError
from semrsm.extract import NpyWriter


def test_writer_equals_concatenation_and_is_memory_mappable(tmp_path):
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(b, 3, 4, 4)) for b in (4, 4, 1)]
    path = tmp_path / "deep" / "layer.npy"
    with NpyWriter(path, dtype=np.float32) as w:
        for b in batches:
            w.append(b)
    assert not (tmp_path / "deep" / "layer.npy.part").exists()
    stored = np.load(path, mmap_mode="r")
    want = np.concatenate(batches).astype(np.float32)
    assert stored.shape == want.shape and stored.dtype == np.float32
    assert np.array_equal(stored, want)
    assert np.array_equal(np.load(path), want)  # also without mmap
    assert np.array_equal(semrsm.gram(stored, matcher="exact"), semrsm.gram(want, matcher="exact"))


def test_writer_errors_leave_no_complete_file(tmp_path):
    path = tmp_path / "a.npy"
    with pytest.raises(ShapeError):
        with NpyWriter(path) as w:
            w.append(np.zeros((2, 3)))
            w.append(np.zeros((2, 4)))
    assert not path.exists()
    with pytest.raises(SemrsmError, match="nothing"):
        NpyWriter(tmp_path / "b.npy").close()
    with pytest.raises(ShapeError):
        NpyWriter(tmp_path / "c.npy").append(np.float64(1.0))


def test_extract_with_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from semrsm.extract import extract

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))
    data = torch.randn(10, 3, 9, 9)
    labels = torch.arange(10)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data, labels), batch_size=4)
    model.train()
    paths = extract(model, loader, {"1": "relu", "2": "conv2"}, tmp_path)
    assert model.training  # mode restored
    with torch.no_grad():
        want_relu = model[1](model[0](data)).numpy()
        want_out = model(data).numpy()
    np.testing.assert_allclose(np.load(paths["1"]), want_relu, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.load(paths["2"], mmap_mode="r"), want_out, rtol=1e-6, atol=1e-6)
    assert paths["2"].name == "conv2.npy"
    with pytest.raises(semrsm.OptionError):
        extract(model, loader, ["nope"], tmp_path)
