"""precision="mixed": float32 affinities, float64 result.

Every test compares with the float64 oracle (``A = x_i @ y_j.T`` in float64, scipy's
``linear_sum_assignment`` maximised), on inputs chosen so that float32 alone would be wrong:
ties that float64 breaks, near-ties at 1e-9, huge and tiny ranges, duplicates, real maps.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from conftest import ref_gram, require_shared_file
from helpers import Crash, crash_after, per_isa
from hypothesis import given
from hypothesis import strategies as st

import semrsm
from semrsm import OptionError, _core, _tiles

# G of the mixed path vs the float64 oracle: relative to the pair's scale.
RTOL = 1e-12


def assert_f64_optimum(G: np.ndarray, x: np.ndarray, y: np.ndarray | None = None) -> None:
    """``G`` equals the float64 oracle to ``RTOL`` of each pair's scale ``Σ_s ‖x_s‖·max_t ‖y_t‖``."""
    ref = ref_gram(x, y)
    yy = x if y is None else y
    nx = np.linalg.norm(x, axis=2)
    ny = np.linalg.norm(yy, axis=2)
    scale = nx.sum(axis=1)[:, None] * ny.max(axis=1)[None, :]
    err = np.abs(G - ref)
    assert (err <= RTOL * scale).all(), f"max relative error {np.max(err / scale):.3e}"


def mixed(x: np.ndarray, y: np.ndarray | None = None, **kw) -> np.ndarray:
    return semrsm.gram(x, y, center=False, layout="nsc", precision="mixed", **kw)


def test_float32_tie_that_float64_breaks_is_repaired():
    """x_0's two positions round to the same float32 value (1 + 2^-30 -> 1): in float32 both
    permutations tie, in float64 exactly one is optimal, by 2^-30. Whichever the float32 solver
    picks, one of the two orderings makes it the wrong one; the certificate must catch it."""
    d = 2.0**-30
    x = np.array([[[1.0 + d], [1.0]], [[1.0], [1.0 + d]]])
    y = np.array([[[2.0], [1.0]]])
    before = _core.mixed_counters()
    G, perm = mixed(x, y, return_permutations=True)
    after = _core.mixed_counters()
    # The optimum pairs the larger x position with the larger y position.
    assert perm[0, 0].tolist() == [0, 1] and perm[1, 0].tolist() == [1, 0]
    assert G[0, 0] == G[1, 0] == 3.0 + 2 * d  # not 3 + d, the other permutation
    # Only the float32 solve's tie decides: at least one pair needed the float64 repair.
    assert after[3] - before[3] >= 1
    # The float32 path itself cannot tell (its G is 3 for both).
    g32 = semrsm.gram(x, y, center=False, layout="nsc", precision="float32")
    assert g32[0, 0] == g32[1, 0] == 3.0


def near_duplicates(rng: np.random.Generator, n: int, s: int, c: int, rel: float) -> np.ndarray:
    """Samples whose second half of positions repeats the first half, scaled by 1 + rel·noise:
    float32 cannot tell the copies apart, float64 can (first-order differences against a y
    with distinct positions)."""
    x = rng.normal(size=(n, s, c))
    h = s // 2
    x[:, h : 2 * h] = x[:, :h] * (1.0 + rel * rng.normal(size=(n, h, 1)))
    return x


