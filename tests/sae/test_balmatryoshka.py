"""The balance Matryoshka's loss against its definition written out: TopK's loss plus beta^(n+1-i)
times the FVU of inner prefix i's reconstruction from the TopK-kept latents in it."""
import pytest
import torch
import torch.nn.functional as F

from sae.losses import normalized_mse
from sae.registry import build_sae
from tests.helpers import synthetic_acts, tiny_sae, tiny_sae_config

D_IN, D_SAE, K, PREFIXES = 64, 128, 6, (8, 32, 128)


def _pair(balance):
    """(balance Matryoshka with biases, TopK with the same weights)."""
    sae = tiny_sae("balmatryoshka", D_IN, D_SAE, k=K, prefixes=PREFIXES, balance=balance)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        sae.b_dec.copy_(0.3 * torch.randn(D_IN, generator=g))
        sae.b_enc.copy_(0.1 * torch.randn(D_SAE, generator=g))
    topk = build_sae(tiny_sae_config("topk", D_IN, D_SAE, k=K))
    topk.load_state_dict(sae.state_dict())
    return sae, topk


def _prefix_fvu(sae, h, m, var):
    """FVU of latents [0, m) of the TopK features, written out from the dense encoding."""
    with torch.no_grad():
        pre = (h - sae.b_dec) @ sae.W_enc + sae.b_enc
        kth = pre.topk(K, dim=1).values[:, -1:]
        f = F.relu(pre) * (pre >= kth)                                # [n, d_sae], TopK's features
        return float(normalized_mse(h, f[:, :m] @ sae.W_dec[:m] + sae.b_dec, var))


@pytest.mark.parametrize("balance", [0.0, 0.5, 1.0])
def test_the_loss_is_topk_loss_plus_balanced_prefix_losses(balance):
    sae, topk = _pair(balance)
    h, var, dead = synthetic_acts(96), 1.7, torch.arange(D_SAE) < 30    # some dead: AuxK counts too
    loss, fired, parts = sae.loss(h, var, dead)
    base, base_fired, base_parts = topk.loss(h, var, dead)
    # two inner prefixes (8, 32): the smallest weighs beta^2, the next beta^1
    expected = float(base.detach()) + balance ** 2 * _prefix_fvu(sae, h, 8, var) + balance * _prefix_fvu(sae, h, 32, var)
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert torch.equal(fired, base_fired) and parts["mse"] == base_parts["mse"] and base_parts["aux"] > 0
    if balance == 0:                                                  # beta = 0 is TopK, bit for bit
        assert torch.equal(loss.detach(), base.detach())


def test_the_inner_terms_train_the_inner_latents():
    """With beta > 0 the small prefix's decoder rows get a gradient from its own reconstruction."""
    sae, topk = _pair(1.0)
    h, dead = synthetic_acts(96), torch.zeros(D_SAE, dtype=torch.bool)
    g_bal = torch.autograd.grad(sae.loss(h, 1.0, dead)[0], sae.W_dec)[0]
    g_top = torch.autograd.grad(topk.loss(h, 1.0, dead)[0], topk.W_dec)[0]
    assert not torch.allclose(g_bal[:8], g_top[:8])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="balance"):
        tiny_sae_config("balmatryoshka", d_sae=32, balance=1.5)
    with pytest.raises(ValueError, match="prefixes"):
        tiny_sae_config("balmatryoshka", d_sae=32, prefixes=(16, 8, 32))
