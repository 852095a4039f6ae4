"""Stage 6 (feature_reports.py) on a tiny run: every file written, the trace and the pages say what
the models say, and missing inputs stop it with a one-line error naming the stage to run."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import torch

from common.io import PipelineError, read_metrics
from common.paths import RunPaths

from tests.conftest import ROOT
from tests.helpers import TINY_SAE_FLAGS, save_run_sae, tiny_sae

N_INPUTS = 4096   # fresh inputs for the labels (label_features.py's default is 32768)


def build_reports_run(run_dir: Path):
    """Train a tiny SAE into the (copied) tiny run at `run_dir` and build its reports:
    returns (RunPaths, the stage's stats)."""
    import feature_reports
    import label_features
    import train_sae

    common = ["--run-dir", str(run_dir), "--quiet", "--device", "cpu"]
    train_sae.main(train_sae.parse_args(common + TINY_SAE_FLAGS))
    label_features.main(label_features.parse_args(common + [f"--n-inputs={N_INPUTS}"]))
    stats = feature_reports.main(feature_reports.parse_args(common + [f"--n-inputs={N_INPUTS}"]))
    return RunPaths(run_dir), stats


def shared_reports_run(tiny_run, tmp_path_factory, folder: str = "shared_reports_run"):
    """The tiny run copied, with a tiny SAE and its reports: built once per session (in a fixed folder
    of the session's temp dir, so tests/viz/test_browser.py reuses it; it only reads it)."""
    dst = tmp_path_factory.getbasetemp() / folder
    done = dst / "reports" / "index.html"
    if not done.exists():
        if dst.exists():
            shutil.rmtree(dst)                      # a half-built copy from an interrupted build
        shutil.copytree(tiny_run.root, dst)
        return build_reports_run(dst)
    return RunPaths(dst), read_metrics(RunPaths(dst).metrics)["reports"]


@pytest.fixture(scope="module")
def reports(tiny_run, tmp_path_factory):
    return shared_reports_run(tiny_run, tmp_path_factory)


def test_every_report_is_written_and_recorded(reports):
    paths, stats = reports
    for p in (paths.index_html, paths.heatmap_html, paths.distributions_html, paths.sankey_html, paths.trace_xlsx,
              paths.features_csv, paths.neurons_csv, paths.plotly_js, paths.probe_html, paths.training_html):
        assert p.exists() and p.stat().st_size > 0, p
    section = read_metrics(paths.metrics)["reports"]
    assert section["seconds"] > 0 and section["trace_rows"] == 800 and section["n_inputs"] == N_INPUTS
    assert set(section["plots"]) == {"index.html", "logic_circuit_map.html", "circuit_bell_curves.html",
                                     "uhd_bold_sankey.html", "probe.html", "training.html"}
    assert section["plots"]["probe.html"] == 0      # its own tables, no plotly chart
    assert all(n >= 1 for k, n in section["plots"].items() if k != "probe.html")


def test_pages_are_offline_and_link_every_report(reports):
    paths, _ = reports
    for p in (paths.index_html, paths.heatmap_html, paths.distributions_html, paths.sankey_html, paths.training_html,
              paths.probe_html):
        html = p.read_text(encoding="utf-8")
        if p != paths.probe_html:     # the probe page needs no plotly
            assert '<script src="plotly.min.js"></script>' in html, p
        assert "cdn.plot.ly" not in html and not re.search(r'src="https?://', html), f"{p} loads from the network"
        for target in (paths.index_html, paths.heatmap_html, paths.distributions_html, paths.sankey_html,
                       paths.probe_html, paths.training_html, paths.trace_xlsx, paths.features_csv):
            assert f'href="{target.name}"' in html, f"{p.name} does not link {target.name}"
    assert "plotly" in paths.plotly_js.read_text(encoding="utf-8")[:2000].lower()


def test_every_chart_has_a_caption(reports):
    paths, stats = reports
    for name, n_plots in stats["plots"].items():
        html = (paths.reports_dir / name).read_text(encoding="utf-8")
        assert html.count('<p class="caption">') >= n_plots, name


def test_trace_matches_the_models(reports):
    """Rows = the three splits; prediction = the MLP's; top neurons/features = the real top-k."""
    from dataset.data_loader import load_excel
    from mlp.mlp_definition import load_mlp
    from sae.sae_definition import load_sae

    paths, _ = reports
    book = openpyxl.load_workbook(paths.trace_xlsx, read_only=False)
    ws = book["trace"]
    assert ws.freeze_panes == "A2"
    header = [c.value for c in ws[1]]
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 800
    col = {h: i for i, h in enumerate(header)}
    assert [r[col["split"]] for r in rows].count("test") == 100
    assert ws.cell(row=2, column=1).alignment.horizontal == "center"
    assert ws.column_dimensions["C"].width > 20          # the input list fits

    x, y = load_excel(paths.train_xlsx)
    mlp, sae = load_mlp(paths.mlp), load_sae(paths.sae)
    with torch.no_grad():
        h = mlp.hidden(x[:5])
        f = sae.encode(h)
        pred = mlp(x[:5])
    for i in range(5):
        r = rows[i]
        assert r[col["split"]] == "train"
        assert r[col["input_list"]] == "[" + ", ".join(str(int(v)) for v in x[i]) + "]"
        assert r[col["target"]] == int(y[i])
        assert r[col["prediction"]] == pytest.approx(float(pred[i]), abs=1e-3)
        assert r[col["exact_match"]] == bool(round(float(pred[i])) == int(y[i]))
        assert r[col["neuron_1"]] == int(h[i].argmax())
        assert r[col["neuron_1_act"]] == pytest.approx(float(h[i].max()), abs=1e-3)
        if (f[i] > 0).any():
            assert r[col["feature_1"]] == int(f[i].argmax())
            assert r[col["feature_1_act"]] == pytest.approx(float(f[i].max()), abs=1e-3)
        n_active = int((f[i] > 0).sum())
        assert r[col["active_features"]] == n_active
        if n_active < 10:   # fewer active features than slots: the rest are blank, not zero-activation ids
            assert r[col[f"feature_{n_active + 1}"]] is None

    feats = book["features"]
    assert feats.max_row - 1 == sae.cfg.d_sae
    csv = pd.read_csv(paths.features_csv)
    fh = [c.value for c in feats[1]]
    assert fh[0] == "unit" and "explanation" in fh and "score" in fh
    assert len(csv) == sae.cfg.d_sae


def test_dashboard_cards_hold_the_labels(reports):
    """One card per alive feature, with the labels' explanation and score."""
    paths, stats = reports
    html = paths.index_html.read_text(encoding="utf-8")
    cards = json.loads(re.search(r"const CARDS = (\[.*?\]);\n", html, re.S).group(1))
    labels = pd.read_csv(paths.features_csv, keep_default_na=False)
    alive = labels[labels["status"] == "alive"]
    assert [c["id"] for c in cards] == alive["unit"].tolist()
    assert stats["alive_feature_cards"] == len(alive)
    for c in cards[:10]:
        row = labels.set_index("unit").loc[c["id"]]
        assert c["e"] == row["explanation"]
        assert c["s"] == pytest.approx(float(row["score"]), abs=1e-3)
        assert sum(c["h"]) == round(float(row["density"]) * N_INPUTS)   # the histogram counts every firing
        assert 1 <= len(c["t"]) <= 8 and c["t"][0][1] == pytest.approx(float(row["max_act"]), abs=2e-3)
        # one sign convention: the card's contributions are minus features.csv's zero-ablation effects
        if row["effect_where_true"] == row["effect_where_true"] and row["effect_where_true"] != "":
            assert c["et"] == pytest.approx(-float(row["effect_where_true"]), abs=2e-3)
        # examples from every quantile band that has inputs, each band's activations below the one above it
        bands = [b for b in c["q"] if b]
        assert bands and all(min(t[1] for t in hi) >= max(t[1] for t in lo) - 1e-6 for lo, hi in zip(bands, bands[1:]))


def test_labels_of_another_sae_are_refused(reports, tmp_path):
    """The reports only read the labels: an SAE retrained after them (other weights, same shape, whatever
    the file times) stops the stage before any page, naming both files and label_features.py."""
    import os

    import feature_reports
    from sae.sae_definition import load_sae

    paths, _ = reports
    dst = tmp_path / "run"
    shutil.copytree(paths.root, dst)
    run = RunPaths(dst)
    sae = load_sae(run.sae)
    save_run_sae(tiny_sae(sae.cfg.architecture, d_in=sae.cfg.d_in, d_sae=sae.cfg.d_sae, seed=1, k=sae.cfg.k), run)
    t = run.sae.stat().st_mtime
    for p in (run.features_csv, run.neurons_csv, run.labels_cache):   # the labels look newer: times decide nothing
        os.utime(p, (t + 10, t + 10))
    pages = {p: p.read_bytes() for p in run.reports_dir.iterdir() if p.suffix in (".html", ".xlsx")}
    with pytest.raises(PipelineError, match=f"labels.pt: not made from {re.escape(str(run.sae))} .*; "
                                            "run label_features.py --run-dir"):
        feature_reports.main(feature_reports.parse_args(["--run-dir", str(dst), "--quiet"]))
    assert all(p.read_bytes() == b for p, b in pages.items())


def test_missing_sae_names_the_stage_to_run(copy_run):
    import feature_reports

    paths = copy_run()
    with pytest.raises(PipelineError, match="train_sae.py"):
        feature_reports.main(feature_reports.parse_args(["--run-dir", str(paths.root), "--quiet"]))
    r = subprocess.run([sys.executable, "feature_reports.py", "--run-dir", str(paths.root), "--quiet"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: ") and "train_sae.py" in r.stderr
    assert not paths.reports_dir.exists() or not paths.index_html.exists()


def test_a_chart_without_axis_titles_or_caption_is_refused():
    import plotly.graph_objects as go

    from viz.common import figure_html

    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]))
    with pytest.raises(ValueError, match="no axis titles|has no title"):
        figure_html(fig, "bare", "A caption.")
    fig.update_layout(xaxis_title="x", yaxis_title="y")
    with pytest.raises(ValueError, match="caption"):
        figure_html(fig, "no-caption", " ")
    html = figure_html(fig, "ok", "Two bars.")
    assert 'id="ok"' in html and '<p class="caption">Two bars.</p>' in html and "cdn" not in html


