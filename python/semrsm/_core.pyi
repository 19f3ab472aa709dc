from typing import Optional

import numpy as np
import numpy.typing as npt

__all__ = [
    "MATCHERS",
    "MATCHER_OPTIONS",
    "NonFiniteError",
    "OptionError",
    "SemrsmError",
    "ShapeError",
    "TooLargeError",
    "__version__",
    "gram",
    "linear_sum_assignment",
    "match_affinity",
    "linear_sum_assignment_f32",
]
__version__: str
MATCHERS: list[str]
MATCHER_OPTIONS: dict[str, list[str]]

class SemrsmError(ValueError): ...
class ShapeError(SemrsmError): ...
class NonFiniteError(SemrsmError): ...
class OptionError(SemrsmError): ...
class TooLargeError(SemrsmError): ...

def gram(
    x: npt.NDArray[np.float64],
    y: Optional[npt.NDArray[np.float64]] = None,
    *,
    matcher: str = "exact",
    options: Optional[dict[str, int]] = None,
    threads: Optional[int] = None,
    return_permutations: bool = False,
    precision: str = "float64",
    return_bound: bool = False,
) -> tuple[
    npt.NDArray[np.float64], Optional[npt.NDArray[np.int64]], Optional[npt.NDArray[np.float64]]
]: ...
def match_affinity(
    affinity: npt.NDArray[np.float64],
    norms_x: npt.NDArray[np.float64],
    norms_y: npt.NDArray[np.float64],
    *,
    matcher: str = "exact",
    options: Optional[dict[str, int]] = None,
    return_bound: bool = False,
) -> tuple[npt.NDArray[np.int64], float, Optional[float]]: ...
def linear_sum_assignment(
    cost: npt.NDArray[np.float64], maximize: bool = False
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], float]: ...
def linear_sum_assignment_f32(
    cost: npt.NDArray[np.float32], maximize: bool = False
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], float]: ...
