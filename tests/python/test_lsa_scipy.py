"""semrsm.linear_sum_assignment as a drop-in for scipy's: scipy's own test file, forbidden (+inf)
entries, every input dtype scipy takes, scipy's exception types and message phrases."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment as scipy_lsa

import semrsm
from conftest import SEEDS as seeds
from semrsm import DTypeError, NonFiniteError, SemrsmError, ShapeError

SCIPY_IMPORT = "from scipy.optimize import linear_sum_assignment\n"


def test_scipy_own_test_file_passes_with_only_the_import_changed(tmp_path: Path) -> None:
    """scipy ships ``scipy/optimize/tests/test_linear_assignment.py`` in its wheels: run it,
    unchanged but for the one import line, against semrsm; every test must pass."""
    spec = importlib.util.find_spec("scipy.optimize")
    assert spec is not None and spec.origin is not None
    original = Path(spec.origin).parent / "tests" / "test_linear_assignment.py"
    if not original.is_file():
        pytest.fail(f"{original} is missing: this scipy build does not ship its tests")
    text = original.read_text()
    assert text.count(SCIPY_IMPORT) == 1, "scipy's test file no longer imports the function this way"
    patched = text.replace(SCIPY_IMPORT, "from semrsm import linear_sum_assignment\n")
    target = tmp_path / "test_linear_assignment_semrsm.py"
    target.write_text(patched)
    # Its own pytest run with an empty configuration (scipy's file is not held to this project's
    # `filterwarnings = error`; it triggers a pytest deprecation warning).
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(target)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 22, summary
    assert not re.search(r"failed|error|skipped|xfail", summary), summary


# ----------------------------------------------------------------------------
# forbidden assignments (+inf; -inf with maximize=True) against scipy
# ----------------------------------------------------------------------------


def _sparse_cost(rng: np.random.Generator, n: int, m: int, density: float, ints: bool) -> np.ndarray:
    values = rng.integers(-50, 50, size=(n, m)).astype(np.float64) if ints else rng.normal(size=(n, m)) * 100
    return np.where(rng.random((n, m)) < density, values, np.inf)


def _both(cost: np.ndarray, maximize: bool):
    """(objective or None if infeasible) for scipy and semrsm, and semrsm's assignment."""
    out = []
    for solve in (scipy_lsa, semrsm.linear_sum_assignment):
        try:
            rows, cols = solve(cost, maximize=maximize)
        except ValueError as exc:
            assert str(exc).startswith("cost matrix is infeasible"), exc
            out.append((None, None))
            continue
        out.append((float(cost[rows, cols].sum()), (rows, cols)))
    return out


@given(seeds, st.integers(1, 12), st.integers(1, 12), st.sampled_from([0.2, 0.4, 0.7, 0.9]), st.booleans(), st.booleans())
def test_forbidden_entries_match_scipy(seed, n, m, density, ints, maximize):
    rng = np.random.default_rng(seed)
    cost = _sparse_cost(rng, n, m, density, ints)
    if maximize:
        cost = -cost
    (want, _), (got, assignment) = _both(cost, maximize)
    assert (want is None) == (got is None)
    if got is not None:
        rows, cols = assignment
        assert np.all(np.diff(rows) > 0) and len(set(cols.tolist())) == len(cols) == min(n, m)
        assert np.isfinite(cost[rows, cols]).all()
        assert got == want if ints else got == pytest.approx(want, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("n, density", [(40, 0.3), (100, 0.06), (200, 0.5), (150, 0.98)])
def test_forbidden_entries_large_square_match_scipy(n, density):
    """Sizes where square finite problems take the solver's warm start (n >= 32)."""
    rng = np.random.default_rng(n)
    for trial in range(3):
        cost = _sparse_cost(rng, n, n, density, ints=trial != 1)
        (want, _), (got, _) = _both(cost, False)
        assert (want is None) == (got is None)
        if got is not None:
            assert got == pytest.approx(want, rel=1e-12)


def test_forbidden_entries_with_float32_and_rectangular_input():
    rng = np.random.default_rng(4)
    for shape in [(30, 50), (50, 30), (64, 64)]:
        cost = _sparse_cost(rng, *shape, 0.5, ints=True).astype(np.float32)
        rows, cols = semrsm.linear_sum_assignment(cost)
        r0, c0 = scipy_lsa(cost)
        assert cost[rows, cols].sum(dtype=np.float64) == cost[r0, c0].sum(dtype=np.float64)


# ----------------------------------------------------------------------------
# input dtypes and errors, as scipy has them
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint8, np.int32, np.int64, np.uint64, np.float16, np.float32])
def test_every_dtype_scipy_takes_gives_scipys_objective(dtype):
    rng = np.random.default_rng(7)
    raw = rng.integers(0, 2, size=(9, 9)) if dtype is np.bool_ else rng.integers(0, 100, size=(9, 9))
    cost = raw.astype(dtype)
    for maximize in (False, True):
        rows, cols = semrsm.linear_sum_assignment(cost, maximize=maximize)
        r0, c0 = scipy_lsa(cost, maximize=maximize)
        c64 = cost.astype(np.float64)
        assert c64[rows, cols].sum() == c64[r0, c0].sum()


