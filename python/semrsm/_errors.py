"""Exception classes of semrsm.

They are defined in the compiled core (so errors raised in Rust and in Python are the same
classes) and re-exported here. All subclass :class:`SemrsmError`, itself a :class:`ValueError`:

- :class:`ShapeError`: wrong number of dimensions, mismatched ``S`` or ``C``, empty input.
- :class:`NonFiniteError`: NaN or infinity in an input, or values whose products would overflow.
- :class:`OptionError`: unknown kernel, matcher, layout or option; option value out of range.
- :class:`TooLargeError`: the request exceeds semrsm's memory limits (the message says which).
"""

from ._core import NonFiniteError, OptionError, SemrsmError, ShapeError, TooLargeError

__all__ = ["SemrsmError", "ShapeError", "NonFiniteError", "OptionError", "TooLargeError"]
