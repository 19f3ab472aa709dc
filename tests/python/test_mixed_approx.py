"""precision="mixed" for the approximate matchers (greedy, auction, topk_greedy/batch_optimal when
not exact): the permutation is chosen on float32 affinities, G is its float64 value and the bound
the float32 dual plus the float32 GEMM's rounding bound per row.

Oracles: G is the float64 re-score ``Σ_s x_s·y_perm(s)`` of the returned permutation; scipy's
float64 optimum lies between G and the bound; the certified gap of the auction is within its
target; results do not depend on the thread count or the instruction set.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from conftest import require_shared_file
from helpers import per_isa
from scipy.optimize import linear_sum_assignment

import semrsm
from semrsm import _core, _tiles

MATCHERS = [
    ("auction", {}),
    ("auction", {"gap_ppm": 1000}),
    ("greedy", {}),
    ("batch_optimal", {"b": 16}),
    ("topk_greedy", {"k": 8}),
]


def approx_pairs() -> int:
    """Pairs matched so far on float32 affinities by an approximate matcher."""
    return _core.mixed_counters()[5]


def rescore(x: np.ndarray, y: np.ndarray, perm: np.ndarray) -> float:
    """The float64 value of ``perm`` for the pair ``(x, y)`` (``S × C`` each)."""
    return float(np.einsum("sc,sc->", x, y[perm]))


def optimum(x: np.ndarray, y: np.ndarray) -> float:
    a = x @ y.T
    r, c = linear_sum_assignment(a, maximize=True)
    return float(a[r, c].sum())


def check_pairs(x, y, G, P, B, matcher, options, tol=1e-12):
    """G is the re-score of P; scipy's optimum lies between G and B; the auction's certified gap
    is within its target (whether or not the pair fell back to the exact solver)."""
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            value = rescore(x[i], y[j], P[i, j])
            opt = optimum(x[i], y[j])
            scale = np.linalg.norm(x[i], axis=1).sum() * np.linalg.norm(y[j], axis=1).max()
            assert sorted(P[i, j].tolist()) == list(range(x.shape[1]))
            assert abs(G[i, j] - value) <= tol * max(abs(value), 1e-300), (matcher, i, j, G[i, j], value)
            assert G[i, j] <= opt + tol * scale, (matcher, i, j, G[i, j], opt)
            assert opt <= B[i, j] + tol * scale, (matcher, i, j, opt, B[i, j])
            if matcher == "auction" and G[i, j] > 0:
                target = options.get("gap_ppm", 30_000) * 1e-6
                assert semrsm.certified_gap(G[i, j], B[i, j]) <= target + 1e-12, (i, j)


def mixed(x, y, matcher, options, **kw):
    return semrsm.gram(
        x, y, matcher=matcher, center=False, layout="nsc", precision="mixed",
        return_permutations=True, return_bound=True, **options, **kw,
    )


def adversarial(kind: str, rng: np.random.Generator, s: int = 40, c: int = 6):
    """Two sets of two samples whose float32 affinities mislead: exact ties (integer features,
    duplicated positions), near-ties float32 cannot see, norms spanning 10^±6."""
    x, y = rng.normal(size=(2, s, c)), rng.normal(size=(2, s, c))
    if kind == "ties":
        x, y = np.round(x), np.round(y)
    elif kind == "dup":
        x[:, 1::2] = x[:, ::2]
        y[:, 1::2] = y[:, ::2]
    elif kind == "near":
        x = np.round(x) + 1e-9 * rng.normal(size=x.shape)
        y = np.round(y)
    elif kind == "huge":
        x *= 10.0 ** rng.uniform(-6, 6, size=(2, s, 1))
        y *= 10.0 ** rng.uniform(-6, 6, size=(2, s, 1))
    return x, y


@pytest.mark.parametrize("kind", ["ties", "dup", "near", "huge", "plain"])
@pytest.mark.parametrize("matcher,options", MATCHERS)
def test_value_is_the_float64_rescore_and_the_bound_holds(kind, matcher, options):
    x, y = adversarial(kind, np.random.default_rng(len(kind)))
    before = approx_pairs()
    G, P, B = mixed(x, y, matcher, options)
    assert approx_pairs() - before == 4, "the float32 path ran"
    check_pairs(x, y, G, P, B, matcher, options)
    # Without the bound: the same permutations and values.
    G2, P2 = semrsm.gram(
        x, y, matcher=matcher, center=False, layout="nsc", precision="mixed", return_permutations=True, **options
    )
    np.testing.assert_array_equal(P2, P)
    assert G2.tobytes() == G.tobytes()


def test_large_s_uses_the_quantised_auction_and_stays_certified():
    """S = 2061 (the 16-bit copy of the float32 affinity, a partial last block of columns):
    norms spanning 10^±3, bound and value around scipy's optimum."""
    rng = np.random.default_rng(4)
    s, c = 2061, 8
    concepts = rng.normal(size=(12, c))
    tokens = lambda: (rng.normal(size=(1, s, c)) + concepts[rng.integers(0, 12, s)]) * 10.0 ** rng.uniform(-3, 3, (1, s, 1))
    x, y = tokens(), tokens()
    for matcher, options in [("auction", {}), ("greedy", {})]:
        G, P, B = mixed(x, y, matcher, options)
        check_pairs(x, y, G, P, B, matcher, options)


