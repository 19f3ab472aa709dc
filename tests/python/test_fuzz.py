"""Fuzzing of the Python API against scipy (hypothesis).

In CI the ``ci`` profile runs a few derandomised examples per test. For a long run:
``HYPOTHESIS_PROFILE=fuzz SEMRSM_FUZZ_CASES=100000 python -m pytest tests/python/test_fuzz.py``.
Inputs: ties, subnormals, huge dynamic range (per-row/position scales up to 10^±60), square sizes
≥ 32 (the solver's warm start), float32. Invariants: a valid assignment/permutation, optimal
against scipy, approximations ≤ exact ≤ certified bound; bad values give a semrsm error, never a
hang, a crash or a NaN.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment as scipy_lsa

import semrsm
from conftest import SEEDS

KINDS = st.sampled_from(["ints", "subnormal", "range", "normal", "ties_large"])


def _matrix(rng: np.random.Generator, kind: str, n: int, m: int) -> np.ndarray:
    if kind == "ints":
        return rng.integers(-1000, 1001, size=(n, m)).astype(np.float64)
    if kind == "subnormal":
        return rng.integers(0, 1000, size=(n, m)) * 5e-324
    if kind == "range":
        decades = rng.uniform(0, 120)
        rows = 10.0 ** rng.uniform(-decades / 2, decades / 2, size=(n, 1))
        cols = 10.0 ** rng.uniform(-decades / 2, decades / 2, size=(1, m))
        return rng.normal(size=(n, m)) * rows * cols
    if kind == "ties_large":
        return rng.integers(-1, 2, size=(n, m)) * 1e250
    return rng.normal(size=(n, m)) * 10.0 ** rng.uniform(-200, 200)


SHAPES = st.one_of(
    st.tuples(st.integers(1, 40), st.integers(1, 40)),
    st.integers(32, 48).map(lambda n: (n, n)),
)


@given(seed=SEEDS, kind=KINDS, shape=SHAPES, maximize=st.booleans(), f32=st.booleans())
def test_fuzz_linear_sum_assignment_vs_scipy(seed, kind, shape, maximize, f32):
    c = _matrix(np.random.default_rng(seed), kind, *shape)
    if f32:
        with np.errstate(over="ignore", under="ignore"):
            c = c.astype(np.float32)
        if not np.isfinite(c).all():
            return
    rows, cols = semrsm.linear_sum_assignment(c, maximize=maximize)
    r_ref, c_ref = scipy_lsa(c, maximize=maximize)
    assert len(rows) == min(shape) and np.all(np.diff(rows) > 0)
    assert len(set(cols.tolist())) == len(cols) and cols.max() < shape[1]
    ours = c[rows, cols].astype(np.float64).sum()
    ref = c[r_ref, c_ref].astype(np.float64).sum()
    tol = 4 * min(shape) * np.finfo(np.float64).eps * np.abs(c).max().astype(np.float64) * min(shape)
    assert abs(ours - ref) <= tol, (ours, ref)


MATCHERS = st.sampled_from(
    [("exact", {}), ("none", {}), ("greedy", {}), ("topk_greedy", {"k": 3}), ("batch_optimal", {"b": 4}),
     ("batch_optimal", {"b": 33}), ("auction", {}), ("auction", {"gap_ppm": 0}), ("shift", {"w": 1})]
)


@given(
    seed=SEEDS,
    n=st.integers(2, 4),
    s=st.sampled_from([1, 2, 5, 9, 16, 36, 40]),
    c=st.integers(1, 3),
    decades=st.integers(0, 120),
    matcher=MATCHERS,
)
def test_fuzz_every_matcher_between_none_exact_and_bound(seed, n, s, c, decades, matcher):
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-decades / 2, decades / 2, size=(n, s, 1))
    x = rng.normal(size=(n, s, c)) * scales
    name, options = matcher
    try:
        G, perm, bound = semrsm.gram(
            x, layout="nsc", center=False, matcher=name, return_permutations=True, return_bound=True, **options
        )
    except semrsm.NonFiniteError:  # products beyond the documented range: an error, not garbage
        assert np.abs(x).max() ** 2 * s * c > 1e290
        return
    assert np.isfinite(G).all() and np.isfinite(bound).all()
    assert np.all(np.sort(perm, axis=-1) == np.arange(s))
    exact = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            A = x[i] @ x[j].T
            r, cc = scipy_lsa(A, maximize=True)
            exact[i, j] = A[r, cc].sum()
    tol = 8 * s * s * np.finfo(float).eps * np.einsum("nsc->n", np.abs(x)).max() ** 2
    assert np.all(G <= exact + tol)
    assert np.all(exact <= bound + tol)


@given(
    seed=SEEDS,
    shape=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    density=st.sampled_from([0.1, 0.5, 0.9]),
    maximize=st.booleans(),
    kind=st.sampled_from(["ints", "range"]),
)
def test_fuzz_forbidden_entries_vs_scipy(seed, shape, density, maximize, kind):
    """+inf (-inf when maximising) forbids an assignment: same optimum as scipy, or both infeasible."""
    rng = np.random.default_rng(seed)
    c = _matrix(rng, kind, *shape)
    c[rng.random(shape) < density] = -np.inf if maximize else np.inf
    try:
        r_ref, c_ref = scipy_lsa(c, maximize=maximize)
    except ValueError:
        try:
            semrsm.linear_sum_assignment(c, maximize=maximize)
        except ValueError:
            return
        raise AssertionError("scipy found the problem infeasible, semrsm solved it")
    rows, cols = semrsm.linear_sum_assignment(c, maximize=maximize)
    assert np.isfinite(c[rows, cols]).all()
    ours, ref = c[rows, cols].sum(), c[r_ref, c_ref].sum()
    finite = np.abs(c[np.isfinite(c)])
    tol = 8 * min(shape) ** 2 * np.finfo(float).eps * (finite.max() if finite.size else 1.0)
    assert abs(ours - ref) <= tol, (ours, ref)
