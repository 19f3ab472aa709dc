"""Regression tests of issue 9: finite-and-right or a clear error, on hostile inputs."""

from __future__ import annotations

import _thread
import threading
import time

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment as scipy_lsa

import semrsm
from semrsm import NonFiniteError, OptionError, ShapeError


# --- item 2: RBF with extreme bandwidths ------------------------------------------------------


@pytest.mark.parametrize("sigma", [1e-170, 1e-300, 5e-324])
def test_rbf_with_tiny_sigma_is_one_on_the_diagonal_and_zero_elsewhere(sigma):
    """2σ² underflowed to 0 and gave 0/0 = NaN on the diagonal."""
    z = np.random.default_rng(0).normal(size=(5, 3, 2, 2))
    K = semrsm.build(z, kernel="rbf", sigma=sigma)
    np.testing.assert_array_equal(np.diag(K), 1.0)
    np.testing.assert_array_equal(K[~np.eye(5, dtype=bool)], 0.0)


@pytest.mark.parametrize("sigma", [1e155, 1e200, 1e300])
def test_rbf_with_huge_sigma_is_one_without_overflow(sigma):
    z = np.random.default_rng(1).normal(size=(5, 3, 2, 2))
    K = semrsm.build(z, kernel="rbf", sigma=sigma)  # pytest turns an overflow warning into an error
    np.testing.assert_array_equal(K, 1.0)


@pytest.mark.parametrize("scale", [1e-150, 1e-100, 1.0, 1e100, 1e140])
def test_rbf_default_sigma_is_scale_invariant(scale):
    z = np.random.default_rng(2).normal(size=(6, 3, 2, 2))
    np.testing.assert_allclose(
        semrsm.build(scale * z, kernel="rbf"), semrsm.build(z, kernel="rbf"), rtol=1e-9, atol=1e-12
    )


# --- item 8: keywords and flags ----------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda x: semrsm.build(x, kernal="rbf"),
        lambda x: semrsm.gram(x, kernal="rbf"),
        lambda x: semrsm.build(x, kernal=3),
    ],
)
def test_unknown_keyword_names_itself_and_the_valid_ones(call):
    x = np.random.default_rng(0).normal(size=(3, 2, 2, 2))
    with pytest.raises(OptionError, match=r"unknown keyword argument 'kernal'") as info:
        call(x)
    message = str(info.value)
    assert "did you mean 'kernel'" in message or "gram" in message
    for name in ("matcher", "layout", "threads", "gap_ppm", "b (batch_optimal)", "k (topk_greedy)"):
        assert name in message


def test_unknown_keyword_of_match_affinity():
    with pytest.raises(OptionError, match=r"unknown keyword argument 'return_bounds'.*did you mean 'return_bound'"):
        semrsm.match_affinity(np.eye(3), return_bounds=True)


def test_option_of_another_matcher_is_still_reported_by_the_core():
    x = np.random.default_rng(0).normal(size=(3, 2, 2, 2))
    with pytest.raises(OptionError, match=r'matcher "exact" takes no options, got "b"'):
        semrsm.build(x, b=4)


@pytest.mark.parametrize("flag", ["return_permutations", "return_bound", "center"])
@pytest.mark.parametrize("value", ["no", 0, 1, None, [], np.array([True, False])])
def test_flags_must_be_real_booleans(flag, value):
    """return_permutations="no" used to return permutations (read by truthiness)."""
    x = np.random.default_rng(0).normal(size=(3, 2, 2, 2))
    with pytest.raises(OptionError, match=rf"{flag} must be True(,| or) False"):  # center: or 'channel'
        semrsm.gram(x, **{flag: value})


def test_numpy_booleans_are_accepted_as_flags():
    x = np.random.default_rng(0).normal(size=(3, 2, 2, 2))
    G, perm = semrsm.gram(x, return_permutations=np.bool_(True), center=np.bool_(False))
    assert perm.shape == (3, 3, 4)
    _, _, bound = semrsm.match_affinity(np.eye(3), return_bound=np.True_)
    assert bound == pytest.approx(3.0)
    with pytest.raises(OptionError, match="return_bound must be True or False"):
        semrsm.match_affinity(np.eye(3), return_bound="yes")
    with pytest.raises(OptionError, match="return_bound must be True or False"):
        semrsm.build(x, return_bound=1)


# --- item 7: certified_gap checks --------------------------------------------------------------


def test_certified_gap_rejects_broadcasting_and_nan():
    with pytest.raises(ShapeError, match=r"same shape.*\(3, 1\) and \(3,\)"):
        semrsm.certified_gap(np.ones((3, 1)), np.ones(3))
    with pytest.raises(NonFiniteError, match="value"):
        semrsm.certified_gap(np.array([np.nan, 1.0]), np.array([1.0, 1.0]))
    with pytest.raises(NonFiniteError, match="bound"):
        semrsm.certified_gap(1.0, np.inf)
    with pytest.raises(semrsm.SemrsmError, match="real numbers"):
        semrsm.certified_gap("a", 1.0)


