"""torch tensors as inputs: CPU tensors are viewed without a copy (also when they require grad),
tensors on another device get a clear message. Without torch, a stand-in class with torch's module
name and interface exercises the same code; with torch, real tensors do."""

from __future__ import annotations

import numpy as np
import pytest

import semrsm
from semrsm import SemrsmError
from semrsm._validation import as_real_array


class FakeDevice:
    def __init__(self, kind: str) -> None:
        self.type = kind

    def __str__(self) -> str:
        return "cpu" if self.type == "cpu" else f"{self.type}:0"


class FakeTensor:
    """The parts of torch.Tensor that semrsm touches."""

    def __init__(self, array: np.ndarray, device: str = "cpu", requires_grad: bool = False) -> None:
        self._array = array
        self.device = FakeDevice(device)
        self.requires_grad = requires_grad
        self.shape = array.shape
        self.dtype = "torch.float32"

    def __len__(self) -> int:
        return len(self._array)

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if self.device.type != "cpu":
            raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() first.")
        return self._array

    def detach(self) -> "FakeTensor":
        return FakeTensor(self._array, self.device.type, requires_grad=False)

    def __array__(self, dtype=None, copy=None):
        return self.numpy()


FakeTensor.__module__ = "torch"


def test_cpu_tensors_are_viewed_without_a_copy():
    arr = np.random.default_rng(0).normal(size=(4, 3, 2, 2))
    for requires_grad in (False, True):
        out = as_real_array(FakeTensor(arr, requires_grad=requires_grad), "x")
        assert np.shares_memory(out, arr)
    np.testing.assert_array_equal(semrsm.build(FakeTensor(arr, requires_grad=True)), semrsm.build(arr))


def test_tensors_on_another_device_get_a_clear_message():
    arr = np.zeros((4, 3, 2, 2))
    with pytest.raises(SemrsmError, match=r"device 'cuda:0'.*x\.cpu\(\)"):
        as_real_array(FakeTensor(arr, device="cuda"), "x")
    with pytest.raises(SemrsmError, match=r"cuda:0.*\.cpu\(\)"):
        semrsm.build(FakeTensor(arr, device="cuda"))


def test_real_torch_tensors():
    torch = pytest.importorskip("torch")
    t = torch.randn(5, 3, 4, 4, requires_grad=True)
    view = as_real_array(t, "x")
    assert view.__array_interface__["data"][0] == t.data_ptr()  # same memory
    np.testing.assert_array_equal(semrsm.build(t), semrsm.build(t.detach().numpy()))
    half = torch.randn(5, 3, 4, 4).to(torch.bfloat16)
    np.testing.assert_array_equal(semrsm.build(half), semrsm.build(half.float().numpy()))


def test_analysis_accepts_cpu_tensors_and_explains_cuda():
    K = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]])
    want = semrsm.analysis.retrieval(K, [0, 0, 1])
    got = semrsm.analysis.retrieval(FakeTensor(K, requires_grad=True), [0, 0, 1])
    assert got["precision_at_1"] == want["precision_at_1"]
    np.testing.assert_array_equal(got["ap"], want["ap"])
    with pytest.raises(SemrsmError, match=r"\.cpu\(\)"):
        semrsm.analysis.rsm_correlation(FakeTensor(K, device="cuda"), K)