def adversarial_pair(rng: np.random.Generator, kind: str, s: int, c: int, ties: int) -> tuple[np.ndarray, np.ndarray]:
    """Three x samples and two y samples of ``s`` positions and ``c`` channels of one adversarial
    kind: ``near`` (x positions 1e-9 apart), ``dup`` (y positions repeated in pairs), ``ties``
    (integers in [-ties, ties]), ``tiny_diff`` (x positions differing by ~1e-9 relative only),
    ``relu`` (non-negative), else normal."""
    if kind == "near":
        return near_duplicates(rng, 3, s, c, 1e-9), rng.normal(size=(2, s, c))
    if kind == "dup":
        x = rng.normal(size=(3, s, c))
        return x, np.repeat(rng.normal(size=(2, (s + 1) // 2, c)), 2, axis=1)[:, :s]
    if kind == "ties":
        x = rng.integers(-ties, ties + 1, size=(3, s, c)).astype(np.float64)
        return x, rng.integers(-ties, ties + 1, size=(2, s, c)).astype(np.float64)
    if kind == "tiny_diff":
        base = rng.normal(size=(1, 1, c))
        return base * (1.0 + 1e-9 * rng.normal(size=(3, s, 1))), rng.normal(size=(2, s, c))
    if kind == "relu":
        x = np.maximum(rng.normal(size=(3, s, c)), 0)
        return x, np.maximum(rng.normal(size=(2, s, c)), 0)
    return rng.normal(size=(3, s, c)), rng.normal(size=(2, s, c))


@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["near", "dup", "ties", "normal", "tiny_diff"]))
def test_adversarial_inputs_match_the_float64_oracle(seed, kind):
    rng = np.random.default_rng(seed)
    s = int(rng.integers(2, 24))
    c = int(rng.integers(1, 6))
    x, y = adversarial_pair(rng, kind, s, c, ties=2)
    assert_f64_optimum(mixed(x, y), x, y)
    assert_f64_optimum(mixed(x), x)


@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["near", "dup", "ties", "normal", "relu"]))
def test_adversarial_inputs_with_centred_duals_match_the_float64_oracle(seed, kind):
    """At C ≥ 16·S the certificate starts from centred float32 duals (kernels::screen::
    centre_duals): fewer entries computed in float64, the same optimum, the float64 path's bits
    where the permutation is the same."""
    rng = np.random.default_rng(seed)
    s = int(rng.integers(2, 10))
    c = 16 * s + int(rng.integers(0, 40))
    x, y = adversarial_pair(rng, kind, s, c, ties=1)
    assert_f64_optimum(mixed(x, y), x, y)
    assert_f64_optimum(mixed(x), x)
    if kind in ("normal", "relu"):
        # No ties: the same permutation as float64, hence G's bits.
        g64 = semrsm.gram(x, y, center=False, layout="nsc", precision="float64")
        assert np.array_equal(mixed(x, y).view(np.uint64), g64.view(np.uint64))


@pytest.mark.parametrize("exponent", [-30, -20, -12, 0, 12, 20, 30])
def test_huge_and_tiny_ranges(exponent):
    """Values from 1e-30 to 1e30: where float32 would overflow the call runs in float64, where
    its products underflow the certificate sends the pair to the float64 repair; never garbage."""
    rng = np.random.default_rng(abs(exponent) + 1)
    x = near_duplicates(rng, 3, 12, 4, 1e-9) * 10.0**exponent
    y = rng.normal(size=(2, 12, 4)) * 10.0**exponent
    assert_f64_optimum(mixed(x, y), x, y)
    # Each sample at its own scale, spanning 1e-30..1e30 within one call.
    scales = 10.0 ** rng.uniform(-30, 30, size=(3, 1, 1))
    z = rng.normal(size=(3, 10, 3)) * scales
    assert_f64_optimum(mixed(z), z)


def test_tiny_values_take_the_repair():
    """Products below float32's smallest subnormal: the float32 affinity is all zeros, so no
    permutation can be certified from it; every pair is solved in float64."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 9, 3)) * 1e-25
    before = _core.mixed_counters()
    G = mixed(x)
    after = _core.mixed_counters()
    assert after[3] - before[3] == 3  # the three off-diagonal pairs
    assert_f64_optimum(G, x)


def test_same_bits_for_any_thread_count_and_tile():
    rng = np.random.default_rng(3)
    x = near_duplicates(rng, 7, 40, 5, 1e-9)
    G1, P1 = mixed(x, threads=1, return_permutations=True)
    G2, P2 = mixed(x, threads=2, return_permutations=True)
    G3, P3 = mixed(x, threads=2, return_permutations=True, tile=3)
    assert G1.tobytes() == G2.tobytes() == G3.tobytes()
    assert (P1 == P2).all() and (P1 == P3).all()
    assert_f64_optimum(G1, x)


def test_blocked_certificate_has_the_float64_bits_on_every_instruction_set(tmp_path):
    """The certificate's float64 dot products, batched over a block of pairs (rows read once per
    k-chunk; AVX-512 transposes eight steps of sixteen chains into vectors), are the float64
    GEMM's strict FMA chains: on every instruction set, for any thread count and tile, G and the
    permutations are the float64 path's bit for bit (random maps: no ties)."""
    script = textwrap.dedent(
        """
        import sys, numpy as np, semrsm
        from semrsm import _core
        rng = np.random.default_rng(8)
        x = np.maximum(rng.normal(size=(12, 49, 300)), 0)  # C = 300: several k-chunks
        kw = dict(layout="nsc", return_permutations=True, progress=False)
        before = _core.mixed_counters()[1]
        out = [*semrsm.gram(x, precision="mixed", threads=1, **kw),
               *semrsm.gram(x, precision="mixed", threads=2, tile=5, **kw),
               *semrsm.gram(x, precision="float64", threads=2, **kw)]
        assert _core.mixed_counters()[1] - before == 2 * 66  # every pair certified in float32
        np.savez(sys.argv[1], *out)
        """
    )
    results = per_isa(script, tmp_path)
    want = results["portable"][4:]  # float64 path: G, permutations
    for isa, got in results.items():
        for run in (got[0:2], got[2:4], got[4:6]):
            assert run[0].tobytes() == want[0].tobytes(), isa
            assert (run[1] == want[1]).all(), isa


