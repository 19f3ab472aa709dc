"""``python -m semrsm report``: its numbers against slow numpy/scipy re-implementations (1e-9),
its Markdown against its numbers, and its images (valid PNGs with content)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib.image  # noqa: E402
from test_analysis import TOL, slow_corr, slow_jsd, slow_pair_gap, slow_retrieval  # noqa: E402

import semrsm  # noqa: E402
from semrsm import report  # noqa: E402
from semrsm.__main__ import main  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    path, numbers = report.write_report(folder)
    return path, numbers


def test_report_numbers_match_slow_reimplementations(written, shifted_pairs):
    _, numbers = written
    labels = np.r_[np.arange(10), np.arange(10)]
    pairs = semrsm.analysis.partner_pairs(10)
    D = slow_jsd(shifted_pairs["probs"].astype(np.float64))
    np.testing.assert_allclose(numbers["jsd"], D, rtol=0, atol=TOL)
    for layer in report.LAYERS:
        for kind, matcher in report.RSM_KINDS:
            K = semrsm.build(shifted_pairs[layer], kernel="cosine", matcher=matcher)
            assert np.array_equal(numbers["rsms"][layer][kind], K)
            g, slow = numbers["translation"][layer][kind], slow_pair_gap(K, pairs)
            np.testing.assert_allclose(g["partner"], slow["partner"], rtol=0, atol=TOL)
            np.testing.assert_allclose(g["others_mean"], slow["mean"], rtol=0, atol=TOL)
            np.testing.assert_allclose(g["z"], (slow["partner"] - slow["mean"]) / slow["std"], rtol=0, atol=TOL)
            assert abs(g["auroc"] - slow["auroc"]) <= TOL
            r, slow_r = numbers["retrieval"][layer][kind], slow_retrieval(K, labels, k=3)
            for key, value in slow_r.items():
                assert abs(r[key] - value) <= TOL, (layer, kind, key)
            for method in ("pearson", "spearman"):
                assert abs(numbers["correlation"][layer][kind][method] - slow_corr(K, D, method)) <= TOL
    lc = numbers["layers"]
    for a in range(2):
        for b in range(2):
            sem = numbers["rsms"][report.LAYERS[a]]["semantic"]
            spa = numbers["rsms"][report.LAYERS[b]]["spatio-semantic"]
            assert abs(lc["cka"][a, b] - semrsm.cka(sem, spa)) <= TOL
    exact = next(r for r in numbers["frontier"] if r["label"] == "semrsm exact")
    assert exact["quality"]["block10"] == pytest.approx(100.0, abs=1e-9)
    assert all(r["quality"]["block10"] <= 100.0 + 1e-9 for r in numbers["frontier"])


def test_report_markdown_shows_the_numbers(written):
    path, numbers = written
    text = path.read_text(encoding="utf-8")
    for layer in report.LAYERS:
        for kind, _ in report.RSM_KINDS:
            g = numbers["translation"][layer][kind]
            r = numbers["retrieval"][layer][kind]
            c = numbers["correlation"][layer][kind]
            assert f"| {layer} | {kind} | {g['partner'].mean():.4f} | {g['others_mean'].mean():.4f} | {g['mean_z']:.2f} | {g['auroc']:.4f} |" in text
            assert f"| {layer} | {kind} | {r['map']:.4f} | {r['precision_at_1']:.4f} | {r['f1_at_1']:.4f} |" in text
            assert f"| {layer} | {kind} | {c['pearson']:+.4f} | {c['spearman']:+.4f} |" in text
    for name in numbers["figures"]:
        assert f"]({name})" in text


def test_report_images_are_valid_pngs(written):
    path, numbers = written
    assert len(numbers["figures"]) == 7
    for name in numbers["figures"]:
        image = path.parent / name
        assert image.read_bytes()[:8] == PNG_SIGNATURE
        pixels = matplotlib.image.imread(image)
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
        assert pixels.reshape(-1, pixels.shape[-1]).std(axis=0).max() > 0.05  # not blank


def test_report_command(tmp_path, capsys):
    assert main(["report", "-o", str(tmp_path / "out")]) == 0
    assert "report.md" in capsys.readouterr().out
    assert (tmp_path / "out" / "report.md").is_file()
    assert len(list((tmp_path / "out").glob("*.png"))) == 7


def test_report_without_matplotlib_stops_before_working(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setattr(report, "compute", lambda **kw: pytest.fail("computed before checking matplotlib"))
    assert main(["report", "-o", str(tmp_path / "out")]) == 2
    assert "semrsm[plot]" in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.md").exists()
