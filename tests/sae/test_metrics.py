"""The SAE's metrics on a lossy SAE, against numbers computed here independently (numpy, float64,
input by input): a wrong denominator, an off-by-one threshold or a swapped stream changes them."""
import math

import numpy as np
import pytest
import torch

from mlp.activations import load_activations
from mlp.mlp_definition import load_mlp
from sae.metrics import DENSITY_FLOOR_LOG10, evaluate_sae, fvu
from sae.splice import chunked_pass
from tests.helpers import tiny_sae


def _hand_built_relu(h: torch.Tensor, d_sae: int = 48, seed: int = 3):
    """A relu SAE on activations h [n, d] with features of known firing: 0 fires on exactly one input,
    1 never, 2 on every input; the others random (lossy). Returns (sae, index of the one input)."""
    d = h.shape[1]
    sae = tiny_sae("relu", d_in=d, d_sae=d_sae, seed=seed)
    with torch.no_grad():
        sae.b_dec.copy_(h.mean(0) * 0.5)                             # a non-zero tied bias
        col = torch.zeros(d)
        j = int(h.var(0).argmax())
        col[j] = 1.0
        proj = (h - sae.b_dec)[:, j]
        top2 = proj.topk(2).values
        sae.W_enc[:, 0] = col
        sae.b_enc[0] = -float(top2.mean())                           # only the largest projection passes
        sae.b_enc[1] = -1e6                                          # never fires
        sae.b_enc[2] = 1e6                                           # always fires
        sae.W_enc[:, 2] = 0.0
        sae.W_dec[2] = 0.0                                           # ... without breaking the reconstruction
    return sae, int(proj.argmax())


@pytest.fixture(scope="module")
def lossy(tiny_run):
    mlp = load_mlp(tiny_run.mlp)
    data = load_activations(tiny_run.activations)
    h, x, y = data["activations"][:400], data["inputs"][:400], data["targets"][:400]
    sae, once = _hand_built_relu(h)
    return mlp, sae, h, x, y, once


def test_evaluation_matches_an_independent_computation_on_a_lossy_sae(lossy):
    mlp, sae, h, x, y, once = lossy
    m = evaluate_sae(sae, mlp, h, x, y.float(), chunk=37)            # chunks that do not divide n
    # the same numbers, written out here with numpy in float64
    H = h.double().numpy()
    W_enc, b_enc = sae.W_enc.detach().double().numpy(), sae.b_enc.detach().double().numpy()
    W_dec, b_dec = sae.W_dec.detach().double().numpy(), sae.b_dec.detach().double().numpy()
    F = np.maximum((H - b_dec) @ W_enc + b_enc, 0)
    H_hat = F @ W_dec + b_dec
    n = len(H)
    fvu_np = ((H - H_hat) ** 2).sum() / ((H - H.mean(0)) ** 2).sum()
    uncentred = ((H - H_hat) ** 2).sum() / (H ** 2).sum()
    assert fvu_np > 0.05 and abs(uncentred - fvu_np) > 0.02 * fvu_np   # lossy, and centring matters here
    assert m["fvu"] == pytest.approx(fvu_np, rel=1e-5)
    counts = (F > 0).sum(0)
    assert counts[0] == 1 and counts[1] == 0 and counts[2] == n     # the hand-built firing
    assert m["l0"] == pytest.approx((F > 0).sum(1).mean(), rel=1e-6)
    assert m["dead"] == int((counts == 0).sum()) and m["dead_share"] == pytest.approx((counts == 0).mean())
    assert m["dense_share"] == pytest.approx((counts / n > 0.10).mean())
    expected_density = [math.log10(c / n) if c else DENSITY_FLOOR_LOG10 for c in counts]
    assert m["density_log10"] == pytest.approx(expected_density, abs=1e-9)
    assert m["density_log10"][0] == pytest.approx(math.log10(1 / n))
    # spliced: the MLP's linear head on the reconstruction; the MLP's own: on h itself
    w, b = mlp.head.weight.detach().double().numpy()[0], float(mlp.head.bias.detach()[0])
    spliced, own, Y = H_hat @ w + b, H @ w + b, y.double().numpy()
    assert m["spliced_mse"] == pytest.approx(((spliced - Y) ** 2).mean(), rel=1e-4)
    assert m["spliced_exact_match"] == pytest.approx((np.round(spliced) == Y).mean())
    assert m["mlp_mse"] == pytest.approx(((own - Y) ** 2).mean(), rel=1e-4)
    assert abs(((spliced - Y) ** 2).mean() - ((own - Y) ** 2).mean()) > 0.1   # lossy: the two differ
    assert m["n"] == n


def test_chunked_pass_splices_the_reconstruction(lossy):
    mlp, sae, h, x, _, _ = lossy
    out = chunked_pass(mlp, sae, x, chunk=64)
    with torch.no_grad():
        hidden = mlp.hidden(x)
        f = torch.relu((hidden - sae.b_dec) @ sae.W_enc + sae.b_enc)
        by_hand = (f @ sae.W_dec + sae.b_dec) @ mlp.head.weight[0] + mlp.head.bias[0]
    torch.testing.assert_close(out["features"], f, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["spliced"], by_hand, rtol=1e-5, atol=1e-4)
    assert (out["spliced"] - out["mlp"]).abs().max() > 1e-2


def test_batch_fvu_and_reconstruction_stats_centre_the_variance():
    g = torch.Generator().manual_seed(0)
    h = 5.0 + torch.rand(300, 6, generator=g)                        # far from zero: centring matters 5x over
    h_hat = h + 0.1 * torch.randn(300, 6, generator=g)
    H, Hh = h.double().numpy(), h_hat.double().numpy()
    expected = ((H - Hh) ** 2).sum() / ((H - H.mean(0)) ** 2).sum()
    assert fvu(h, h_hat) == pytest.approx(expected, rel=1e-9)
    assert fvu(h, h_hat) > 5 * ((H - Hh) ** 2).sum() / (H ** 2).sum()
