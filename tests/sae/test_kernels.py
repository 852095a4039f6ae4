"""sae/kernels.py: every fast path equal to the plain autograd computation it replaces."""
import pytest
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


def relu_case(density: str):
    """A relu SAE with decoder norms != 1 (the L1 weighting matters) and a batch whose features are
    sparse (~1% active, one input with none) or dense (b_enc > 0: most active)."""
    sae = build_sae(tiny_cfg("relu"))
    h = synthetic_acts()[:64].clone()
    with torch.no_grad():
        sae.b_dec.normal_(0, 0.1)
        sae.W_dec.mul_(torch.rand(D_SAE, 1) + 0.5)
        if density == "sparse":
            sae.b_enc.copy_(-((h - sae.b_dec) @ sae.W_enc).quantile(0.99, dim=0))
            h[0] = sae.b_dec                                          # pre = b_enc < 0: an empty row
        else:
            sae.b_enc.fill_(0.5)
    return sae, h


def relu_fused(sae, h, var=3.0, l1=0.05):
    """(loss, gradients, fired, active count) of ReluSAELoss."""
    params = [sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec]
    loss, _, _, fired, n_active = kernels.ReluSAELoss.apply(h, *params, var, l1)
    return loss, torch.autograd.grad(loss, params), fired, n_active


def relu_autograd(sae, h, var=3.0, l1=0.05):
    """The same loss from the readable model (sae.forward), through autograd."""
    h_hat, f = sae(h)
    loss = ((h - h_hat) ** 2).sum(1).mean() / var + l1 * (f * sae.W_dec.norm(dim=1)).sum(1).mean()
    return loss, torch.autograd.grad(loss, [sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec]), f


@pytest.mark.parametrize("density", ["sparse", "dense"])
def test_relu_sparse_path_equals_dense_path_equals_autograd(monkeypatch, density):
    """Both paths of the fused kernel, forced on the same batch, give autograd's loss and gradients."""
    sae, h = relu_case(density)
    ref_loss, ref_grads, f = relu_autograd(sae, h)
    share = float((f > 0).float().mean())
    assert (share < kernels.RELU_SPARSE_MAX_DENSITY) if density == "sparse" else (share > 0.5)
    for path, limit in (("sparse", 1.0), ("dense", -1.0)):
        monkeypatch.setattr(kernels, "RELU_SPARSE_MAX_DENSITY", limit)
        loss, grads, fired, n_active = relu_fused(sae, h)
        torch.testing.assert_close(loss, ref_loss, msg=path)
        assert torch.equal(fired, (f > 0).any(0)) and int(n_active) == int((f > 0).sum()), path
        for name, a, b in zip(("W_enc", "b_enc", "W_dec", "b_dec"), grads, ref_grads):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=f"{path} path, {name}")


def test_relu_picks_its_path_by_the_batch_density(monkeypatch):
    """At the default threshold a sparse batch runs the sparse path and a dense one the dense path."""
    calls = []
    monkeypatch.setattr(kernels, "active_csr", lambda f: calls.append(1) or kernels_active_csr(f))
    for density, expected in (("sparse", 1), ("dense", 0)):
        calls.clear()
        sae, h = relu_case(density)
        relu_fused(sae, h)
        assert len(calls) == expected, density


kernels_active_csr = kernels.active_csr


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
