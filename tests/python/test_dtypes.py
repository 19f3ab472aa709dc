"""Every dtype and layout users have (issue 12, point 2): float16, bfloat16 (ml_dtypes; torch
tensors when torch is installed), ints: computed exactly as their float32 values; 2-D (N, D)
input is S = 1 (semantic = spatio-semantic)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import semrsm
from semrsm import _tiles
from conftest import ref_gram


def _x(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(7, 3, 4, 2)).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float16, np.int8, np.int32, np.uint8, np.int64])
@pytest.mark.parametrize("matcher", ["exact", "none"])
def test_numpy_dtypes_equal_their_float32_values(dtype, matcher):
    raw = _x() * (4 if np.issubdtype(dtype, np.integer) else 1)
    if dtype is np.uint8:
        raw = np.abs(raw)
    x = raw.astype(dtype)
    want = semrsm.gram(x.astype(np.float32), matcher=matcher)
    np.testing.assert_array_equal(semrsm.gram(x, matcher=matcher), want)
    K = semrsm.build(x, kernel="rbf", matcher=matcher)
    np.testing.assert_array_equal(K, semrsm.build(x.astype(np.float32), kernel="rbf", matcher=matcher))


@pytest.mark.parametrize("name", ["bfloat16", "float8_e4m3fn"])
def test_ml_dtypes_equal_their_float32_values(name, tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = _x(1).astype(getattr(ml_dtypes, name))
    as32 = x.astype(np.float32)
    for matcher in ("exact", "none"):
        np.testing.assert_array_equal(semrsm.gram(x, matcher=matcher), semrsm.gram(as32, matcher=matcher))
    np.testing.assert_array_equal(semrsm.build(x, kernel="cosine"), semrsm.build(as32, kernel="cosine"))
    y = _x(2).astype(getattr(ml_dtypes, name))
    assert semrsm.layer_cka(x, y) == semrsm.layer_cka(as32, y.astype(np.float32))


def test_torch_bfloat16_and_float16_tensors():
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(_x(3))
    for dtype in (torch.bfloat16, torch.float16):
        t = x.to(dtype)
        np.testing.assert_array_equal(semrsm.gram(t), semrsm.gram(t.float().numpy()))


def test_2d_input_is_one_position():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(9, 6))
    G = semrsm.gram(x)  # layout "auto" -> "nd"
    xc = x - x.mean(axis=0)
    np.testing.assert_allclose(G, xc @ xc.T, rtol=1e-12, atol=1e-12)
    # S = 1: every matcher is the identity, semantic = spatio-semantic
    for matcher in ("exact", "none", "greedy", "auction"):
        np.testing.assert_allclose(semrsm.gram(x, matcher=matcher), G, rtol=1e-12, atol=1e-12)
    # the same as an explicit (N, 1, D) array
    np.testing.assert_array_equal(semrsm.gram(x, layout="nd"), semrsm.gram(x[:, None, :], layout="nsc"))
    np.testing.assert_allclose(semrsm.gram(x, center=False), ref_gram(x[:, None, :]), rtol=1e-12)
    with pytest.raises(semrsm.ShapeError, match=r"layout 'nsc' needs a 3-D x, got 2-D"):
        semrsm.gram(x, layout="nsc")


def test_2d_in_cka_functions():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 3))
    full = semrsm.cka(semrsm.build(x), semrsm.build(y), debiased=True)
    assert semrsm.layer_cka(x, y, debiased=True) == pytest.approx(full, rel=1e-10)
    assert semrsm.minibatch_cka(x, y, 12) == pytest.approx(full, rel=1e-10)
    assert semrsm.minibatch_cka(x, y, 12, center="channel") == pytest.approx(full, rel=1e-10)


# --------------------------------------------------------------------------- widened block by block


class _Device:
    type = "cpu"

    def __str__(self) -> str:
        return "cpu"


class _Float32Tensor:
    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def numpy(self) -> np.ndarray:
        return self._array


class CountingBFloat16Tensor:
    """What semrsm touches of a CPU torch bfloat16 tensor (backed by an ml_dtypes array), logging
    how many rows each ``.float()`` widens. torch itself cannot give bfloat16 to numpy."""

    dtype = "torch.bfloat16"
    device = _Device()
    requires_grad = False

    def __init__(self, array: np.ndarray, log: list) -> None:
        self._array, self.log, self.shape = array, log, array.shape

    def __len__(self) -> int:
        return len(self._array)

    def __getitem__(self, key) -> "CountingBFloat16Tensor":
        return CountingBFloat16Tensor(self._array[key], self.log)

    def float(self) -> _Float32Tensor:
        self.log.append(len(self._array))
        return _Float32Tensor(self._array.astype(np.float32))

    def detach(self) -> "CountingBFloat16Tensor":
        return self

    def numpy(self) -> np.ndarray:
        raise TypeError("Got unsupported ScalarType BFloat16")


CountingBFloat16Tensor.__module__ = "torch"


def test_torch_bfloat16_is_widened_block_by_block_never_whole(monkeypatch):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    monkeypatch.setattr(_tiles, "SCAN_BYTES", 200)  # the streaming pass reads blocks of 200 bytes
    rng = np.random.default_rng(6)
    raw = rng.normal(size=(20, 3, 3, 3)).astype(ml_dtypes.bfloat16)
    as32 = raw.astype(np.float32)
    other = rng.normal(size=(20, 2, 2, 2)).astype(ml_dtypes.bfloat16)
    log: list = []
    x = CountingBFloat16Tensor(raw, log)
    np.testing.assert_array_equal(semrsm.gram(x, tile=6), semrsm.gram(as32, tile=6))
    assert log and max(log) <= 6, log  # row blocks of a tile, never the 20 rows at once
    log.clear()
    y = CountingBFloat16Tensor(other, log)
    assert semrsm.layer_cka(x, y, tile=5) == semrsm.layer_cka(as32, other.astype(np.float32), tile=5)
    assert log and max(log) < 20, log  # never the whole input
    log.clear()
    got = semrsm.minibatch_cka(x, y, 5, matcher="none")
    assert got == semrsm.minibatch_cka(as32, other.astype(np.float32), 5, matcher="none")
    assert log and max(log) < 20, log  # never the whole input
    log.clear()
    streamed = semrsm.minibatch_cka([(x[:10], y[:10]), (x[10:], y[10:])], matcher="none", center=False)
    assert streamed == semrsm.minibatch_cka(
        [(as32[:10], other[:10].astype(np.float32)), (as32[10:], other[10:].astype(np.float32))],
        matcher="none",
        center=False,
    )
    assert log and max(log) <= 10, log


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "int8"])
def test_half_precision_never_copied_whole_to_float32_or_float64(dtype, monkeypatch):
    """tracemalloc sees numpy's allocations: the peak of a run over tiles of 20 rows stays below
    half of one float32 copy of the input (a float64 copy is twice that)."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    monkeypatch.setattr(_tiles, "SCAN_BYTES", 1 << 16)  # the streaming pass: blocks of 64 KiB
    rng = np.random.default_rng(7)
    kind = getattr(ml_dtypes, dtype) if dtype == "bfloat16" else np.dtype(dtype)
    x = (rng.normal(size=(400, 32, 8, 8)) * (8 if dtype == "int8" else 1)).astype(kind)  # f32 copy: 3.3 MB
    y = x[:, :16]
    whole32 = x.size * 4
    semrsm.layer_cka(x[:8], y[:8], matcher="none", tile=4)  # warm up imports
    for run in (
        lambda: semrsm.layer_cka(x, y, matcher="none", tile=20, progress=False),
        lambda: semrsm.minibatch_cka(x, y, 20, matcher="none"),
    ):
        tracemalloc.start()
        try:
            run()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < whole32 / 2, (peak, whole32)


