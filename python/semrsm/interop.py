"""Interoperability with rsatoolbox (optional: ``pip install 'semrsm[rsa]'``).

semrsm builds *similarity* matrices (RSMs); rsatoolbox works with *dissimilarity* matrices
(``rsatoolbox.rdm.RDMs``). :func:`to_rdms` converts one or more RSMs, :func:`from_rdms` converts
back, so rsatoolbox's comparison and inference tools (``rsatoolbox.rdm.compare``, model fitting,
bootstrapping) apply to semantic RSMs.

Two conversions (``method``):

- ``"kernel"`` (default): the squared distance in the kernel's feature space,
  ``D[i, j] = K[i, i] + K[j, j] - 2 K[i, j]``. For the linear kernel this is the squared
  Euclidean distance of the (matched) representations; for cosine and RBF (unit diagonal) it is
  ``2 - 2 K``. Back: ``K = -½ H D H`` (``H`` the centring matrix), the *centred* kernel matrix
  (classical multidimensional scaling), i.e. ``semrsm.center_gram(K)``.
- ``"one_minus"``: ``D = 1 - K`` and back ``K = 1 - D``; exact for a symmetric K with unit
  diagonal (cosine, RBF).

A semantic RSM's kernel distance is not always a metric (the matching makes ``G`` a maximum over
permutations, so ``D`` can violate the triangle inequality); rsatoolbox does not require one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, Sequence, Union

import numpy as np

from ._errors import OptionError, SemrsmError, ShapeError

__all__ = ["to_rdms", "from_rdms", "METHODS"]

#: Accepted ``method`` values.
METHODS = ("kernel", "one_minus")
_MEASURES = {"kernel": "semrsm kernel distance K_ii + K_jj - 2 K_ij", "one_minus": "semrsm 1 - similarity"}


def _rsatoolbox() -> Any:
    try:
        import rsatoolbox.rdm
    except ImportError as exc:
        raise SemrsmError("semrsm.interop needs rsatoolbox: pip install 'semrsm[rsa]'") from exc
    return rsatoolbox.rdm


def _check_method(method: Any) -> str:
    if method not in METHODS:
        raise OptionError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def to_rdms(
    rsms: Union[Any, Sequence[Any], Mapping[str, Any]],
    *,
    method: str = "kernel",
    pattern_descriptors: Optional[Mapping[str, Sequence[Any]]] = None,
) -> Any:
    """Convert RSMs to one ``rsatoolbox.rdm.RDMs`` object (dissimilarities).

    Parameters
    ----------
    rsms : (N, N) array, sequence of (N, N) arrays, or mapping name -> (N, N) array
        Symmetric similarity matrices of the same N conditions (e.g. spatio-semantic and semantic
        RSMs of one layer). Names become the rdm descriptor ``"name"`` (default ``"rsm 0"``, ...).
    method : {"kernel", "one_minus"}
        Similarity -> dissimilarity conversion; see the module docstring.
    pattern_descriptors : mapping of str -> sequence, optional
        Per-condition descriptors for rsatoolbox, e.g. ``{"photo": names}`` (each of length N).
        Default ``{"index": [0, ..., N-1]}``.

    Returns
    -------
    rsatoolbox.rdm.RDMs
        ``n_rdm = len(rsms)`` RDMs of ``n_cond = N`` conditions, ``dissimilarity_measure`` naming
        the conversion and rdm descriptors ``"name"`` and ``"semrsm_method"``.

    Raises
    ------
    ShapeError
        Not square, different N, not symmetric (relative 1e-9), or descriptors of the wrong length.
    NonFiniteError
        NaN or infinity.
    OptionError
        Unknown ``method``.
    SemrsmError
        rsatoolbox is not installed.

    Examples
    --------
    >>> import numpy as np, semrsm
    >>> from semrsm import interop
    >>> z = semrsm.load_example()["block15"]
    >>> K = semrsm.build(z, kernel="cosine")
    >>> rdms = interop.to_rdms({"semantic": K}, method="one_minus")  # doctest: +SKIP
    >>> rdms.n_rdm, rdms.n_cond                                       # doctest: +SKIP
    (1, 20)
    """
    from .analysis import _finite, _matrix

    _check_method(method)
    rdm = _rsatoolbox()
    if isinstance(rsms, Mapping):
        names = [str(k) for k in rsms]
        mats = list(rsms.values())
    elif isinstance(rsms, np.ndarray) and rsms.ndim == 2:
        names, mats = ["rsm 0"], [rsms]
    else:
        mats = list(rsms)
        names = [f"rsm {i}" for i in range(len(mats))]
    if not mats:
        raise ShapeError("no RSM to convert")
    checked = [_finite(_matrix(K, f"RSM {name!r}", square=True), f"RSM {name!r}") for name, K in zip(names, mats)]
    n = checked[0].shape[0]
    dissimilarities = np.empty((len(checked), n, n))
    for k, (name, K) in enumerate(zip(names, checked)):
        if K.shape[0] != n:
            raise ShapeError(f"all RSMs must have the same N, got {n} and {K.shape[0]} ({name!r})")
        scale = max(float(np.abs(K).max()), np.finfo(float).tiny)
        if np.abs(K - K.T).max() > 1e-9 * scale:
            raise ShapeError(f"RSM {name!r} is not symmetric; RDMs need symmetric matrices")
        K = (K + K.T) / 2.0
        if method == "kernel":
            d = np.diag(K)
            D = d[:, None] + d[None, :] - 2.0 * K
        else:
            D = 1.0 - K
        np.fill_diagonal(D, 0.0)
        dissimilarities[k] = D
    patterns = {"index": list(range(n))} if pattern_descriptors is None else {str(k): list(v) for k, v in pattern_descriptors.items()}
    for key, values in patterns.items():
        if len(values) != n:
            raise ShapeError(f"pattern descriptor {key!r} has {len(values)} entries for {n} conditions")
    return rdm.RDMs(
        dissimilarities,
        dissimilarity_measure=_MEASURES[method],
        rdm_descriptors={"name": names, "semrsm_method": [method] * len(names)},
        pattern_descriptors=patterns,
    )


def from_rdms(rdms: Any, *, method: str = "kernel") -> np.ndarray:
    """Convert an ``rsatoolbox.rdm.RDMs`` object back to similarity matrices.

    Parameters
    ----------
    rdms : rsatoolbox.rdm.RDMs
        Any RDMs (from :func:`to_rdms` or from rsatoolbox).
    method : {"kernel", "one_minus"}
        ``"kernel"``: ``K = -½ H D H``, the centred kernel matrix whose kernel distances are ``D``
        (for ``D`` from :func:`to_rdms`, equal to ``semrsm.center_gram(K)``); ``"one_minus"``:
        ``K = 1 - D``.

    Returns
    -------
    ndarray of float64, shape (n_rdm, N, N)
        One similarity matrix per RDM (index ``[0]`` for a single one).

    Raises
    ------
    OptionError
        Unknown ``method``.
    SemrsmError
        ``rdms`` is not an rsatoolbox RDMs object, or rsatoolbox is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from semrsm import interop
    >>> K = np.array([[1.0, 0.2, 0.1], [0.2, 1.0, 0.5], [0.1, 0.5, 1.0]])
    >>> back = interop.from_rdms(interop.to_rdms(K, method="one_minus"), method="one_minus")  # doctest: +SKIP
    >>> bool(np.allclose(back[0], K))                                                           # doctest: +SKIP
    True
    """
    _check_method(method)
    _rsatoolbox()
    if not hasattr(rdms, "get_matrices"):
        raise SemrsmError(f"expected an rsatoolbox.rdm.RDMs object, got {type(rdms).__name__}")
    D = np.asarray(rdms.get_matrices(), dtype=np.float64)
    if method == "one_minus":
        return 1.0 - D
    n = D.shape[-1]
    H = np.eye(n) - 1.0 / n
    return -0.5 * H @ D @ H