def test_xlsx_writer_round_trip(tmp_path):
    """The trace's writer: values, types, blanks, escaping, styles and frozen header survive openpyxl."""
    from viz.xlsx import LEFT_STYLE, Sheet, column_letter, write_xlsx

    assert [column_letter(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]
    cols = [[1, 2, None], [0.5, float("nan"), -3.25], ["a<b & c", "", "x"], [True, False, True],
            list(np.array([7, 8, 9], dtype=np.int64)[[0, 1, 2]].tolist())]
    path = tmp_path / "t.xlsx"
    write_xlsx(path, [Sheet("one", ["i", "f", "s", "b", "n"], cols, styles=[0, 0, LEFT_STYLE, 0, 0]),
                      Sheet("two", ["k"], [[np.float32(1.5)]])])
    book = openpyxl.load_workbook(path)
    ws = book["one"]
    assert [c.value for c in ws[1]] == ["i", "f", "s", "b", "n"]
    assert [[c.value for c in row] for row in ws.iter_rows(min_row=2)] == [
        [1, 0.5, "a<b & c", True, 7], [2, None, None, False, 8], [None, -3.25, "x", True, 9]]
    assert ws.freeze_panes == "A2" and ws["A1"].font.b and ws["A2"].alignment.horizontal == "center"
    assert ws["C2"].alignment.horizontal == "left"
    assert book["two"]["A2"].value == 1.5
    with pytest.raises(ValueError, match="different lengths"):
        Sheet("bad", ["a", "b"], [[1], [1, 2]])


def test_fresh_stats_match_a_direct_computation(reports):
    """The chunked one-pass reductions behind the pages equal the dense computation they replace
    (chunk boundaries included: 9000 inputs = two chunks), on the dense and on the sparse path."""
    from mlp.mlp_definition import load_mlp
    from sae.sae_definition import load_sae
    from viz.data import fresh_stats

    paths, _ = reports
    mlp, sae = load_mlp(paths.mlp), load_sae(paths.sae)
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 4, (9000, 10)))   # digits 0..3 keep pointers valid
    with torch.no_grad():
        h = mlp.hidden(x)
        f = sae.encode(h)
    for sparse in (False, True):
        check_fresh_stats(fresh_stats(mlp, sae, x, f.max(0).values, keep_columns=[0], sparse=sparse), x, h, f)


