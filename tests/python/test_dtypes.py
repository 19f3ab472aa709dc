"""Every dtype and layout users have (issue 12, point 2): float16, bfloat16 (ml_dtypes; torch
tensors when torch is installed), ints: computed exactly as their float32 values; 2-D (N, D)
input is S = 1 (semantic = spatio-semantic)."""

from __future__ import annotations

import numpy as np
import pytest

import semrsm
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