def test_an_auction_that_misses_its_target_is_solved_exactly():
    """gap_ppm=0: the float32 dual plus the rounding bound can never certify a zero gap, so every
    pair falls back to the exact solver on the float64 affinity: G is float64's exact G."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(4, 30, 5))
    before = _core.mixed_counters()
    G, P, B = mixed(x, None, "auction", {"gap_ppm": 0})
    after = _core.mixed_counters()
    assert after[5] - before[5] == 6 and after[6] - before[6] == 6
    G64, P64 = semrsm.gram(x, center=False, layout="nsc", precision="float64", return_permutations=True)
    np.testing.assert_array_equal(P, P64)
    assert G.tobytes() == G64.tobytes()
    check_pairs(x, x, G, P, B, "auction", {"gap_ppm": 0})


def test_real_maps_s3136():
    """Real EfficientNet block2 maps (S = 3136, C = 24; a photo and its shifted crop, and two
    photos): G is the re-score, scipy's optimum between G and the bound, auction certified."""
    path = require_shared_file("effnet_lite0_shifted_pairs.npz")
    with np.load(path) as f:
        z = f["block2"].astype(np.float64)  # (20, 24, 56, 56): photos 0-9, shifted 10-19
    v = z.reshape(20, 24, -1).transpose(0, 2, 1)
    v = v - v.mean(axis=0)
    x, y = v[[0]], v[[10, 1]]
    for matcher, options in [("auction", {}), ("greedy", {})]:
        before = approx_pairs()
        G, P, B = mixed(x, y, matcher, options)
        assert approx_pairs() - before == 2
        check_pairs(x, y, G, P, B, matcher, options)


def test_float64_keeps_the_float64_path_and_unsafe_norms_too():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 20, 4))
    before = approx_pairs()
    G, P = semrsm.gram(x, matcher="greedy", center=False, layout="nsc", precision="float64", return_permutations=True)
    assert approx_pairs() == before
    for i in range(3):
        for j in range(3):
            assert G[i, j] == pytest.approx(rescore(x[i], x[j], P[i, j]), rel=1e-12)
    # Norms whose float32 affinities could overflow: float64 even under "mixed".
    semrsm.gram(x * 1e30, matcher="auction", center=False, layout="nsc", precision="mixed")
    assert approx_pairs() == before


@pytest.mark.parametrize(
    "s,matcher,options,expected",
    [
        (_tiles.AUTO_MIXED_APPROX_MIN_S, "greedy", {}, True),
        (_tiles.AUTO_MIXED_APPROX_MIN_S - 1, "greedy", {}, False),
        (_tiles.AUTO_MIXED_APPROX_MIN_S, "auction", {}, True),
        (_tiles.AUTO_MIXED_APPROX_MIN_S - 1, "auction", {}, False),
        (_tiles.AUTO_MIXED_APPROX_MIN_S + 1, "topk_greedy", {}, True),  # k = 128 < S: approximate
        (_tiles.AUTO_MIXED_APPROX_MIN_S, "topk_greedy", {}, False),  # k = S: exact, C = 3: float64
        (_tiles.AUTO_MIXED_APPROX_MIN_S, "batch_optimal", {"b": 64}, True),
        (_tiles.AUTO_MIXED_APPROX_MIN_S - 1, "batch_optimal", {"b": 64}, False),
        (_tiles.AUTO_MIXED_LARGE_S, "greedy", {}, True),
        (_tiles.AUTO_MIXED_LARGE_S, "shift", {"w": 48}, False),  # 1536 = 32 x 48
        # 7×7 maps of wide layers: from AUTO_MIXED_MIN_C channels.
        (_tiles.AUTO_MIXED_WIDE_MIN_S, "greedy", {"c": _tiles.AUTO_MIXED_MIN_C}, True),
        (_tiles.AUTO_MIXED_WIDE_MIN_S, "auction", {"c": _tiles.AUTO_MIXED_MIN_C - 1}, False),
        (_tiles.AUTO_MIXED_WIDE_MIN_S - 1, "greedy", {"c": _tiles.AUTO_MIXED_MIN_C}, False),
    ],
)
def test_auto_picks_float32_affinities_for_approximations(s, matcher, options, expected):
    options = dict(options)
    c = options.pop("c", 3)
    x = np.random.default_rng(s).normal(size=(2, s, c))
    before = approx_pairs()
    semrsm.gram(x, matcher=matcher, center=False, layout="nsc", **options)
    assert (approx_pairs() > before) == expected
    want = "mixed" if expected else "float64"
    assert _tiles.resolve_precision("auto", matcher, s, c, options) == want