def test_certified_gap_values():
    gap = semrsm.certified_gap(np.array([1.0, 2.0, -1.0, 3.0]), np.array([1.0, 4.0, 0.0, 2.0]))
    np.testing.assert_array_equal(gap, [0.0, 0.5, np.inf, 0.0])
    assert semrsm.certified_gap(-1e308, 1e308) == pytest.approx(np.inf)  # no overflow warning


# --- item 9: the auction meets its target ------------------------------------------------------


def _scaled_pair(seed):
    rng = np.random.default_rng(seed)
    s, c = int(rng.integers(2, 24)), int(rng.integers(1, 5))
    x = rng.normal(size=(s, c)) * 10.0 ** rng.integers(-60, 61, size=(s, 1))
    y = rng.normal(size=(s, c)) * 10.0 ** rng.integers(-60, 61, size=(s, 1))
    return x @ y.T, int(rng.choice([1000, 30000]))


# 14385, 15477, 16820: the auction stopped at certified gaps of 66 %, 15 % and 15 % for a 0.1 %
# target (out of ε phases) before the fix; the others are a sweep.
@pytest.mark.parametrize("seed", [14385, 15477, 16820, *range(200)])
def test_auction_certified_gap_meets_its_target_with_scales_1e60(seed):
    A, gap_ppm = _scaled_pair(seed)
    if np.abs(A).max() > 1e300:
        pytest.skip("beyond the documented input range")
    if seed in (14385, 15477, 16820):
        gap_ppm = 1000
    perm, value, bound = semrsm.match_affinity(A, matcher="auction", gap_ppm=gap_ppm, return_bound=True)
    rows, cols = scipy_lsa(A, maximize=True)
    exact = A[rows, cols].sum()
    s = A.shape[0]
    rounding = 4 * s * s * np.finfo(float).eps * np.abs(A).max()
    assert sorted(perm) == list(range(s))
    assert value <= exact + rounding and exact <= bound + rounding
    scale = min(abs(value), abs(bound))
    if rounding < 0.1 * gap_ppm * 1e-6 * scale:  # the target is reachable in float64
        assert bound - value <= gap_ppm * 1e-6 * scale, semrsm.certified_gap(value, bound)


# --- item 6: Ctrl-C inside one long solve ------------------------------------------------------


def _interrupt_after(seconds):
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


def _slow_square(n, dtype):
    # c[i, j] = i·j, to be *minimised* (maximising it is trivial: the identity): long augmenting
    # paths for the shortest-augmenting-path solver. On an idle Zen 5 core, after the quantised
    # warm start: n = 5000 takes 2.3 s (float32, linear_sum_assignment) and 5.4 s (float64,
    # match_affinity of -c); the interrupt comes at 0.5 s, so a loaded machine only widens the
    # margin. (The maximised n = 4000 case this test used before took 0.45-0.7 s by then: the
    # solve could end before the interrupt, and the test failed once under load.)
    i = np.arange(n, dtype=dtype)
    return np.outer(i, i)


@pytest.mark.parametrize(
    "call",
    [
        lambda: semrsm.linear_sum_assignment(_slow_square(5000, np.float32)),
        lambda: semrsm.match_affinity(-_slow_square(5000, np.float64)),
    ],
    ids=["linear_sum_assignment", "match_affinity"],
)
@pytest.mark.usefixtures("python_sigint")
def test_ctrl_c_stops_one_long_solve(call):
    """Ctrl-C was ignored until the single solve ended (the flag was not passed to the solver)."""
    start = time.perf_counter()
    timer = _interrupt_after(0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            call()
    finally:
        timer.cancel()
    # The solver polls once per augmenting row: it stops within a row, far below a full solve.
    assert time.perf_counter() - start < 5.0


@pytest.mark.usefixtures("python_sigint")
def test_small_problems_stay_interruptible_between_calls():
    """Small solves run inline (no helper thread); Ctrl-C lands right after the current call."""
    c = np.random.default_rng(0).random((4, 4))
    timer = _interrupt_after(0.2)
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            while time.perf_counter() - start < 30:
                semrsm.linear_sum_assignment(c)
    finally:
        timer.cancel()
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize("layer", ["block10", "block15"])
def test_auction_meets_its_default_target_on_the_real_example(shifted_pairs, layer):
    """On block15 (centred), one pair ended at a certified gap of 3.06 % for the 3 % default."""
    G, bound = semrsm.gram(shifted_pairs[layer], matcher="auction", return_bound=True)
    assert semrsm.certified_gap(G, bound).max() <= 0.03
    G_exact = semrsm.gram(shifted_pairs[layer], matcher="exact")
    scale = np.abs(G_exact).max()
    assert np.all(G <= G_exact + 1e-9 * scale) and np.all(G_exact <= bound + 1e-9 * scale)