def test_bound_and_other_matchers():
    """With return_bound the bound equals G (the certificate's dual); matcher="none" ignores
    precision="mixed"; the approximate matchers choose their permutation on float32 affinities
    (tests/python/test_mixed_approx.py) and, where it is float64's, have float64's G bit for bit."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 16, 4))
    G, bound = mixed(x, return_bound=True)
    assert np.allclose(bound, G, rtol=1e-12, atol=1e-12) and (bound >= G).all()
    a = semrsm.gram(x, matcher="none", center=False, layout="nsc", precision="mixed")
    b = semrsm.gram(x, matcher="none", center=False, layout="nsc")
    assert a.tobytes() == b.tobytes()
    for matcher in ("greedy", "auction"):
        before = _core.mixed_counters()[5]
        a, pa = semrsm.gram(x, matcher=matcher, center=False, layout="nsc", precision="mixed", return_permutations=True)
        assert _core.mixed_counters()[5] - before == 10
        b, pb = semrsm.gram(x, matcher=matcher, center=False, layout="nsc", return_permutations=True)
        same = (pa == pb).all(axis=2)
        assert same.any() and (a[same] == b[same]).all()


def test_prefix_tokens():
    rng = np.random.default_rng(6)
    x = near_duplicates(rng, 4, 11, 3, 1e-9)
    G = mixed(x, prefix_tokens=1)
    ref = semrsm.gram(x, center=False, layout="nsc", prefix_tokens=1)
    assert np.allclose(G, ref, rtol=1e-13, atol=1e-13)


def _real(name: str, key: str, n: int) -> np.ndarray:
    with np.load(require_shared_file(name)) as f:
        a = np.asarray(f[key][:n], dtype=np.float64)
    if a.ndim == 4:  # (N, C, H, W) -> (N, S, C)
        a = a.reshape(a.shape[0], a.shape[1], -1).transpose(0, 2, 1)
    return np.ascontiguousarray(a - a.mean(axis=0))


@pytest.mark.parametrize(
    "name,key,n",
    [
        ("effnet_lite0_crops2000.npz", "block15", 10),  # S = 49, float16 on disk
        ("vit_s14_shifted_pairs.npz", "layer11", 5),  # S = 257
        ("effnet_lite0_s64_to_s4096.npz", "block4", 3),  # S = 1024
    ],
)
def test_real_maps_match_the_float64_oracle(name, key, n):
    x = _real(name, key, n)
    G = mixed(x)
    assert_f64_optimum(G, x)
    # And the float64 path (same permutation up to ties: same G up to rounding).
    assert np.allclose(G, semrsm.gram(x, center=False, layout="nsc"), rtol=1e-13, atol=0)


# ----------------------------------------------------------------- precision="auto" (the default)


def _uses_mixed(x: np.ndarray, **kw) -> bool:
    """Whether a default-precision gram on ``x`` went through the mixed path (its counter of
    pairs given to the certificate moves)."""
    before = _core.mixed_counters()[0]
    semrsm.gram(x, center=False, layout="nsc", **kw)
    return _core.mixed_counters()[0] > before


@pytest.mark.parametrize(
    "s,c,kw,expected",
    [
        (_tiles.AUTO_MIXED_MIN_S, _tiles.AUTO_MIXED_MIN_C, {}, True),
        (_tiles.AUTO_MIXED_MIN_S - 1, _tiles.AUTO_MIXED_MIN_C, {}, False),
        (_tiles.AUTO_MIXED_MIN_S, _tiles.AUTO_MIXED_MIN_C - 1, {}, False),
        (49, 320, {}, False),  # 7×7 maps of narrow late layers: float64 was faster there
        (_tiles.AUTO_MIXED_WIDE_MIN_S, _tiles.AUTO_MIXED_WIDE_C, {}, True),  # wide ones: mixed
        (_tiles.AUTO_MIXED_WIDE_MIN_S - 1, _tiles.AUTO_MIXED_WIDE_C, {}, False),
        (_tiles.AUTO_MIXED_WIDE_MIN_S, _tiles.AUTO_MIXED_WIDE_C - 1, {}, False),
        (49, 2048, {"prefix_tokens": 1}, False),
        # Early layers: many positions, few channels (memory-bound pairs).
        (_tiles.AUTO_MIXED_LARGE_S, 3, {}, True),
        (_tiles.AUTO_MIXED_LARGE_S - 1, 3, {}, False),
        (_tiles.AUTO_MIXED_LARGE_S, 3, {"prefix_tokens": 1}, False),
        # The threshold counts matched positions: prefix tokens are not matched.
        (_tiles.AUTO_MIXED_MIN_S + 1, _tiles.AUTO_MIXED_MIN_C, {"prefix_tokens": 1}, True),
        (_tiles.AUTO_MIXED_MIN_S + 1, _tiles.AUTO_MIXED_MIN_C, {"prefix_tokens": 2}, False),
        # (The approximate matchers' rule: test_mixed_approx.py.)
        (_tiles.AUTO_MIXED_MIN_S, _tiles.AUTO_MIXED_MIN_C, {"precision": "float64"}, False),
    ],
)
def test_auto_picks_mixed_where_documented(s, c, kw, expected):
    rng = np.random.default_rng(s + c)
    x = rng.normal(size=(2, s, c))
    assert _uses_mixed(x, **kw) == expected
    prefix = kw.get("prefix_tokens", 0)
    want = "mixed" if expected else "float64"
    assert _tiles.resolve_precision(kw.get("precision", "auto"), kw.get("matcher", "exact"), s - prefix, c) == want


def test_auto_has_the_float64_bits_when_the_permutation_is_the_same():
    """Where auto takes the mixed path, G is float64's bit for bit wherever both find the same
    permutation (here every pair: random maps have a unique optimum)."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3, _tiles.AUTO_MIXED_MIN_S + 3, _tiles.AUTO_MIXED_MIN_C))
    G, P = semrsm.gram(x, center=False, layout="nsc", return_permutations=True)
    G64, P64 = semrsm.gram(x, center=False, layout="nsc", precision="float64", return_permutations=True)
    assert (P == P64).all()
    assert G.tobytes() == G64.tobytes()


