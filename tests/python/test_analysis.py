"""semrsm.analysis against slow numpy/scipy re-implementations of the same formulas.

Oracles: per-query Python loops for retrieval (sorted by (-similarity, index)), scipy's
``jensenshannon`` (squared) for the JSD, ``scipy.stats`` for Pearson/Spearman, a brute-force count
over all (positive, negative) pairs for the AUROC, and :func:`semrsm.cka` for the layer comparison.
Real-data tests use the bundled example and (when present) the shared data folder.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_shared_file
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import pearsonr, spearmanr

import semrsm
from semrsm import NonFiniteError, OptionError, SemrsmError, ShapeError, analysis

TOL = 1e-9


# ------------------------------------------------------------------------------- slow oracles


def slow_retrieval(K, labels, labels_db=None, k=1, exclude_self=None):
    K = np.asarray(K, dtype=float)
    labels = np.asarray(labels)
    labels_db = labels if labels_db is None else np.asarray(labels_db)
    if exclude_self is None:
        exclude_self = K.shape[0] == K.shape[1] and labels_db is labels
    counts = labels.ndim == 2
    aps, p1, pk, f1_1, f1_k = [], [], [], [], []
    for i in range(K.shape[0]):
        cand = [j for j in range(K.shape[1]) if not (exclude_self and j == i)]
        ranked = sorted(cand, key=lambda j: (-K[i, j], j))
        if counts:
            rel = [bool(np.minimum(labels[i], labels_db[j]).sum() > 0) for j in ranked]
            f1s = []
            for j in ranked:
                q, d = labels[i].astype(float), labels_db[j].astype(float)
                tp = np.minimum(q, d).sum()
                fn = np.clip(q - d, 0, None).sum()
                fp = np.clip(d - q, 0, None).sum()
                f1s.append(1.0 if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
        else:
            rel = [labels_db[j] == labels[i] for j in ranked]
            f1s = [float(r) for r in rel]
        n_rel = sum(rel)
        if n_rel:
            hits, total = 0, 0.0
            for rank, r in enumerate(rel, start=1):
                if r:
                    hits += 1
                    total += hits / rank
            aps.append(total / n_rel)
        p1.append(float(rel[0]))
        pk.append(sum(rel[:k]) / k)
        f1_1.append(f1s[0])
        f1_k.append(sum(f1s[:k]) / k)
    return {
        "map": float(np.mean(aps)) if aps else float("nan"),
        "precision_at_1": float(np.mean(p1)),
        "precision_at_k": float(np.mean(pk)),
        "f1_at_1": float(np.mean(f1_1)),
        "f1_at_k": float(np.mean(f1_k)),
    }


def slow_jsd(p, q=None):
    p = np.asarray(p, dtype=float)
    q = p if q is None else np.asarray(q, dtype=float)
    return np.array([[jensenshannon(a, b) ** 2 for b in q] for a in p])


def slow_corr(K, D, method):
    iu = np.triu_indices(len(K), k=1)
    f = pearsonr if method == "pearson" else spearmanr
    return float(f(K[iu], D[iu])[0])


def slow_pair_gap(K, pairs):
    n = len(K)
    out = {"partner": [], "mean": [], "std": [], "nearest": []}
    for i, j in pairs:
        others = np.array([K[i, c] for c in range(n) if c not in (i, j)])
        out["partner"].append(K[i, j])
        out["mean"].append(others.mean())
        out["std"].append(others.std())
        out["nearest"].append(K[i, j] > others.max())
    listed = {tuple(sorted(p)) for p in pairs}
    neg = [K[a, b] for a in range(n) for b in range(a + 1, n) if (a, b) not in listed]
    pos = out["partner"]
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    out["auroc"] = wins / (len(pos) * len(neg))
    return {k: np.asarray(v) if k != "auroc" else v for k, v in out.items()}


def assert_retrieval_matches(got, want):
    for key, value in want.items():
        both_nan = np.isnan(got[key]) and np.isnan(value)
        assert both_nan or abs(got[key] - value) <= TOL, (key, got[key], value)


# ------------------------------------------------------------------------------- retrieval


def test_retrieval_known_answer():
    # Query 0: ranking 1 (rel), 3, 2 -> AP 1; query 1: 0 (rel) -> AP 1;
    # query 2: 1, 3 (rel) -> AP 1/2; query 3: 0, 2 (rel) -> AP 1/2 (0 and 2 tie at 0.2: index 0 first).
    K = np.array([[1.0, 0.9, 0.1, 0.2], [0.9, 1.0, 0.3, 0.1], [0.1, 0.3, 1.0, 0.2], [0.2, 0.1, 0.2, 1.0]])
    r = analysis.retrieval(K, [0, 0, 1, 1])
    assert r["ap"].tolist() == [1.0, 1.0, 0.5, 0.5]
    assert r["map"] == pytest.approx(0.75)
    assert r["precision_at_1"] == 0.5
    assert r["top"][:, 0].tolist() == [1, 0, 1, 0]


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(3, 25),
    classes=st.integers(1, 5),
    k=st.integers(1, 3),
    rounded=st.booleans(),
)
def test_retrieval_square_matches_slow(seed, n, classes, k, rounded):
    rng = np.random.default_rng(seed)
    K = rng.normal(size=(n, n))
    if rounded:  # many ties: broken by index in both
        K = np.round(K)
    K = (K + K.T) / 2
    labels = rng.integers(0, classes, size=n)
    k = min(k, n - 1)
    got = analysis.retrieval(K, labels, k=k)
    assert_retrieval_matches(got, slow_retrieval(K, labels, k=k))
    assert got["f1_at_1"] == got["precision_at_1"]


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 12), m=st.integers(2, 30), k=st.integers(1, 4))
def test_retrieval_rectangular_matches_slow(seed, n, m, k):
    rng = np.random.default_rng(seed)
    K = np.round(rng.normal(size=(n, m)), 1)
    labels = rng.integers(0, 3, size=n)
    labels_db = rng.integers(0, 3, size=m)
    k = min(k, m)
    got = analysis.retrieval(K, labels, labels_db, k=k)
    assert_retrieval_matches(got, slow_retrieval(K, labels, labels_db, k=k))


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(3, 15), classes=st.integers(1, 4), k=st.integers(1, 3))
def test_retrieval_class_counts_match_slow(seed, n, classes, k):
    rng = np.random.default_rng(seed)
    K = rng.normal(size=(n, n))
    counts = rng.integers(0, 3, size=(n, classes))
    k = min(k, n - 1)
    got = analysis.retrieval(K, counts, k=k)
    assert_retrieval_matches(got, slow_retrieval(K, counts, k=k))


def test_retrieval_one_hot_counts_equal_labels():
    rng = np.random.default_rng(3)
    K = rng.normal(size=(30, 30))
    labels = rng.integers(0, 4, size=30)
    a = analysis.retrieval(K, labels, k=3)
    b = analysis.retrieval(K, np.eye(4)[labels], k=3)
    for key in ("map", "precision_at_1", "f1_at_1", "precision_at_k", "f1_at_k"):
        assert a[key] == pytest.approx(b[key], abs=1e-15)


def test_retrieval_reads_memmaps_in_blocks(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    K = rng.normal(size=(40, 50)).astype(np.float32)
    path = tmp_path / "K.npy"
    np.save(path, K)
    labels, labels_db = rng.integers(0, 3, 40), rng.integers(0, 3, 50)
    monkeypatch.setattr(analysis, "_ROW_BLOCK", 7)  # several blocks
    got = analysis.retrieval(np.load(path, mmap_mode="r"), labels, labels_db, k=2)
    assert_retrieval_matches(got, slow_retrieval(K, labels, labels_db, k=2))


def test_retrieval_exclude_self_changes_the_ranking():
    K = np.eye(4) + 0.1
    labels = [0, 1, 2, 3]
    assert analysis.retrieval(K, labels, labels, exclude_self=True)["n_queries"] == 0
    assert analysis.retrieval(K, labels, labels)["map"] == 1.0  # labels_db given: self retrieved


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: analysis.retrieval(np.ones((3, 4)), [0, 1, 2]), ShapeError),
        (lambda: analysis.retrieval(np.ones((3, 3)), [0, 1]), ShapeError),
        (lambda: analysis.retrieval(np.ones(3), [0, 1, 2]), ShapeError),
        (lambda: analysis.retrieval(np.ones((3, 3)), [0, 1, 2], k=3), OptionError),
        (lambda: analysis.retrieval(np.ones((3, 3)), [0, 1, 2], k=0), OptionError),
        (lambda: analysis.retrieval(np.ones((3, 3)), [0, 1, 2], k=True), OptionError),
        (lambda: analysis.retrieval(np.array([[0, np.nan], [1, 0]]), [0, 1]), NonFiniteError),
        (lambda: analysis.retrieval(np.ones((2, 2)), -np.ones((2, 2))), SemrsmError),
        (lambda: analysis.retrieval(np.ones((2, 3)), [0, 1], np.ones((3, 2))), ShapeError),
        (lambda: analysis.retrieval(np.ones((2, 3)), [0, 1], [0, 1, 2], exclude_self=True), ShapeError),
    ],
)
def test_retrieval_bad_input(call, error):
    with pytest.raises(error):
        call()


# ------------------------------------------------------------------------------- JSD, correlation


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 8), m=st.integers(1, 8), c=st.integers(1, 12), sparse=st.booleans())
def test_jsd_matches_scipy(seed, n, m, c, sparse):
    rng = np.random.default_rng(seed)
    p = rng.random((n, c)) ** 3
    q = rng.random((m, c)) ** 3
    if sparse:  # exact zeros: 0 log 0 = 0
        p[p < 0.3] = 0.0
        q[q < 0.3] = 0.0
    p[:, 0] += 1e-3
    q[:, 0] += 1e-3
    p /= p.sum(1, keepdims=True)
    q /= q.sum(1, keepdims=True)
    np.testing.assert_allclose(analysis.jsd(p, q), slow_jsd(p, q), rtol=0, atol=TOL)
    D = analysis.jsd(p)
    np.testing.assert_allclose(D, slow_jsd(p), rtol=0, atol=TOL)
    assert np.array_equal(D, D.T) and (np.diag(D) == 0).all()
    assert (D >= 0).all() and (D <= np.log(2) + 1e-15).all()


def test_jsd_blocks_agree(monkeypatch):
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(30), size=17)
    whole = analysis.jsd(p)
    monkeypatch.setattr(analysis, "_JSD_BLOCK_BYTES", 1)  # one row at a time
    assert np.array_equal(analysis.jsd(p), whole)


@pytest.mark.parametrize(
    "p, error",
    [(np.ones(3), ShapeError), (-np.ones((2, 2)), SemrsmError), (np.zeros((2, 2)), SemrsmError), (np.array([[np.inf, 1.0]]), NonFiniteError)],
)
def test_jsd_bad_input(p, error):
    with pytest.raises(error):
        analysis.jsd(p)
    with pytest.raises(ShapeError):
        analysis.jsd(np.ones((2, 3)), np.ones((2, 4)))


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(3, 20), ties=st.booleans())
def test_rsm_correlation_matches_scipy(seed, n, ties):
    rng = np.random.default_rng(seed)
    K = rng.normal(size=(n, n))
    D = rng.normal(size=(n, n)) + 0.5 * K
    if ties:
        K, D = np.round(K), np.round(D)
    iu = np.triu_indices(n, k=1)
    if np.ptp(K[iu]) == 0 or np.ptp(D[iu]) == 0:
        with pytest.raises(SemrsmError):
            analysis.rsm_correlation(K, D)
        return
    for method in ("pearson", "spearman"):
        assert abs(analysis.rsm_correlation(K, D, method) - slow_corr(K, D, method)) <= TOL


def test_rsm_correlation_rectangular_uses_all_entries():
    rng = np.random.default_rng(2)
    K, D = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    assert analysis.rsm_correlation(K, D) == pytest.approx(pearsonr(K.ravel(), D.ravel())[0], abs=TOL)


def test_rsm_correlation_bad_input():
    with pytest.raises(OptionError):
        analysis.rsm_correlation(np.eye(3), np.eye(3), "kendall")
    with pytest.raises(ShapeError):
        analysis.rsm_correlation(np.eye(3), np.eye(4))
    with pytest.raises(ShapeError):
        analysis.rsm_correlation(np.eye(2), np.eye(2))
    with pytest.raises(SemrsmError):
        analysis.rsm_correlation(np.ones((3, 3)), np.random.default_rng(0).normal(size=(3, 3)))


# ------------------------------------------------------------------------------- pair gap


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 10), ties=st.booleans())
def test_pair_gap_matches_slow(seed, n, ties):
    rng = np.random.default_rng(seed)
    K = rng.normal(size=(2 * n, 2 * n))
    if ties:
        K = np.round(K)
    K = (K + K.T) / 2
    pairs = analysis.partner_pairs(n)
    got = analysis.pair_gap(K, pairs)
    want = slow_pair_gap(K, pairs)
    np.testing.assert_allclose(got["partner"], want["partner"], rtol=0, atol=TOL)
    np.testing.assert_allclose(got["others_mean"], want["mean"], rtol=0, atol=TOL)
    np.testing.assert_allclose(got["others_std"], want["std"], rtol=0, atol=TOL)
    assert got["nearest"].tolist() == want["nearest"].tolist()
    assert abs(got["auroc"] - want["auroc"]) <= TOL
    assert len(got["other_values"]) == n * (2 * n - 1) - n


def test_pair_gap_matches_the_demo_formula(shifted_pairs):
    """Same numbers as the demo's table (own, others' mean/std, nearest) on the example data."""
    K = semrsm.build(shifted_pairs["block15"], kernel="cosine", matcher="exact")
    got = analysis.pair_gap(K, analysis.partner_pairs(10))
    want = slow_pair_gap(K, analysis.partner_pairs(10))
    np.testing.assert_allclose(got["z"], (want["partner"] - want["mean"]) / want["std"], rtol=0, atol=TOL)


@pytest.mark.parametrize(
    "pairs",
    [np.array([[0, 0]]), np.array([[0, 5]]), np.array([[0, 1], [1, 0]]), np.zeros((0, 2), int), np.array([0, 1]), np.array([[0.0, 1.0]])],
)
def test_pair_gap_bad_pairs(pairs):
    with pytest.raises(ShapeError):
        analysis.pair_gap(np.eye(4), pairs)


def test_pair_gap_bad_matrix():
    with pytest.raises(ShapeError):
        analysis.pair_gap(np.eye(2), [[0, 1]])
    with pytest.raises(ShapeError):
        analysis.pair_gap(np.ones((3, 4)), [[0, 1]])
    with pytest.raises(OptionError):
        analysis.partner_pairs(0)


# ------------------------------------------------------------------------------- experiments


def test_translation_is_pair_gap_of_build(shifted_pairs):
    z = shifted_pairs["block15"]
    res = analysis.translation(z, kernel="linear", matchers=(("a", "none"), ("b", "exact")))
    for label, matcher in (("a", "none"), ("b", "exact")):
        K = semrsm.build(z, kernel="linear", matcher=matcher)
        assert np.array_equal(res[label]["K"], K)
        assert res[label]["auroc"] == analysis.pair_gap(K, analysis.partner_pairs(10))["auroc"]
    with pytest.raises(ShapeError):
        analysis.translation(z[:5])


def test_layer_comparison_is_cka_of_builds(shifted_pairs):
    layers = [("block10", shifted_pairs["block10"]), ("block15", shifted_pairs["block15"])]
    res = analysis.layer_comparison(layers, kernel="linear")
    assert res["names"] == ["block10", "block15"] and res["spatial_size"] == [196, 49]
    for a, (_, za) in enumerate(layers):
        for b, (_, zb) in enumerate(layers):
            sem = semrsm.build(za, matcher="exact")
            spa = semrsm.build(zb, matcher="none")
            assert res["cka"][a, b] == pytest.approx(semrsm.cka(sem, spa), abs=1e-12)
            assert res["cka_debiased"][a, b] == pytest.approx(semrsm.cka(sem, spa, debiased=True), abs=1e-12)
    # Identical matchers: CKA of a matrix with itself.
    same = analysis.layer_comparison(layers, matcher="none")
    np.testing.assert_allclose(same["diagonal"], 1.0, rtol=0, atol=1e-12)
    with pytest.raises(ShapeError):
        analysis.layer_comparison([])
    with pytest.raises(ShapeError):
        analysis.layer_comparison({"a": shifted_pairs["block10"], "b": shifted_pairs["block15"][:10]})


# ------------------------------------------------------------------------------- real data


def _check_real_retrieval(K, labels):
    got = analysis.retrieval(K, labels, k=5)
    assert_retrieval_matches(got, slow_retrieval(K, labels, k=5))
    return got


def test_reference_numbers_bundled(shifted_pairs):
    """The bundled example: partners retrieve each other; the semantic RSM separates pairs better."""
    labels = np.r_[np.arange(10), np.arange(10)]
    probs = shifted_pairs["probs"]
    D = analysis.jsd(probs)
    np.testing.assert_allclose(D, slow_jsd(probs.astype(np.float64)), rtol=0, atol=TOL)
    for layer in ("block10", "block15"):
        z = shifted_pairs[layer]
        spatial = semrsm.build(z, kernel="cosine", matcher="none")
        semantic = semrsm.build(z, kernel="cosine", matcher="exact")
        r_spa, r_sem = _check_real_retrieval(spatial, labels), _check_real_retrieval(semantic, labels)
        g_spa, g_sem = (analysis.pair_gap(K, analysis.partner_pairs(10)) for K in (spatial, semantic))
        for K, g in ((spatial, g_spa), (semantic, g_sem)):
            assert abs(g["auroc"] - slow_pair_gap(K, analysis.partner_pairs(10))["auroc"]) <= TOL
            for method in ("pearson", "spearman"):
                assert abs(analysis.rsm_correlation(K, D, method) - slow_corr(K, D, method)) <= TOL
        # The paper's claim (Sec. 4.1): the semantic RSM separates the shifted crop at least as
        # well (here both retrieve every partner first; the semantic gap is 1.5-2.5x larger).
        assert r_sem["map"] >= r_spa["map"] and g_sem["auroc"] >= g_spa["auroc"]
        assert g_sem["mean_z"] > g_spa["mean_z"] and g_sem["nearest_fraction"] == 1.0


def test_reference_numbers_retrieval_file():
    data = np.load(require_shared_file("effnet_lite0_retrieval.npz"))
    labels, probs = data["labels"], data["probs"]
    D = analysis.jsd(probs)
    np.testing.assert_allclose(D[:20, :20], slow_jsd(probs[:20].astype(np.float64)), rtol=0, atol=TOL)
    for layer in ("block10", "head"):
        z = data[layer]
        spatial = semrsm.build(z, kernel="cosine", matcher="none")
        semantic = semrsm.build(z, kernel="cosine", matcher="exact")
        r_spa, r_sem = _check_real_retrieval(spatial, labels), _check_real_retrieval(semantic, labels)
        # Paper Sec. 4.2: permutation invariance retrieves the same photo better.
        assert r_sem["map"] > r_spa["map"]
        for K in (spatial, semantic):
            for method in ("pearson", "spearman"):
                assert abs(analysis.rsm_correlation(K, D, method) - slow_corr(K, D, method)) <= TOL


@pytest.mark.parametrize("name, layers", [("effnet_lite0_shifted_pairs.npz", ("block4", "block10", "block15")), ("vit_s14_shifted_pairs.npz", ("layer5", "layer11"))])
def test_reference_numbers_shifted_pairs(name, layers):
    data = np.load(require_shared_file(name))
    for layer in layers:
        res = analysis.translation(data[layer])
        for label in res:
            slow = slow_pair_gap(res[label]["K"], analysis.partner_pairs(10))
            assert abs(res[label]["auroc"] - slow["auroc"]) <= TOL
            np.testing.assert_allclose(res[label]["others_mean"], slow["mean"], rtol=0, atol=TOL)
        # Paper Sec. 4.1 / App. B: partners stand out at least as well under the semantic RSM
        # (AUROC; the mean z is not monotone: ViT layer11 has 2.1 semantic vs 2.3 spatial).
        assert res["semantic"]["auroc"] >= res["spatio-semantic"]["auroc"]


def test_retrieval_on_a_rectangular_rsm_written_with_out(tmp_path):
    """Paper Sec. 4.2's query x database protocol on what build(x, y, out=...) leaves on disk."""
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(12, 4, 3, 3)), rng.normal(size=(15, 4, 3, 3))
    K = semrsm.build(x, y, kernel="cosine", out=str(tmp_path / "K.npy"))
    assert isinstance(K, np.memmap)
    labels, labels_db = np.arange(12) % 3, np.arange(15) % 3
    got = analysis.retrieval(np.load(tmp_path / "K.npy", mmap_mode="r"), labels, labels_db, k=2)
    assert_retrieval_matches(got, slow_retrieval(np.asarray(K), labels, labels_db, k=2))
