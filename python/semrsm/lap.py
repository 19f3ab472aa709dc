"""Direct access to semrsm's exact linear sum assignment solver."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._errors import DTypeError, SemrsmError, ShapeError

__all__ = ["linear_sum_assignment"]


def linear_sum_assignment(cost_matrix: Any, maximize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Solve the linear sum assignment problem exactly; a drop-in for scipy's function.

    Same signature, return value, input rules and error types as
    :func:`scipy.optimize.linear_sum_assignment` (scipy's own test file for it passes with only the
    import changed): for an ``n × m`` matrix, ``min(n, m)`` pairs ``(row_ind[k], col_ind[k])``,
    ``row_ind`` increasing, that minimise (or, with ``maximize=True``, maximise)
    ``cost_matrix[row_ind, col_ind].sum()``. Entries equal to ``+inf`` (``-inf`` with
    ``maximize=True``) are forbidden assignments: the result avoids them, and if no assignment of
    ``min(n, m)`` pairs can, the problem is infeasible.

    The solver is a shortest-augmenting-path method (Jonker–Volgenant family) in Rust, run with the
    GIL released. ``float32`` matrices without forbidden entries are solved in ``float32`` storage
    with ``float64`` sums; every other input is converted to ``float64``.

    Parameters
    ----------
    cost_matrix : array_like, shape (n, m)
        Real costs: any dtype numpy casts safely to ``float64`` (bool, int, uint, float16/32/64).
        Finite, or the infinity that forbids an assignment.
    maximize : bool
        Maximise instead of minimise.

    Returns
    -------
    row_ind, col_ind : ndarray of int64, shape (min(n, m),)

    Raises
    ------
    ShapeError
        If ``cost_matrix`` is not 2-D ("expected a matrix (2-D array) ...").
    DTypeError
        (a ``TypeError``) for dtypes numpy cannot cast safely to ``float64`` ("Cannot cast array
        data ...").
    NonFiniteError
        For NaN or the other infinity ("matrix contains invalid numeric entries ..."), or finite
        magnitudes above 1e300.
    SemrsmError
        If every assignment uses a forbidden entry ("cost matrix is infeasible ...").

    All except :class:`DTypeError` are ``ValueError``\\ s, as in scipy.

    Examples
    --------
    >>> import numpy as np
    >>> from semrsm import linear_sum_assignment
    >>> cost = np.array([[4, 1, 3], [2, 0, 5], [3, 2, 2]])
    >>> rows, cols = linear_sum_assignment(cost)
    >>> cols.tolist(), int(cost[rows, cols].sum())
    ([1, 0, 2], 5)
    >>> linear_sum_assignment(np.array([[np.inf, 1.0], [2.0, np.inf]]))[1].tolist()  # inf: forbidden
    [1, 0]
    """
    try:
        cost = np.asarray(cost_matrix)
    except Exception as exc:  # e.g. a torch tensor that requires grad
        raise SemrsmError(f"cost_matrix could not be converted to a numpy array: {exc}") from exc
    if not np.can_cast(cost.dtype, np.float64, casting="safe"):
        raise DTypeError(
            f"Cannot cast array data from {cost.dtype!r} to dtype('float64') according to the rule "
            "'safe': cost_matrix must hold real numbers (bool, int or float up to 64 bits)"
        )
    if cost.ndim != 2:
        raise ShapeError(
            f"expected a matrix (2-D array), got a {cost.ndim}-D array: cost_matrix has shape {cost.shape}"
        )
    if cost.dtype == np.float32:
        rows, cols, _ = _core.linear_sum_assignment_f32(np.ascontiguousarray(cost), bool(maximize))
    else:
        rows, cols, _ = _core.linear_sum_assignment(np.ascontiguousarray(cost, dtype=np.float64), bool(maximize))
    return rows, cols