@pytest.mark.parametrize("kind", ["ties", "near", "dup", "huge", "tiny", "spread"])
def test_auto_adversarial_inputs_match_the_float64_oracle(kind):
    """The default at a size where it takes float32 affinities, on inputs where float32 alone
    is wrong: integer ties, near-ties at 1e-9, duplicated positions, 1e±30 ranges."""
    rng = np.random.default_rng(len(kind))
    s, c = _tiles.AUTO_MIXED_MIN_S + 2, _tiles.AUTO_MIXED_MIN_C
    if kind == "ties":
        x = rng.integers(-2, 3, size=(3, s, c)).astype(np.float64)
    elif kind == "near":
        x = near_duplicates(rng, 3, s, c, 1e-9)
    elif kind == "dup":
        x = np.repeat(rng.normal(size=(3, s // 2, c)), 2, axis=1)
    elif kind == "huge":
        x = near_duplicates(rng, 3, s, c, 1e-9) * 1e30
    elif kind == "tiny":
        x = near_duplicates(rng, 3, s, c, 1e-9) * 1e-30
    else:
        x = rng.normal(size=(3, s, c)) * 10.0 ** rng.uniform(-30, 30, size=(3, 1, 1))
    y = rng.normal(size=(2, s, c)) * (1e30 if kind == "huge" else 1e-30 if kind == "tiny" else 1.0)
    G = semrsm.gram(x, center=False, layout="nsc")
    assert_f64_optimum(G, x)
    assert_f64_optimum(semrsm.gram(x, y, center=False, layout="nsc"), x, y)
    # Same bits for any thread count or tile.
    G2 = semrsm.gram(x, center=False, layout="nsc", threads=2, tile=2)
    assert G.tobytes() == G2.tobytes()


def test_auto_resume_fingerprint_is_the_resolved_precision(tmp_path, monkeypatch):
    """out=/resume record what auto ran: a crashed run resumes under "auto" or the precision it
    resolved to ("mixed" here), bit-identically, and refuses "float64"."""

    rng = np.random.default_rng(12)
    x = rng.normal(size=(4, _tiles.AUTO_MIXED_MIN_S, _tiles.AUTO_MIXED_MIN_C))
    opts = dict(center=False, layout="nsc", tile=2)
    expected = semrsm.gram(x, precision="mixed", **opts)
    out = tmp_path / "G.npy"
    crash_after(monkeypatch, _tiles.Engine, "compute", 1)
    with pytest.raises(Crash):
        semrsm.gram(x, out=out, **opts)
    monkeypatch.undo()
    with pytest.raises(OptionError, match="options"):
        semrsm.gram(x, out=out, resume=True, precision="float64", **opts)
    G = semrsm.gram(x, out=out, resume=True, precision="mixed", **opts)
    assert np.asarray(G).tobytes() == expected.tobytes()