def check_fresh_stats(fs, x, h, f):
    from dataset.task import ground_truth
    from viz.data import pointer_combo

    fire = f > 0
    assert torch.equal(fs.counts, fire.sum(0)) and torch.equal(fs.hist.sum(1), fire.sum(0))
    assert torch.allclose(fs.top_val.T, f.topk(8, dim=0).values)
    ref = (fire.double().T @ h.double()) / fire.sum(0).clamp_min(1)[:, None]
    assert torch.allclose(fs.mean_h_firing.double(), ref, atol=1e-5)
    gt = ground_truth(x)
    for var in ("a", "b"):
        g = pointer_combo(gt) * 10 + gt[var]
        sums = torch.zeros(160, f.shape[1], dtype=torch.float64).index_add_(0, g, f.double())
        means, counts = fs.combo_value[var]
        assert np.allclose(means.reshape(160, -1) * counts.reshape(160, 1), sums.numpy(), atol=1e-4)
    cell = pointer_combo(gt) * 10 + gt["target"]
    sums = torch.zeros(160, f.shape[1], dtype=torch.float64).index_add_(0, cell, f.double())
    assert torch.allclose(fs.cell_f.reshape(160, -1), sums, atol=1e-4)
    assert np.allclose(fs.columns[0], f[:, 0][f[:, 0] > 0].numpy())