@pytest.mark.parametrize(
    "cost",
    [np.array([["a", "b"], ["c", "d"]]), np.eye(2) + 1j, np.eye(2).astype(object), np.eye(2, dtype=np.longdouble)],
    ids=["str", "complex", "object", "longdouble"],
)
def test_uncastable_dtypes_raise_scipys_type_error(cost):
    with pytest.raises(TypeError, match="Cannot cast array data") as scipy_info:
        scipy_lsa(cost)
    with pytest.raises(DTypeError, match="Cannot cast array data") as info:
        semrsm.linear_sum_assignment(cost)
    assert isinstance(info.value, TypeError) and isinstance(info.value, SemrsmError)
    assert str(info.value).startswith(str(scipy_info.value))


@pytest.mark.parametrize(
    "cost, maximize, exc, phrase",
    [
        (np.arange(3.0), False, ShapeError, "expected a matrix"),
        (np.zeros((2, 2, 2)), False, ShapeError, "expected a matrix"),
        (np.diag([np.nan, 1, 1]), False, NonFiniteError, "matrix contains invalid numeric entries"),
        (np.diag([1, -np.inf, 1]), False, NonFiniteError, "matrix contains invalid numeric entries"),
        (np.diag([1, np.inf, 1]), True, NonFiniteError, "matrix contains invalid numeric entries"),
        (np.array([[np.inf, 1.0], [np.inf, 2.0]]), False, SemrsmError, "cost matrix is infeasible"),
        (np.array([[-np.inf, 1.0], [-np.inf, 2.0]]), True, SemrsmError, "cost matrix is infeasible"),
        (np.array([[1.0, np.inf, np.inf], [2.0, np.inf, np.inf], [3, 4, 5]]), False, SemrsmError, "cost matrix is infeasible"),
    ],
)
def test_value_errors_carry_scipys_phrase_first(cost, maximize, exc, phrase):
    with pytest.raises(ValueError, match=re.escape(phrase)):
        scipy_lsa(cost, maximize=maximize)
    with pytest.raises(exc) as info:
        semrsm.linear_sum_assignment(cost, maximize=maximize)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(phrase), str(info.value)


def test_dense_finite_float32_still_solved_in_float32_storage():
    """The finite fast path is unchanged: a float32 matrix gives scipy's optimum of its values."""
    cost = np.random.default_rng(9).random((120, 120)).astype(np.float32)
    rows, cols = semrsm.linear_sum_assignment(cost, maximize=True)
    r0, c0 = scipy_lsa(cost.astype(np.float64), maximize=True)
    c64 = cost.astype(np.float64)
    assert c64[rows, cols].sum() == pytest.approx(c64[r0, c0].sum(), rel=1e-12)
