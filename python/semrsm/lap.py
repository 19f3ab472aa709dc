"""Direct access to semrsm's exact linear sum assignment solver."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._errors import ShapeError
from ._validation import as_real_array, check_finite

__all__ = ["linear_sum_assignment"]


def linear_sum_assignment(cost_matrix: Any, maximize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Solve the linear sum assignment problem exactly; a drop-in for scipy's function.

    Same signature and return value as :func:`scipy.optimize.linear_sum_assignment`: for an
    ``n × m`` matrix, ``min(n, m)`` pairs ``(row_ind[k], col_ind[k])``, ``row_ind`` increasing, that
    minimise (or, with ``maximize=True``, maximise) ``cost_matrix[row_ind, col_ind].sum()``.

    The solver is a shortest-augmenting-path method (Jonker–Volgenant family) in Rust, run with the
    GIL released. ``float32`` matrices are solved in ``float32`` storage with ``float64`` sums; every
    other real dtype is converted to ``float64``.

    Parameters
    ----------
    cost_matrix : array_like, shape (n, m)
        Real, finite costs. Unlike scipy, infinite entries ("forbidden" assignments) are not
        accepted: use a large finite cost instead.
    maximize : bool
        Maximise instead of minimise.

    Returns
    -------
    row_ind, col_ind : ndarray of int64, shape (min(n, m),)

    Raises
    ------
    ShapeError
        If ``cost_matrix`` is not 2-D.
    NonFiniteError
        For NaN or infinite entries, or magnitudes above 1e300.
    SemrsmError
        For non-real dtypes.

    Examples
    --------
    >>> import numpy as np
    >>> from semrsm import linear_sum_assignment
    >>> cost = np.array([[4, 1, 3], [2, 0, 5], [3, 2, 2]])
    >>> rows, cols = linear_sum_assignment(cost)
    >>> cols.tolist(), int(cost[rows, cols].sum())
    ([1, 0, 2], 5)
    """
    cost = as_real_array(cost_matrix, "cost_matrix")
    if cost.ndim != 2:
        raise ShapeError(f"cost_matrix must be 2-D, got shape {cost.shape}")
    check_finite(cost, "cost_matrix")
    if cost.dtype == np.float32:
        rows, cols, _ = _core.linear_sum_assignment_f32(np.ascontiguousarray(cost), bool(maximize))
    else:
        rows, cols, _ = _core.linear_sum_assignment(np.ascontiguousarray(cost, dtype=np.float64), bool(maximize))
    return rows, cols
