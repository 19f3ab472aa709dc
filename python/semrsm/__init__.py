"""semrsm: semantic representational similarity matrices (RSMs) and CKA.

A *semantic* RSM compares two inputs after the spatial permutation that best aligns their
representations (a linear assignment problem per pair); a *spatio-semantic* RSM compares them
position by position. Main entry point::

    import semrsm
    K = semrsm.build(z, kernel="rbf", matcher="exact")   # z: (N, C, H, W) or (N, S, C)
    K = semrsm.build(z, matcher="batch_optimal", b=512)  # the paper's approximation
    G, bound = semrsm.gram(z, matcher="auction", return_bound=True)  # certified approximation

See :func:`build`, :func:`gram`, :func:`match_affinity`, :func:`certified_gap`,
:mod:`semrsm.kernels`, :func:`cka`, and :mod:`semrsm.analysis` for the paper's experiments
(retrieval, class-probability agreement, translation, layer-by-layer CKA).
"""

from . import analysis, kernels
from ._api import MATCHERS, PRECISIONS, build, certified_gap, gram, match_affinity
from ._core import __version__
from ._example import load_example
from ._layer_cka import layer_cka, minibatch_cka
from ._errors import DTypeError, NonFiniteError, OptionError, SemrsmError, ShapeError, TooLargeError
from ._validation import LAYOUTS
from .cka import center_gram, cka, hsic
from .lap import linear_sum_assignment

__all__ = [
    "__version__",
    "build",
    "gram",
    "match_affinity",
    "certified_gap",
    "kernels",
    "analysis",
    "center_gram",
    "hsic",
    "cka",
    "minibatch_cka",
    "layer_cka",
    "linear_sum_assignment",
    "load_example",
    "MATCHERS",
    "LAYOUTS",
    "PRECISIONS",
    "SemrsmError",
    "ShapeError",
    "NonFiniteError",
    "OptionError",
    "TooLargeError",
    "DTypeError",
]
