"""Layer outputs of a PyTorch model, streamed to ``.npy`` files that :func:`semrsm.gram` reads.

::

    from semrsm.extract import extract
    paths = extract(model, loader, ["layer1", "layer4"], "features/")   # forward hooks
    K = semrsm.build(np.load(paths["layer4"], mmap_mode="r"), matcher="exact")

:func:`extract` registers a forward hook on each named module (names as in
``model.named_modules()``), runs the model over a ``DataLoader`` without gradients and appends
each layer's outputs to ``<folder>/<name>.npy`` batch by batch, so a data set larger than memory
becomes one memory-mappable array per layer. PyTorch is needed only for :func:`extract` itself
(``pip install torch``); :class:`NpyWriter`, the streaming writer it uses, is plain numpy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ._errors import OptionError, SemrsmError, ShapeError

__all__ = ["extract", "NpyWriter"]

#: Bytes reserved for the ``.npy`` header (magic + length + dict), enough for any shape.
_HEADER_BYTES = 256


class NpyWriter:
    """Append arrays along the first axis to a ``.npy`` file of unknown final length.

    The header is written with a placeholder shape and rewritten on :meth:`close` with the real
    number of rows (its size is fixed at 256 bytes, so nothing moves). Until then the file is
    incomplete; it is written to ``path + ".part"`` and renamed on close, so a crash never
    leaves a truncated ``.npy`` that looks complete.

    Parameters
    ----------
    path : str or Path
        Output file (``.npy``).
    dtype : numpy dtype, optional
        Stored dtype; default the first batch's.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from semrsm.extract import NpyWriter
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "a.npy")
    >>> with NpyWriter(path) as w:
    ...     w.append(np.zeros((2, 3), np.float32))
    ...     w.append(np.ones((1, 3), np.float32))
    >>> np.load(path, mmap_mode="r").shape
    (3, 3)
    """

    def __init__(self, path: Union[str, Path], dtype: Any = None) -> None:
        self.path = Path(path)
        self._partial = self.path.with_name(self.path.name + ".part")
        self._dtype = None if dtype is None else np.dtype(dtype)
        self._row_shape: Optional[tuple[int, ...]] = None
        self._rows = 0
        self._file: Any = None

    def _header(self, rows: int) -> bytes:
        assert self._dtype is not None and self._row_shape is not None
        shape = (rows, *self._row_shape)
        text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (
            np.lib.format.dtype_to_descr(self._dtype),
            shape,
        )
        body = text.encode("latin1")
        room = _HEADER_BYTES - 10 - 1  # magic (6) + version (2) + length (2), final newline
        if len(body) > room:
            raise ShapeError(f"array shape {shape} is too long for the .npy header")
        body += b" " * (room - len(body)) + b"\n"
        return b"\x93NUMPY\x01\x00" + (len(body)).to_bytes(2, "little") + body

    def append(self, batch: Any) -> None:
        """Append ``batch`` (shape ``(b, *row_shape)``, the same row shape every time)."""
        arr = np.asarray(batch)
        if arr.ndim < 1:
            raise ShapeError("a batch needs a first (sample) axis")
        if self._row_shape is None:
            self._row_shape = tuple(int(d) for d in arr.shape[1:])
            self._dtype = arr.dtype if self._dtype is None else self._dtype
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self._partial, "wb")  # noqa: SIM115 - closed in close()
            self._file.write(self._header(0))
        elif tuple(arr.shape[1:]) != self._row_shape:
            raise ShapeError(f"{self.path.name}: batch rows of shape {arr.shape[1:]}, earlier {self._row_shape}")
        self._file.write(np.ascontiguousarray(arr, dtype=self._dtype).tobytes())
        self._rows += arr.shape[0]

    def close(self) -> Path:
        """Write the final header and move the file into place; returns its path."""
        if self._file is None:
            raise SemrsmError(f"{self.path.name}: nothing was appended")
        self._file.seek(0)
        self._file.write(self._header(self._rows))
        self._file.close()
        self._file = None
        os.replace(self._partial, self.path)
        return self.path

    def __enter__(self) -> "NpyWriter":
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is None:
            self.close()
        elif self._file is not None:
            self._file.close()
            self._file = None


def _default_input(batch: Any) -> Any:
    """The model input of a DataLoader batch: the batch itself, or its first element."""
    if isinstance(batch, (tuple, list)):
        return batch[0]
    if isinstance(batch, Mapping):
        for key in ("pixel_values", "input", "inputs", "image", "images", "x"):
            if key in batch:
                return batch[key]
        raise OptionError(f"cannot tell the model input in a batch with keys {list(batch)}; pass get_input=")
    return batch


def extract(
    model: Any,
    loader: Any,
    layers: Union[Sequence[str], Mapping[str, str]],
    folder: Union[str, Path],
    *,
    device: Any = None,
    dtype: Any = np.float32,
    get_input: Callable[[Any], Any] = _default_input,
    max_batches: Optional[int] = None,
) -> dict[str, Path]:
    """Run ``model`` over ``loader`` and stream the outputs of named modules to ``.npy`` files.

    Parameters
    ----------
    model : torch.nn.Module
        Put into ``eval()`` mode for the run (its previous mode is restored afterwards).
    loader : iterable of batches
        E.g. a ``torch.utils.data.DataLoader``; keep ``shuffle=False`` so rows follow the data set.
    layers : sequence of str, or mapping module name -> file name
        Module names as in ``dict(model.named_modules())``; the file is ``<folder>/<name>.npy``
        (dots in names are kept). A module whose output is a tuple contributes its first element
        (as transformer blocks that return ``(hidden, attention)`` do).
    folder : str or Path
        Output folder, created if needed.
    device : torch.device or str, optional
        Where inputs are moved before the forward pass; default the device of the model's first
        parameter (CPU for a model without parameters).
    dtype : numpy dtype
        Stored dtype (default float32: half the size of float64, what :func:`semrsm.gram`
        converts anyway).
    get_input : callable
        Picks the model input out of a batch; default: the batch, its first element (a
        ``(inputs, labels)`` tuple) or a common key of a dict batch.
    max_batches : int, optional
        Stop after this many batches.

    Returns
    -------
    dict of str -> Path
        File of each layer, ``(N, *output_shape)`` — for a CNN ``(N, C, H, W)``, which
        :func:`semrsm.build` reads with ``layout="auto"``; for a ViT ``(N, T, D)``.

    Raises
    ------
    OptionError
        A name that is not a module of ``model``, or duplicate file names.
    SemrsmError
        PyTorch is not installed, or a layer produced no output (it was not called).

    Examples
    --------
    >>> import numpy as np, torch                                     # doctest: +SKIP
    >>> from semrsm.extract import extract                            # doctest: +SKIP
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())  # doctest: +SKIP
    >>> loader = torch.utils.data.DataLoader(torch.randn(10, 3, 8, 8), batch_size=4)  # doctest: +SKIP
    >>> paths = extract(model, loader, ["0", "1"], "features")        # doctest: +SKIP
    >>> np.load(paths["1"], mmap_mode="r").shape                      # doctest: +SKIP
    (10, 4, 6, 6)
    """
    try:
        import torch
    except ImportError as exc:
        raise SemrsmError("semrsm.extract needs PyTorch: pip install torch") from exc
    names = dict(layers) if isinstance(layers, Mapping) else {str(n): str(n) for n in layers}
    if not names:
        raise OptionError("layers is empty; name at least one module of the model")
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        known = ", ".join(list(modules)[:20])
        raise OptionError(f"no module named {missing} in the model; modules include: {known}")
    if len(set(names.values())) != len(names):
        raise OptionError("two layers map to the same file name")
    if max_batches is not None and (isinstance(max_batches, bool) or not isinstance(max_batches, int) or max_batches < 1):
        raise OptionError(f"max_batches must be a positive integer, got {max_batches!r}")
    if device is None:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")

    folder = Path(folder)
    writers = {n: NpyWriter(folder / f"{file}.npy", dtype=dtype) for n, file in names.items()}
    captured: dict[str, Any] = {}

    def hook_for(name: str) -> Callable[..., None]:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            if isinstance(output, (tuple, list)):
                output = output[0]
            output = output.detach().to("cpu")
            if output.dtype == torch.bfloat16:  # numpy has no bfloat16
                output = output.float()
            captured[name] = output.numpy()

        return hook

    handles = [modules[n].register_forward_hook(hook_for(n)) for n in names]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for b, batch in enumerate(loader):
                if max_batches is not None and b >= max_batches:
                    break
                captured.clear()
                inputs = get_input(batch)
                model(inputs.to(device) if hasattr(inputs, "to") else inputs)
                for n, writer in writers.items():
                    if n not in captured:
                        raise SemrsmError(f"module {n!r} produced no output in the forward pass (is it used?)")
                    writer.append(captured[n])
        return {n: w.close() for n, w in writers.items()}
    except BaseException:
        for w in writers.values():
            w.__exit__(RuntimeError, None, None)
        raise
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
