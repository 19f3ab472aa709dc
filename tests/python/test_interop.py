"""semrsm.interop: RSMs to rsatoolbox RDMs and back (skips without rsatoolbox)."""

from __future__ import annotations

import numpy as np
import pytest

import semrsm
from semrsm import NonFiniteError, OptionError, SemrsmError, ShapeError, analysis, interop

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.rdm import compare  # noqa: E402


@pytest.fixture(scope="module")
def rsms(shifted_pairs):
    z = shifted_pairs["block15"]
    return {
        "linear": semrsm.build(z, kernel="linear"),
        "cosine none": semrsm.build(z, kernel="cosine", matcher="none"),
        "cosine exact": semrsm.build(z, kernel="cosine", matcher="exact"),
    }


def test_kernel_distance_and_back(rsms, shifted_pairs):
    K = rsms["linear"]
    r = interop.to_rdms({"semantic": K}, pattern_descriptors={"photo": list(shifted_pairs["photos"]) * 2})
    assert (r.n_rdm, r.n_cond) == (1, 20)
    assert r.rdm_descriptors["name"] == ["semantic"] and r.pattern_descriptors["photo"][10] == "astronaut"
    D = r.get_matrices()[0]
    d = np.diag(K)
    np.testing.assert_allclose(D, d[:, None] + d[None, :] - 2 * K, rtol=0, atol=1e-9 * np.abs(K).max())
    np.testing.assert_allclose(interop.from_rdms(r)[0], semrsm.center_gram(K), rtol=0, atol=1e-9 * np.abs(K).max())


def test_one_minus_round_trip_and_rsatoolbox_compare(rsms):
    pair = {k: rsms[k] for k in ("cosine none", "cosine exact")}
    r = interop.to_rdms(pair, method="one_minus")
    back = interop.from_rdms(r, method="one_minus")
    for k, K in enumerate(pair.values()):
        np.testing.assert_allclose(back[k], K, rtol=0, atol=1e-12)
    # rsatoolbox's Pearson comparison of the two RDMs = semrsm's correlation of the RSMs.
    ours = analysis.rsm_correlation(pair["cosine none"], pair["cosine exact"])
    theirs = float(compare(r[0], r[1], method="corr")[0, 0])
    assert theirs == pytest.approx(ours, abs=1e-9)


def test_bad_input():
    with pytest.raises(ShapeError):
        interop.to_rdms(np.array([[1.0, 0.2], [0.5, 1.0]]))  # not symmetric
    with pytest.raises(ShapeError):
        interop.to_rdms([np.eye(3), np.eye(4)])
    with pytest.raises(ShapeError):
        interop.to_rdms(np.eye(3), pattern_descriptors={"photo": ["a"]})
    with pytest.raises(ShapeError):
        interop.to_rdms([])
    with pytest.raises(NonFiniteError):
        interop.to_rdms(np.array([[1.0, np.nan], [np.nan, 1.0]]))
    with pytest.raises(OptionError):
        interop.to_rdms(np.eye(3), method="sqrt")
    with pytest.raises(SemrsmError):
        interop.from_rdms(np.eye(3))
