"""``build(kernel="rbf", sigma="median"|"kornblith", out=...)`` in bounded memory (issue 7): the
named σ rules are found from the G file by an exact streaming selection, bit-identical to the
in-memory rules of :mod:`semrsm.kernels`; a callable σ is checked to fit before anything runs."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import peak_rss_growth
import semrsm
from semrsm import SemrsmError, TooLargeError, _api, _tiles, kernels

RNG = np.random.default_rng(11)


def bits(a):
    return np.asarray(a, dtype=np.float64).view(np.uint64)


def _blocks(d2, square, cuts):
    """``streaming_sigma``'s input from a whole matrix, in row blocks cut at ``cuts``."""
    n, m = d2.shape
    edges = [0, *sorted({c for c in cuts if 0 < c < n}), n]

    def gen():
        for r0, r1 in zip(edges, edges[1:]):
            upper = np.arange(m)[None, :] > np.arange(r0, r1)[:, None] if square else None
            yield d2[r0:r1], upper

    return gen


# A pool of values with ties, zeros, subnormals and magnitudes far apart, or any non-negative
# float: the selection works on the IEEE bits, so all of these must come out exactly.
_POOL = [0.0, 5e-324, 1e-300, 0.5, 1.0, 1.0 + 2**-52, 2.0, 3.0, 1e10, 1e300]
_values = st.one_of(
    st.sampled_from(_POOL),
    st.floats(min_value=0.0, max_value=1e300, allow_nan=False, allow_infinity=False),
)


@st.composite
def _d2_matrices(draw):
    square = draw(st.booleans())
    n = draw(st.integers(1, 9))
    m = n if square else draw(st.integers(1, 9))
    flat = draw(st.lists(_values, min_size=n * m, max_size=n * m))
    d2 = np.array(flat, dtype=np.float64).reshape(n, m)
    if square:  # symmetric with an exact zero diagonal, as squared_distances(square=True) gives
        d2 = np.triu(d2, 1)
        d2 = d2 + d2.T
    cuts = draw(st.lists(st.integers(1, max(1, n - 1)), max_size=3))
    gather = draw(st.sampled_from([0, 1, 3, 1 << 22]))  # 0: narrow down to all 64 bits
    return d2, square, cuts, gather


@given(_d2_matrices(), st.sampled_from([None, "median", "kornblith"]), st.sampled_from([1.0, 0.3]))
def test_streaming_sigma_is_the_in_memory_sigma_bit_for_bit(case, rule, scale):
    d2, square, cuts, gather = case
    saved = kernels.SELECT_GATHER
    kernels.SELECT_GATHER = gather
    try:
        try:
            expected = kernels.resolve_sigma(rule, d2, square=square, sigma_scale=scale)
        except SemrsmError as exc:  # kornblith with a zero median: the same error
            with pytest.raises(SemrsmError, match="kornblith"):
                kernels.streaming_sigma(rule, _blocks(d2, square, cuts), sigma_scale=scale)
            assert "kornblith" in str(exc)
            return
        got = kernels.streaming_sigma(rule, _blocks(d2, square, cuts), sigma_scale=scale)
    finally:
        kernels.SELECT_GATHER = saved
    assert bits(got) == bits(expected), (got, expected)