def test_centre_rows_is_numpy_widen_and_subtract_on_every_isa(tmp_path):
    """``_core.centre_rows`` (Engine.block's centring of float32/float64 blocks) has the bits of
    numpy's ``float64(raw) - mean`` on every instruction set: row lengths off the vector widths,
    strided rows, values that round, inf/NaN passed through, and a mean that is not contiguous."""
    from helpers import per_isa

    # Each run saves (semrsm's, numpy's) for every case: numpy's subtraction is the reference
    # in the same process, whatever instruction set semrsm was forced to.
    script = """
import sys, numpy as np
from semrsm import _core
rng = np.random.default_rng(5)
out = []
for dtype in (np.float32, np.float64):
    for d in (1, 7, 8, 33, 200):
        raw = (rng.normal(size=(5, d)) * 10.0 ** rng.integers(-6, 6, size=(5, d))).astype(dtype)
        raw[0, 0] = np.inf
        raw[-1, -1] = np.nan
        mean = rng.normal(size=2 * d)[::2] * 1e-3
        for rows in (raw, np.asfortranarray(raw)[:, ::-1]):
            with np.errstate(invalid="ignore"):
                out += [_core.centre_rows(rows, mean), rows.astype(np.float64) - mean]
np.savez(sys.argv[1], *out)
"""
    for isa, arrays in per_isa(script, tmp_path).items():
        assert len(arrays) == 2 * 2 * 5 * 2
        for g, w in zip(arrays[::2], arrays[1::2]):
            assert g.dtype == np.float64 and g.flags.c_contiguous
            np.testing.assert_array_equal(g.view(np.uint64), w.view(np.uint64), err_msg=isa)
