from typing import Callable, Optional, Union

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
    "centre_rows",
    "gemm_abt",
    "gemm_abt_f32",
    "gram",
    "gram_none",
    "linear_sum_assignment",
    "match_affinity",
    "linear_sum_assignment_f32",
    "mixed_counters",
    "scan_rows",
    "scratch_bytes",
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
    x: Union[npt.NDArray[np.float64], npt.NDArray[np.float32]],
    y: Union[npt.NDArray[np.float64], npt.NDArray[np.float32], None] = None,
    *,
    matcher: str = "exact",
    options: Optional[dict[str, int]] = None,
    threads: Optional[int] = None,
    return_permutations: bool = False,
    return_bound: bool = False,
    progress: Optional[Callable[[int], object]] = None,
    prefix_tokens: int = 0,
    mixed_precision: bool = False,
) -> tuple[
    npt.NDArray[np.float64], Optional[npt.NDArray[np.int64]], Optional[npt.NDArray[np.float64]]
]: ...
def gram_none(
    x: Union[npt.NDArray[np.float64], npt.NDArray[np.float32]],
    y: Union[npt.NDArray[np.float64], npt.NDArray[np.float32], None] = None,
    *,
    mean: Optional[npt.NDArray[np.float64]] = None,
    precision: str = "float64",
    threads: Optional[int] = None,
    progress: Optional[Callable[[int], object]] = None,
    options: Optional[dict[str, int]] = None,
) -> npt.NDArray[np.float64]: ...
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
def scratch_bytes(
    s: int, c: int, elem_bytes: int, needs_affinity: bool, rows: Optional[int] = None, shift: bool = False
) -> int: ...
def gemm_abt(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
def gemm_abt_f32(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...
def mixed_counters() -> tuple[int, int, int, int, int, int, int]: ...
def scan_rows(
    rows: Union[npt.NDArray[np.float64], npt.NDArray[np.float32]],
    acc: Optional[npt.NDArray[np.float64]] = None,
    n: float = 1.0,
    threads: Optional[int] = None,
) -> tuple[float, bool]: ...
def centre_rows(
    raw: Union[npt.NDArray[np.float64], npt.NDArray[np.float32]],
    mean: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]: ...
