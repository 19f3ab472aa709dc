"""The deterministic GEMM (issues 8, 13): `_core.gemm_abt`, the affinities of blocks of pairs in
`gram`, and bit-identity across tiles, threads and instruction sets."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from helpers import per_isa

import semrsm
from semrsm import ShapeError, _core

RNG = np.random.default_rng(13)


def bits(a):
    a = np.asarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype,fn", [(np.float64, _core.gemm_abt), (np.float32, _core.gemm_abt_f32)])
def test_gemm_is_exact_on_integers_and_blocks_do_not_change_bits(dtype, fn):
    # Small integers: every product and partial sum is exact, so any order gives numpy's value.
    a = RNG.integers(-20, 20, size=(37, 53)).astype(dtype)
    b = RNG.integers(-20, 20, size=(29, 53)).astype(dtype)
    c = fn(a, b)
    assert c.dtype == dtype and c.shape == (37, 29)
    np.testing.assert_array_equal(c, a @ b.T)
    # Real values: close to numpy, and a block computed alone has the bits of the whole.
    a = RNG.normal(size=(70, 700)).astype(dtype)
    b = RNG.normal(size=(90, 700)).astype(dtype)
    c = fn(a, b)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(c, (a.astype(np.float64) @ b.T.astype(np.float64)), atol=tol * 700 * 4)
    assert np.array_equal(bits(fn(a[5:40], b[33:71])), bits(c[5:40, 33:71]))
    # Non-contiguous views are accepted.
    assert np.array_equal(bits(fn(a[::2], b[::3])), bits(c[::2, ::3]))


def test_gemm_rejects_mismatched_shapes():
    with pytest.raises(ShapeError, match="gemm"):
        _core.gemm_abt(np.zeros((3, 4)), np.zeros((2, 5)))


MATCHERS = [
    ("exact", {}),
    ("greedy", {}),
    ("topk_greedy", {"k": 3}),
    ("batch_optimal", {"b": 4}),
    ("auction", {}),
    ("shift", {"w": 1}),
]


@pytest.mark.parametrize("matcher,options", MATCHERS)
@pytest.mark.parametrize("prefix", [0, 1])
def test_every_matcher_identical_bits_for_any_tile_and_threads(matcher, options, prefix):
    # S = 9 matched positions (a 3 × 3 grid for shift); 13 samples make blocks of several pairs
    # (one GEMM each) inside a tile, tile=1 makes one GEMM per pair.
    x = RNG.normal(size=(13, 9 + prefix, 6))
    y = RNG.normal(size=(7, 9 + prefix, 6))
    kw = dict(layout="nsc", matcher=matcher, prefix_tokens=prefix, return_permutations=True, return_bound=True, **options)
    for precision in ("float64", "float32"):
        whole = semrsm.gram(x, precision=precision, threads=1, **kw)
        rect = semrsm.gram(x, y, precision=precision, threads=1, **kw)
        for tile, threads in [(1, 1), (2, 2), (5, 1), (13, 2)]:
            got = semrsm.gram(x, precision=precision, tile=tile, threads=threads, **kw)
            got_rect = semrsm.gram(x, y, precision=precision, tile=tile, threads=threads, **kw)
            for g, w in ((got, whole), (got_rect, rect)):
                assert np.array_equal(bits(g[0]), bits(w[0])), (precision, tile, threads)
                assert np.array_equal(g[1], w[1]) and np.array_equal(bits(g[2]), bits(w[2]))


def test_exact_gram_equals_numpy_scipy_oracle():
    from scipy.optimize import linear_sum_assignment

    v = RNG.normal(size=(9, 49, 40))
    g = semrsm.gram(v, layout="nsc", center=False)
    for i, j in [(0, 1), (2, 7), (5, 8)]:
        a = v[i] @ v[j].T
        r, c = linear_sum_assignment(a, maximize=True)
        assert g[i, j] == pytest.approx(a[r, c].sum(), rel=1e-12)


def test_every_instruction_set_gives_the_same_bits(tmp_path):
    # The strict FMA chains make the AVX-512, AVX2 and portable kernels agree bit for bit,
    # through the GEMM alone and through gram (pair blocks and the spatio-semantic GEMM).
    script = textwrap.dedent(
        """
        import sys, numpy as np, semrsm
        from semrsm import _core
        rng = np.random.default_rng(3)
        a, b = rng.normal(size=(61, 333)), rng.normal(size=(47, 333))
        x = rng.normal(size=(11, 16, 21))
        # matcher="none" on (N, C, H, W) float32 over several tasks of 144 rows (one partial)
        z = rng.normal(size=(300, 8, 3, 5)).astype(np.float32)
        out = [_core.gemm_abt(a, b), _core.gemm_abt_f32(a.astype(np.float32), b.astype(np.float32)),
               semrsm.gram(x, layout="nsc", matcher="greedy", threads=2),
               semrsm.gram(x, layout="nsc", matcher="none", threads=2),
               semrsm.gram(x, layout="nsc", precision="float32", threads=1),
               semrsm.gram(z, matcher="none", threads=3),
               semrsm.gram(z, z[:77], matcher="none", precision="float32", threads=2)]
        np.savez(sys.argv[1], *out)
        """
    )
    results = per_isa(script, tmp_path)
    for isa in ("avx2", "avx512"):
        for got, want in zip(results[isa], results["portable"]):
            assert np.array_equal(bits(got), bits(want)), isa