def test_a_bad_split_fails_before_any_page_is_rewritten(reports, tmp_path):
    import feature_reports

    paths, _ = reports
    dst = tmp_path / "run"
    shutil.copytree(paths.root, dst)
    bad = RunPaths(dst)
    bad.val_xlsx.write_text("not a workbook")
    pages = {p: p.read_bytes() for p in bad.reports_dir.iterdir() if p.suffix in (".html", ".xlsx")}
    with pytest.raises(PipelineError, match="mlp_val.xlsx"):
        feature_reports.main(feature_reports.parse_args(["--run-dir", str(dst), "--quiet", f"--n-inputs={N_INPUTS}"]))
    assert all(p.read_bytes() == b for p, b in pages.items())


def test_same_run_gives_byte_identical_pages(reports, tmp_path):
    """Reports made twice from the same run are the same files, byte for byte (no timestamp, random id
    or dict order leaks into a page); the run's folder, which differs here, is the only allowed change."""
    import feature_reports

    paths, _ = reports
    again = RunPaths(tmp_path / "run")
    shutil.copytree(paths.root, again.root)
    feature_reports.main(feature_reports.parse_args(["--run-dir", str(again.root), "--quiet", "--device", "cpu",
                                                     f"--n-inputs={N_INPUTS}"]))
    first = sorted(p.relative_to(paths.root) for p in paths.root.rglob("*.html"))
    assert first and first == sorted(p.relative_to(again.root) for p in again.root.rglob("*.html"))
    for rel in first:
        a = (paths.root / rel).read_bytes().replace(str(paths.root).encode(), b"<run>")
        b = (again.root / rel).read_bytes().replace(str(again.root).encode(), b"<run>")
        assert a == b, f"{rel} differs between two reports runs of the same run"
