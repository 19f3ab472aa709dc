"""Input and option checks shared by the public functions. Inputs of ``gram``/``build`` are read,
widened and centred in row blocks by :mod:`semrsm._tiles` (``Engine.block``)."""

from __future__ import annotations

import difflib
import numbers
from typing import Any, Iterable, Optional

import numpy as np

from ._errors import NonFiniteError, OptionError, SemrsmError, ShapeError

#: Accepted values of ``layout``. ``"auto"`` maps 4-D input to ``"nchw"``, 3-D to ``"nsc"`` and
#: 2-D to ``"nd"`` (pooled features ``(N, D)``: one position, ``S = 1``).
LAYOUTS = ("auto", "nchw", "nhwc", "nsc", "ncs", "nd")

_NDIM = {"nchw": 4, "nhwc": 4, "nsc": 3, "ncs": 3, "nd": 2}


def is_torch_tensor(a: Any) -> bool:
    """A torch tensor, recognised without importing torch."""
    module = type(a).__module__ or ""
    return (module == "torch" or module.startswith("torch.")) and hasattr(a, "device") and hasattr(a, "numpy")


def cpu_tensor(a: Any, name: str) -> Any:
    """A torch tensor on the CPU, detached (same memory); other devices raise a clear error."""
    device = a.device
    if getattr(device, "type", "cpu") != "cpu":
        raise SemrsmError(
            f"{name} is a torch tensor on device {str(device)!r}; semrsm computes on the CPU: pass "
            f"{name}.cpu() (copies it to host memory) or .numpy(force=True)"
        )
    if getattr(a, "requires_grad", False):
        a = a.detach()
    return a


def _torch_to_numpy(a: Any, name: str) -> np.ndarray:
    """A CPU tensor as a numpy array sharing its memory (``detach`` keeps the memory; only
    bfloat16, which numpy lacks, is copied to float32: features of ``gram``/``build`` and the CKA
    functions never come here, :mod:`semrsm._tiles` widens them block by block); other devices
    raise a clear error."""
    a = cpu_tensor(a, name)
    if str(getattr(a, "dtype", "")) == "torch.bfloat16":
        a = a.float()
    try:
        return np.asarray(a.numpy())
    except Exception as exc:  # e.g. a tensor with the negative or conjugate bit set
        raise SemrsmError(f"{name} (a torch tensor) could not be viewed as a numpy array: {exc}") from exc


def as_real_array(a: Any, name: str) -> np.ndarray:
    """``np.asarray(a)`` for real numeric data (float, int, uint), else :class:`SemrsmError`.

    CPU torch tensors become a view of the same memory (no copy, also when they require grad);
    tensors on another device (CUDA, MPS) raise :class:`SemrsmError` saying to call ``.cpu()``.
    """
    try:
        arr = _torch_to_numpy(a, name) if is_torch_tensor(a) else np.asarray(a)
    except SemrsmError:
        raise
    except Exception as exc:  # anything np.asarray refuses
        raise SemrsmError(f"{name} could not be converted to a numpy array: {exc}") from exc
    if arr.dtype.kind not in "fiu":
        raise SemrsmError(
            f"{name} must hold real numbers (float or int), got dtype {arr.dtype}"
        )
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise :class:`NonFiniteError` naming the first NaN/inf entry of ``arr``."""
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise NonFiniteError(
            f"{name} contains a non-finite value ({arr[index]}) at index {index}; "
            "semrsm needs finite numbers"
        )


def resolve_layout(ndim: int, layout: str, name: str) -> str:
    """The concrete layout for an array of ``ndim`` dimensions."""
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise OptionError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if layout == "auto":
        if ndim == 4:
            return "nchw"
        if ndim == 3:
            return "nsc"
        if ndim == 2:
            return "nd"
        raise ShapeError(
            f"{name} must be 4-D (N, C, H, W), 3-D (N, S, C) or 2-D (N, D), got {ndim}-D; "
            "pass layout= to say which axes are which"
        )
    if ndim != _NDIM[layout]:
        raise ShapeError(f"layout {layout!r} needs a {_NDIM[layout]}-D {name}, got {ndim}-D")
    return layout


#: Upper limit of ``threads`` (far above any machine; guards against typos such as 10**6).
MAX_THREADS = 1024

#: Matcher options are passed to Rust as signed 64-bit integers.
_I64 = (-(2**63), 2**63 - 1)


def check_threads(threads: Any) -> Optional[int]:
    """``None`` or an int in ``1..=MAX_THREADS``."""
    if threads is None:
        return None
    if (
        isinstance(threads, bool)
        or not isinstance(threads, numbers.Integral)
        or not 1 <= int(threads) <= MAX_THREADS
    ):
        raise OptionError(
            f"threads must be an integer from 1 to {MAX_THREADS}, or None for all cores; got {threads!r}"
        )
    return int(threads)


def check_matcher_options(options: dict[str, Any]) -> dict[str, int]:
    """Matcher options are integers (the core checks which names each matcher takes)."""
    checked = {}
    for key, value in options.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Integral)
            or not _I64[0] <= int(value) <= _I64[1]
        ):
            raise OptionError(f"matcher option {key}= must be an integer (64-bit), got {value!r}")
        checked[key] = int(value)
    return checked


def check_flag(value: Any, name: str) -> bool:
    """A real boolean (``True``/``False`` or ``numpy.bool_``), else :class:`OptionError`.

    Flags are not read by truthiness: ``return_bound="no"`` is an error, not ``True``.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise OptionError(f"{name} must be True or False, got {value!r}")


def check_keywords(options: dict[str, Any], function: str, keywords: Iterable[str]) -> None:
    """Reject keyword arguments that are neither ``function``'s own nor an option of some matcher.

    ``options`` are the ``**matcher_options`` a function received. A name that no matcher takes
    (e.g. a misspelt ``kernal=``) raises :class:`OptionError` naming it, the closest valid names
    and all valid keywords; names of other matchers' options are left to the core, which says
    which matcher takes them.
    """
    if not options:
        return
    from . import _core

    matcher_options = sorted({o for names in _core.MATCHER_OPTIONS.values() for o in names})
    for key in options:
        if key in matcher_options:
            continue
        valid = [*keywords, *matcher_options]
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        owners = ", ".join(
            f"{o} ({'/'.join(m for m, names in _core.MATCHER_OPTIONS.items() if o in names)})"
            for o in matcher_options
        )
        raise OptionError(
            f"{function}() got an unknown keyword argument {key!r}{hint}; valid keywords are "
            f"{', '.join(keywords)}, and the matcher options {owners}"
        )
