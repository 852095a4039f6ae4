"""sae/kernels.py: every fast path equal to the plain autograd computation it replaces."""
import torch

from sae import kernels
from sae.registry import build_sae
from tests.helpers import synthetic_acts, tiny_sae, tiny_sae_config

D_IN, D_SAE = 64, 128


def make_sae(architecture, **kw):
    return tiny_sae(architecture, D_IN, D_SAE, **{"k": 8, **kw})


def tiny_cfg(arch, **kw):
    return tiny_sae_config(arch, D_IN, D_SAE, **kw)


def test_scatter_rows_and_sampled_dot_equal_their_dense_products(monkeypatch):
    g = torch.Generator().manual_seed(0)
    batch, k, n_rows, d = 30, 5, 40, 7
    indices = torch.stack([torch.randperm(n_rows, generator=g)[:k] for _ in range(batch)])   # unique per row
    weights, x = torch.randn(batch, k, generator=g), torch.randn(batch, d, generator=g)
    W = torch.randn(n_rows, d, generator=g)
    dense = torch.zeros(batch, n_rows).scatter_(1, indices, weights)                          # [batch, n_rows]
    for limit in (1000, 2):                                                                   # sparse, then dense path
        monkeypatch.setattr(kernels, "SPARSE_MAX_K", limit)
        torch.testing.assert_close(kernels.scatter_rows(indices, weights, x, n_rows), dense.t() @ x)
    torch.testing.assert_close(kernels.sampled_dot(indices, x, W), (x @ W.t()).gather(1, indices))


def test_topk_sparse_gradients_equal_dense_autograd():
    """encode_topk/decode_sparse's hand-written backward (SDDMM, sparse scatter) == autograd through
    the dense encode/decode."""
    sae = make_sae("topk", k=8)
    with torch.no_grad():
        sae.b_dec.normal_(0, 0.1)
        sae.b_enc.fill_(0.5)
    h = torch.rand(40, D_IN)
    params = list(sae.parameters())
    values, indices, _ = sae.encode_sparse(h)
    sparse = torch.autograd.grad(((h - sae.decode_sparse(values, indices)) ** 2).sum(), params)
    dense = torch.autograd.grad(((h - sae(h)[0]) ** 2).sum(), params)
    for a, b in zip(sparse, dense):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_relu_hand_written_gradient_equals_autograd():
    sae = build_sae(tiny_cfg("relu"))
    with torch.no_grad():
        sae.b_dec.normal_(0, 0.1)
        sae.W_dec.mul_(torch.rand(D_SAE, 1) + 0.5)                   # norms != 1: the L1 weighting matters
    h = synthetic_acts()[:64]
    params = [sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec]
    loss, _, _, _ = kernels.ReluSAELoss.apply(h, *params[:2], *params[2:], 3.0, 0.05)
    fused = torch.autograd.grad(loss, params)
    h_hat, f = sae(h)
    ref_loss = ((h - h_hat) ** 2).sum(1).mean() / 3.0 + 0.05 * (f * sae.W_dec.norm(dim=1)).sum(1).mean()
    torch.testing.assert_close(loss, ref_loss)
    for a, b in zip(fused, torch.autograd.grad(ref_loss, params)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_topk_sparse_and_dense_gradient_paths_agree(monkeypatch):
    """encode_topk/decode_sparse/AuxK switch from sparse to dense products for large k: same gradients."""
    sae = build_sae(tiny_cfg("topk", aux_k=40))
    h = synthetic_acts()[:50]
    dead = torch.arange(D_SAE) % 2 == 0
    grads = []
    for limit in (1000, 8):
        monkeypatch.setattr(kernels, "SPARSE_MAX_K", limit)
        values, indices, pre = sae.encode_sparse(h)
        h_hat = sae.decode_sparse(values, indices)
        loss = ((h - h_hat) ** 2).sum() + sae.auxk(h, pre, (h - h_hat).detach(), dead)
        grads.append(torch.autograd.grad(loss, list(sae.parameters())))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