def test_auto_keeps_float64_for_an_approximate_batch_at_small_s():
    """batch_optimal with b < S: "auto" runs it on float32 affinities from
    AUTO_MIXED_APPROX_MIN_S matched positions (and from 49 at C >= 256), in float64 below
    (S = 100, C = 200); a b that covers S follows the exact matcher's rule, which at C = 200
    is float64 below 1536 positions."""
    assert _tiles.resolve_precision("auto", "batch_optimal", 100, 200, {"b": 64}) == "float64"
    assert _tiles.resolve_precision("auto", "batch_optimal", 100, 200, {"b": 128}) == "float64"
    assert _tiles.resolve_precision("auto", "batch_optimal", 100, 300, {"b": 64}) == "mixed"
    assert _tiles.resolve_precision("auto", "batch_optimal", 200, 200, {"b": 64}) == "mixed"
    assert _tiles.resolve_precision("auto", "batch_optimal", 200, 200, {"b": 256}) == "float64"


@pytest.mark.parametrize("matcher,options", MATCHERS)
def test_a_block_of_pairs_gives_each_pair_its_own_result(matcher, options):
    """The pairs of a block are chosen one by one and re-scored together (each row read once);
    every result is still, bit for bit, what the pair computed alone gives (a 1 × 1 call, which
    takes the one-pair path): G, bound and permutation, also with prefix tokens."""
    rng = np.random.default_rng(23)
    x = np.maximum(rng.normal(size=(5, 61, 90)), 0) * rng.uniform(0.5, 2, (5, 61, 1))
    x[:, 1::6] = x[:, ::6][:, : x[:, 1::6].shape[1]]  # duplicated positions: ties
    x -= x.mean(axis=0)
    for prefix in (0, 2):
        G, P, B = mixed(x, None, matcher, options, prefix_tokens=prefix)
        for i in range(5):
            for j in range(i + 1, 5):  # (below the diagonal: mirrored, the pair the other way)
                g, p, b = mixed(x[i : i + 1], x[j : j + 1], matcher, options, prefix_tokens=prefix)
                assert G[i, j] == g[0, 0] and B[i, j] == b[0, 0], (prefix, i, j)
                assert np.array_equal(P[i, j], p[0, 0]), (prefix, i, j)


def test_same_results_across_threads_and_isas(tmp_path):
    script = textwrap.dedent(
        """
        import sys, numpy as np, semrsm
        rng = np.random.default_rng(17)
        concepts = rng.normal(size=(6, 40))
        x = (rng.normal(size=(5, 70, 40)) + concepts[rng.integers(0, 6, (5, 70))]) * rng.uniform(0.5, 2, (5, 70, 1))
        x[:, 1::7] = x[:, ::7][:, : x[:, 1::7].shape[1]]  # duplicated positions: ties
        out = []
        for matcher, options in [("auction", {}), ("greedy", {}), ("batch_optimal", {"b": 16})]:
            for threads, tile in ((1, None), (2, 2)):
                out += semrsm.gram(x, matcher=matcher, center=False, layout="nsc", precision="mixed", threads=threads,
                                   tile=tile, return_permutations=True, return_bound=True, progress=False, **options)
        np.savez(sys.argv[1], *out)
        """
    )
    results = per_isa(script, tmp_path)
    first = results["portable"]
    for isa, arrays in results.items():
        for k, (a, b) in enumerate(zip(arrays, first)):
            assert a.tobytes() == b.tobytes(), (isa, k)
    for k in range(0, len(first), 6):  # threads=1 vs threads=2 with tiles of 2 rows
        for m in range(3):
            assert first[k + m].tobytes() == first[k + 3 + m].tobytes(), k
