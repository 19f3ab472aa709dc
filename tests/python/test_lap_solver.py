"""The exact solver against scipy on problems large enough for its warm start (n >= 32)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import TOKEN_AFFINITY, per_isa
from scipy.optimize import linear_sum_assignment as scipy_lsa

import semrsm


def _objective(cost: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> float:
    return float(np.asarray(cost, dtype=np.float64)[rows, cols].sum())


def _matrices(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    relu = lambda n, c: np.maximum(rng.normal(size=(n, c)), 0.0)  # noqa: E731
    return {
        "uniform-32": rng.random((32, 32)),
        "uniform-129": rng.random((129, 129)),
        "ties-64": rng.integers(0, 3, size=(64, 64)).astype(np.float64),
        "relu-affinity-300": relu(300, 24) @ relu(300, 24).T,
        "signed-affinity-200": rng.normal(size=(200, 16)) @ rng.normal(size=(200, 16)).T,
        "rank-one-100": np.outer(rng.random(100), rng.random(100)),
        "wide-range-80": rng.random((80, 80)) * 10.0 ** rng.integers(-8, 8, size=(80, 80)),
        "rectangular-90x140": rng.random((90, 140)),
        "rectangular-140x90": rng.random((140, 90)),
    }


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_objective_equals_scipy(seed: int, maximize: bool) -> None:
    for name, cost in _matrices(seed).items():
        rows, cols = semrsm.linear_sum_assignment(cost, maximize=maximize)
        r0, c0 = scipy_lsa(cost, maximize=maximize)
        assert np.array_equal(rows, r0), name
        assert len(set(cols.tolist())) == len(cols), name
        ours, theirs = _objective(cost, rows, cols), _objective(cost, r0, c0)
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-300), name


def test_real_affinities_equal_scipy() -> None:
    z = semrsm.load_example()["block10"].astype(np.float64)  # (20, 112, 14, 14): S = 196
    v = z.reshape(20, 112, 196).transpose(0, 2, 1)
    v = v - v.mean(axis=0)
    for i, j in [(0, 10), (3, 7), (5, 15), (12, 19)]:
        a = v[i] @ v[j].T
        rows, cols = semrsm.linear_sum_assignment(a, maximize=True)
        r0, c0 = scipy_lsa(a, maximize=True)
        assert _objective(a, rows, cols) == pytest.approx(_objective(a, r0, c0), rel=1e-12)


def _late_layer_affinities(z: np.ndarray, pairs: list[tuple[int, int]]) -> list[np.ndarray]:
    n, c, h, w = z.shape
    v = z.astype(np.float64).reshape(n, c, h * w).transpose(0, 2, 1)
    v = v - v.mean(axis=0)
    return [np.ascontiguousarray(v[i] @ v[j].T) for i, j in pairs]


def _variants(a: np.ndarray) -> dict[str, np.ndarray]:
    """A real affinity and harder relatives: every column duplicated (the rows' favourite columns
    twice over), rescaled to huge and to subnormal magnitudes, and rounded to few values (ties)."""
    return {
        "real": a,
        "duplicate columns": np.repeat(a[:, : a.shape[1] // 2 + 1], 2, axis=1)[:, : a.shape[1]],
        "huge": a * 1e295,
        "subnormal": np.round(a / np.abs(a).max() * 1000) * 5e-324,
        "ties": np.round(a / np.abs(a).max() * 4),
    }


def test_late_layer_affinities_equal_scipy() -> None:
    """S = 49 (7×7 maps, the bundled block15): the size the solver starts from the reductions for,
    with its real structure (the rows' best columns fall on a few columns) and harder relatives;
    through linear_sum_assignment, match_affinity and gram."""
    z = semrsm.load_example()["block15"]  # (20, 320, 7, 7)
    for a in _late_layer_affinities(z, [(0, 10), (1, 2), (4, 14), (8, 19)]):
        for name, cost in _variants(a).items():
            for maximize in (True, False):
                rows, cols = semrsm.linear_sum_assignment(cost, maximize=maximize)
                r0, c0 = scipy_lsa(cost, maximize=maximize)
                assert len(set(cols.tolist())) == len(cols), name
                assert _objective(cost, rows, cols) == pytest.approx(
                    _objective(cost, r0, c0), rel=1e-12, abs=1e-300
                ), (name, maximize)
            _, value = semrsm.match_affinity(cost, matcher="exact")
            best = _objective(cost, *scipy_lsa(cost, maximize=True))
            assert value == pytest.approx(best, rel=1e-12, abs=1e-300), name


def test_real_7x7_crops_equal_scipy() -> None:
    """The shared 2000-view EfficientNet fixture at 7×7 (float16 maps), S = 49."""
    from conftest import require_shared_file

    with np.load(require_shared_file("effnet_lite0_crops2000.npz")) as data:
        z = data["block15"][:300]
    rng = np.random.default_rng(13)
    pairs = [tuple(sorted(rng.choice(300, size=2, replace=False).tolist())) for _ in range(12)]
    for a in _late_layer_affinities(z, pairs):
        rows, cols = semrsm.linear_sum_assignment(a, maximize=True)
        r0, c0 = scipy_lsa(a, maximize=True)
        assert _objective(a, rows, cols) == pytest.approx(_objective(a, r0, c0), rel=1e-12)


def test_float32_matrix_solved_exactly_in_its_own_precision() -> None:
    rng = np.random.default_rng(5)
    cost = rng.random((150, 150)).astype(np.float32)
    rows, cols = semrsm.linear_sum_assignment(cost, maximize=True)
    r0, c0 = scipy_lsa(cost.astype(np.float64), maximize=True)
    assert _objective(cost, rows, cols) == pytest.approx(_objective(cost, r0, c0), rel=1e-12)


def test_tiny_values_terminate_and_match_scipy() -> None:
    """Issue 9: subnormal costs hung the solver's warm start (and gram/batch_optimal with it)."""
    script = """
import numpy as np, semrsm
from scipy.optimize import linear_sum_assignment as ref
c = np.random.default_rng(0).integers(0, 1000, size=(32, 32)) * 5e-324
r, cols = semrsm.linear_sum_assignment(c)
assert c[r, cols].sum() == c[ref(c)].sum()
x = np.random.default_rng(0).random((2, 1, 4, 8)) * 1e-161
for m in ("exact", "batch_optimal", "auction", "topk_greedy"):
    G = semrsm.gram(x, center=False, matcher=m, layout="nchw")
    assert np.isfinite(G).all()
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def _same_on_every_isa_and_optimal(results: dict) -> None:
    """``results``: per instruction set, the arrays a :func:`per_isa` script saved as
    ``(cost, rows, cols, maximize)`` quadruples. Every instruction set finds the same assignment
    (ties included), a permutation, at scipy's objective to rel. 1e-12."""
    first = next(iter(results.values()))
    for isa, arrays in results.items():
        for k in range(0, len(arrays), 4):
            assert np.array_equal(arrays[k + 2], first[k + 2]), (isa, k)
    # The same assignment everywhere: scipy once per problem.
    for k in range(0, len(first), 4):
        cost, rows, cols, maximize = first[k : k + 4]
        assert len(set(cols.tolist())) == len(cols), k
        r0, c0 = scipy_lsa(cost, maximize=bool(maximize))
        assert _objective(cost, rows, cols) == pytest.approx(_objective(cost, r0, c0), rel=1e-12), k


def test_warm_start_sizes_equal_scipy_on_every_isa(tmp_path: Path) -> None:
    """The auction warm start (square n >= 128) on every instruction set: its vector kernels
    (the AVX-512 scan reduces 16 lanes in registers, with a masked step for the last n mod 16
    columns; bids from candidate lists) on ViT-like token affinities in f64 and f32, ties and
    repeated columns, at sizes with every kind of tail; each run reaches scipy's objective, and
    every instruction set finds the same assignment (ties included: a bid from a candidate list
    whose best value ties the bound on the columns off the list rescans the row)."""
    script = TOKEN_AFFINITY + textwrap.dedent(
        """
        import sys, numpy as np, semrsm
        rng = np.random.default_rng(11)
        out = []
        for n in (128, 207, 257, 263, 520):
            a = token_affinity(rng, n, 384)
            for cost in (a, a.astype(np.float32), np.round(a / np.abs(a).max() * 3),
                         np.repeat(a[:, : n // 2 + 1], 2, axis=1)[:, :n]):
                for maximize in (True, False):
                    rows, cols = semrsm.linear_sum_assignment(cost, maximize=maximize)
                    out += [cost.astype(np.float64), rows, cols, np.array(maximize)]
        np.savez(sys.argv[1], *out)
        """
    )
    _same_on_every_isa_and_optimal(per_isa(script, tmp_path))


def test_quantised_warm_start_sizes_equal_scipy_and_agree_across_isas(tmp_path: Path) -> None:
    """From n = 2048 the warm start bids on 16-bit (and in its first rounds 8-bit) quantised
    copies of the costs, with one step for all rows and an offset per row: on ViT-like token
    affinities in f64 and f32, rows of ranges 10^±6 apart (the step doubles while the copy is
    made), ties, both senses and a size with a tail, every instruction set gives the same
    assignment, and it reaches scipy's objective."""
    script = TOKEN_AFFINITY + textwrap.dedent(
        """
        import sys, numpy as np, semrsm
        rng = np.random.default_rng(12)
        out = []
        for n in (2048, 2061):
            a = token_affinity(rng, n, 64)
            scaled = a * 10.0 ** np.linspace(-6, 6, n)[rng.permutation(n)][:, None]
            for cost in (a, a.astype(np.float32), scaled, np.round(a / np.abs(a).max() * 3)):
                for maximize in (True, False):
                    rows, cols = semrsm.linear_sum_assignment(cost, maximize=maximize)
                    out += [cost.astype(np.float64), rows, cols, np.array(maximize)]
        np.savez(sys.argv[1], *out)
        """
    )
    _same_on_every_isa_and_optimal(per_isa(script, tmp_path))
