"""The feature cards' data (viz.data.feature_profiles) equals a direct computation, the training page
draws the histories the models' files hold (or says there is none), and feature_probe's printout
uses the reports' sign convention with one line per edited feature."""
import numpy as np
import pytest
import torch

from dataset.task import ground_truth
from mlp.mlp_definition import MLPConfig, PointerMLP, save_mlp
from tests.helpers import save_run_sae, tiny_sae
from viz.data import N_BANDS, PER_BAND, feature_profiles, fresh_stats


@pytest.fixture(scope="module")
def models_and_stats():
    torch.manual_seed(0)
    mlp = PointerMLP(MLPConfig(d_mlp=32, d_hidden=64)).eval()
    sae = tiny_sae("relu", d_in=64, d_sae=24, seed=1).eval()
    x = torch.from_numpy(np.random.default_rng(2).integers(0, 4, (3000, 10)))    # digits 0..3: valid pointers
    with torch.no_grad():
        f = sae.encode(mlp.hidden(x))                                           # [n, d_sae]
        sae.b_enc.sub_(f.mean(0) * 0.5)          # a spread of densities, including features that never fire
        f = sae.encode(mlp.hidden(x))
    w_out = sae.W_dec.detach() @ mlp.head.weight.detach()[0]                    # [d_sae]
    fs = fresh_stats(mlp, sae, x, f.max(0).values.clamp_min(1e-6))
    return mlp, sae, x, f, w_out, fs, feature_profiles(fs, x, sae.W_dec, w_out, seed=0)


def test_profiles_match_a_direct_computation(models_and_stats):
    _, sae, x, f, w_out, fs, pr = models_and_stats
    gt = ground_truth(x)
    fire = f > 0
    live = [u for u in range(f.shape[1]) if int(fire[:, u].sum()) >= 3]
    assert live, "the fixture must have firing features"
    for u in live:
        on = fire[:, u]
        v = f[on, u].double().numpy()
        for var in ("a", "b", "a-b"):
            g = gt[var][on].double().numpy()
            means, counts = pr.binned[var]
            for k, value in enumerate(pr.values[var]):
                sel = g == value
                assert counts[u, k] == sel.sum()
                if sel.any():
                    assert means[u, k] == pytest.approx(v[sel].mean(), abs=1e-4)
            if g.std() > 0 and v.std() > 0:
                assert pr.corr[var][u] == pytest.approx(np.corrcoef(g, v)[0, 1], abs=1e-4)
                slope = np.polyfit(g, v * float(w_out[u]), 1)[0]
                assert pr.slope[var][u] == pytest.approx(slope, abs=1e-4)
        # every band is drawn from its own slice of the sorted activations, lowest band first
        srt = np.sort(v)
        for q, band in enumerate(pr.bands[u]):
            lo, hi = len(v) * q // N_BANDS, len(v) * (q + 1) // N_BANDS
            assert len(band) == min(PER_BAND, hi - lo)
            for s, a in band:
                assert srt[lo] - 1e-5 <= a <= srt[hi - 1] + 1e-5 and f[s, u] == pytest.approx(a, abs=1e-5)
    # contribution per value of a - b: sum of f * w over the inputs with that difference / their number
    d = gt["a-b"].numpy()
    u = live[0]
    for k, value in enumerate(range(-9, 10)):
        sel = d == value
        expect = float((f[sel, u] * w_out[u]).mean()) if sel.any() else 0.0
        assert pr.contrib_by_diff[u, k] == pytest.approx(expect, abs=1e-4)


def test_neighbours_are_the_nearest(models_and_stats):
    _, sae, x, f, _, _, pr = models_and_stats
    W = torch.nn.functional.normalize(sae.W_dec.detach(), dim=1)
    cos = (W @ W.T).numpy()
    fire = (f > 0).numpy()
    for u in range(f.shape[1]):
        others = np.delete(np.arange(f.shape[1]), u)
        best = others[np.argmax(cos[u, others])]
        assert pr.cos_neighbours[u][0][0] == best and pr.cos_neighbours[u][0][1] == pytest.approx(cos[u, best], abs=1e-5)
        if pr.coact_neighbours[u]:
            j, jac = pr.coact_neighbours[u][0]
            inter = (fire[:, u] & fire[:, j]).sum()
            union = (fire[:, u] | fire[:, j]).sum()
            assert jac == pytest.approx(inter / union, abs=1e-5)
            all_j = [(fire[:, u] & fire[:, k]).sum() / max((fire[:, u] | fire[:, k]).sum(), 1) for k in others]
            assert jac == pytest.approx(max(all_j), abs=1e-5)


def test_training_page_draws_the_histories_or_says_none(tiny_run, tmp_path):
    from common.paths import RunPaths

    from viz.training import build

    paths = RunPaths(tmp_path / "run")
    paths.mlp_dir.mkdir(parents=True)
    history = [{"epoch": e, "train_loss": 4.0 / e, "val_mse": 5.0 / e, "val_exact_match": e / 10} for e in range(1, 6)]
    save_mlp(PointerMLP(MLPConfig(d_mlp=32, d_hidden=64)), paths.mlp, metrics={"history": history, "best_epoch": 5})
    paths.sae_dir.mkdir(parents=True)
    save_run_sae(tiny_sae("relu", d_in=64, d_sae=16), paths, metrics={})
    html, n = build(paths)
    assert n == 1 and 'id="history-mlp"' in html and "No history in sae_model.pth" in html
    assert "validation MSE 5 → 1" in html        # the caption is this run's numbers
    sae_hist = [{"step": s, "loss": 1.0 / s, "fvu": 0.5 / s, "l0": 10.0, "dead_share": 0.0} for s in (10, 20, 30)]
    save_run_sae(tiny_sae("relu", d_in=64, d_sae=16), paths, metrics={"history": sae_hist})
    html, n = build(paths)
    assert n == 2 and 'id="history-sae"' in html and "over 30 steps" in html
    # the tiny run's own MLP file (train_mlp.py) carries one record per epoch
    from mlp.mlp_definition import mlp_metrics_of
    h = mlp_metrics_of(tiny_run.mlp)["history"]
    assert [r["epoch"] for r in h] == list(range(1, len(h) + 1)) and all(r["val_mse"] >= 0 for r in h)