@given(
    st.lists(_values, min_size=0, max_size=40),
    st.integers(1, 5),
    st.sampled_from([0, 2, 1 << 22]),
    st.booleans(),
)
def test_middle_values_are_the_sorted_middle(values, pieces, gather, positive):
    v = np.array(values, dtype=np.float64)
    saved = kernels.SELECT_GATHER
    kernels.SELECT_GATHER = gather
    try:
        got = kernels.middle_values(lambda: np.array_split(v, pieces), positive=positive)
    finally:
        kernels.SELECT_GATHER = saved
    kept = np.sort(v[v > 0] if positive else v)
    if kept.size == 0:
        assert got is None
    else:
        assert got == (kept[(kept.size - 1) // 2], kept[kept.size // 2])


@pytest.mark.parametrize("rule", [None, "median", "kornblith"])
@pytest.mark.parametrize("rect", [False, True])
def test_build_out_rbf_equals_memory_bitwise(tmp_path, monkeypatch, rule, rect):
    monkeypatch.setattr(_api, "KERNEL_BLOCK_BYTES", 8 * 40 * 3)  # a few rows per block
    monkeypatch.setattr(kernels, "SELECT_GATHER", 5)  # exercise the histogram passes
    x = RNG.normal(size=(40, 5, 3, 3))
    x[7] = x[3]  # duplicated samples: zero distances off the diagonal
    y = x[:11] * 1.5 if rect else None
    K, used = semrsm.build(x, y, kernel="rbf", sigma=rule, return_sigma=True)
    Kf, used_f = semrsm.build(x, y, kernel="rbf", sigma=rule, return_sigma=True, out=tmp_path / "K.npy", tile=9)
    assert bits(used_f) == bits(used)
    assert isinstance(Kf, np.memmap) and np.array_equal(bits(Kf), bits(K))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["K.npy"]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_build_out_rbf_tiny_n(tmp_path, n):
    x = RNG.normal(size=(n, 2, 2, 2))
    for rule in ("median", "kornblith"):
        try:
            K, used = semrsm.build(x, kernel="rbf", sigma=rule, center=False, return_sigma=True)
        except SemrsmError:  # kornblith at N <= 2: at least half the entries are the zero diagonal
            with pytest.raises(SemrsmError, match="kornblith"):
                semrsm.build(x, kernel="rbf", sigma=rule, center=False, out=tmp_path / "K.npy")
            continue
        Kf, used_f = semrsm.build(x, kernel="rbf", sigma=rule, center=False, return_sigma=True, out=tmp_path / "K.npy")
        assert bits(used_f) == bits(used) and np.array_equal(bits(Kf), bits(K))


def test_callable_sigma_with_out_loads_d2_when_it_fits(tmp_path):
    x = RNG.normal(size=(20, 3, 2, 2))
    rule = lambda d2: float(np.sqrt(d2.max())) / 3  # noqa: E731
    K = semrsm.build(x, kernel="rbf", sigma=rule)
    Kf = semrsm.build(x, kernel="rbf", sigma=rule, out=tmp_path / "K.npy", tile=6)
    assert np.array_equal(bits(Kf), bits(K))


def test_callable_sigma_with_out_too_large_fails_before_computing(tmp_path, monkeypatch):
    x = RNG.normal(size=(300, 1, 1, 1))
    monkeypatch.setattr(_tiles, "available_memory", lambda: 1 << 20)  # d² is 720 kB > half of 1 MiB
    computed = []
    monkeypatch.setattr(_tiles.Engine, "compute", lambda self, *a, **k: computed.append(1))
    with pytest.raises(TooLargeError, match=r"sigma=<callable>.*'median' or 'kornblith'"):
        semrsm.build(x, kernel="rbf", matcher="none", sigma=lambda d2: 1.0, out=tmp_path / "K.npy", tile=50)
    assert computed == [] and list(tmp_path.iterdir()) == []
    # the named rules need no such memory
    monkeypatch.undo()
    monkeypatch.setattr(_tiles, "available_memory", lambda: 1 << 20)
    semrsm.build(x, kernel="rbf", matcher="none", sigma="median", out=tmp_path / "K.npy", progress=False, tile=50)


def test_build_out_rbf_median_peak_memory_is_not_quadratic(tmp_path):
    """A 4000 x 4000 RBF RSM (128 MB) with sigma='median' and out=: the peak RSS (VmHWM, a fresh
    process) grows far less than one N² matrix: neither d², nor the distances i < j, nor the
    file's pages are held (the in-memory rule holds several N² arrays)."""
    grown, sigma = peak_rss_growth(
        'semrsm.build(x[:50], kernel="rbf", matcher="none", tile=10)  # warm up imports and pools',
        f'K, s = semrsm.build(x, kernel="rbf", sigma="median", matcher="none", tile=500, '
        f'out={str(tmp_path / "K.npy")!r}, progress=False, return_sigma=True); extra = repr(s)',
    ).split()
    assert int(grown) < 80 << 20  # K and G are 128 MB each; one d² alone would be 128 MB (the
    # in-memory rule peaked at +259 MiB (kornblith) and +319 MiB (median) here)
    assert 0 < float(sigma) < np.inf  # its bits are checked against the in-memory rule above
