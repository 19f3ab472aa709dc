"""Exception classes of semrsm.

They are defined in the compiled core (so errors raised in Rust and in Python are the same
classes) and re-exported here. All subclass :class:`SemrsmError`, itself a :class:`ValueError`:

- :class:`ShapeError`: wrong number of dimensions, mismatched ``S`` or ``C``, empty input.
- :class:`NonFiniteError`: NaN or infinity in an input, or values whose products would overflow.
- :class:`OptionError`: unknown kernel, matcher, layout or option; option value out of range.
- :class:`TooLargeError`: the request exceeds semrsm's memory limits (the message says which).
- :class:`DTypeError`: a dtype that cannot be converted safely to ``float64`` where scipy raises a
  ``TypeError`` (:func:`semrsm.linear_sum_assignment`); it is a ``TypeError`` too.
"""

from ._core import NonFiniteError, OptionError, SemrsmError, ShapeError, TooLargeError

__all__ = ["SemrsmError", "ShapeError", "NonFiniteError", "OptionError", "TooLargeError", "DTypeError"]


class DTypeError(SemrsmError, TypeError):
    """An input's dtype cannot be cast safely to ``float64`` (strings, objects, complex, float128).

    Both a :class:`SemrsmError` (hence a ``ValueError``) and a ``TypeError``, so code written for
    scipy's ``linear_sum_assignment`` (which raises ``TypeError``) keeps working.
    """
