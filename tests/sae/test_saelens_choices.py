"""SAELens's TopK training choices, opt-in settings of the project's trainer (issue 22 item 5): a free
decoder initialised at a small norm, top-k ranked by decoder-norm-scaled pre-activations, AuxK on the
data's scale. Their defaults are the project's own choices."""
import pytest
import torch

from sae.losses import residual_fvu
from sae.registry import build_sae
from sae.topk import fold_decoder_norms
from sae.training import train
from tests.helpers import synthetic_acts, tiny_sae_config, tiny_train_config

D_IN, D_SAE = 64, 128


def _rows_of_random_norm(sae, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(D_SAE, 1, generator=g) * 2 + 0.05)     # norms in [0.05, 2.05]
        sae.b_enc.normal_(0, 0.1, generator=g)
    return sae


def test_rescaled_topk_is_saelens_plain_topk_after_folding_the_norms():
    sae = _rows_of_random_norm(build_sae(tiny_sae_config("topk", D_IN, D_SAE, rescale_acts_by_decoder_norm=True),
                                         generator=torch.Generator().manual_seed(0))).eval()
    plain = build_sae(tiny_sae_config("topk", D_IN, D_SAE)).eval()
    plain.load_state_dict({**sae.state_dict(), **fold_decoder_norms(sae.W_enc, sae.b_enc, sae.W_dec)})
    h = synthetic_acts(300, D_IN)
    (h_hat, f), (h_hat_p, f_p) = sae(h), plain(h)
    assert torch.equal(f > 0, f_p > 0)                               # the same active set as SAELens's
    torch.testing.assert_close(h_hat, h_hat_p, rtol=1e-5, atol=1e-5)  # and the same reconstruction
    unscaled = build_sae(tiny_sae_config("topk", D_IN, D_SAE)).eval()
    unscaled.load_state_dict(sae.state_dict())
    assert not torch.equal(unscaled(h)[1] > 0, f > 0)                # the ranking did change something


def test_training_ranks_as_inference_does_with_rescale():
    sae = _rows_of_random_norm(build_sae(tiny_sae_config("topk", D_IN, D_SAE, rescale_acts_by_decoder_norm=True),
                                         generator=torch.Generator().manual_seed(0)))
    h = synthetic_acts(200, D_IN)
    values, indices, _ = sae.encode_sparse(h)
    f = sae.eval().encode(h)
    dense = torch.zeros_like(f).scatter_(1, indices, values.detach())
    torch.testing.assert_close(dense, f)


def test_data_scaled_auxk_is_the_residual_fvu_when_var_is_the_residuals_and_scales_with_the_dead():
    sae = build_sae(tiny_sae_config("topk", D_IN, D_SAE, aux_norm="data", aux_k=32), generator=torch.Generator().manual_seed(0))
    h = synthetic_acts(256, D_IN)
    with torch.no_grad():
        values, indices, pre = sae.encode_sparse(h)
        residual = h - sae.decode_sparse(values, indices)
    var = float(((residual - residual.mean(0)) ** 2).sum(1).mean())
    all_dead = torch.ones(D_SAE, dtype=torch.bool)
    openai = build_sae(tiny_sae_config("topk", D_IN, D_SAE, aux_k=32))
    openai.load_state_dict(sae.state_dict())
    expected = openai.auxk(h, pre, residual, all_dead)
    torch.testing.assert_close(sae.auxk(h, pre, residual, all_dead, var), expected)
    few = torch.zeros(D_SAE, dtype=torch.bool)
    few[:8] = True                                                    # 8 dead of aux_k 32: a quarter of the weight
    unscaled = residual_fvu(residual, sae.decode_sparse(
        torch.relu(pre.masked_fill(~few, float("-inf")).topk(8, dim=-1).values),
        pre.masked_fill(~few, float("-inf")).topk(8, dim=-1).indices) - sae.b_dec)
    torch.testing.assert_close(sae.auxk(h, pre, residual, few, var), unscaled * 0.25)


def test_free_decoder_starts_small_and_is_never_projected():
    acts = synthetic_acts()
    cfg = tiny_sae_config("topk", D_IN, D_SAE)
    free, _ = train(cfg, acts, tiny_train_config(steps=10, dec_init_norm=0.1, unit_norm_decoder=False, resample_at=()))
    norms = free.W_dec.detach().norm(dim=1)
    assert float(norms.max()) < 0.5 and not torch.allclose(norms, norms[0].expand_as(norms))
    unit, _ = train(cfg, acts, tiny_train_config(steps=10, dec_init_norm=0.1, resample_at=()))
    torch.testing.assert_close(unit.W_dec.norm(dim=1), torch.ones(D_SAE))   # default: back at unit norm


@pytest.mark.parametrize("arch, settings, message", [
    ("topk", {"aux_norm": "raw"}, "aux_norm"),
    ("topk", {"rescale_acts_by_decoder_norm": 1}, "rescale_acts_by_decoder_norm"),
    ("batchtopk", {"rescale_acts_by_decoder_norm": True}, "topk / ortsae setting"),
])
def test_bad_settings_are_refused(arch, settings, message):
    with pytest.raises(ValueError, match=message):
        tiny_sae_config(arch, D_IN, D_SAE, **settings)


def test_bad_decoder_init_norm_is_refused():
    with pytest.raises(ValueError, match="dec_init_norm"):
        train(tiny_sae_config("topk", D_IN, D_SAE), synthetic_acts(), tiny_train_config(steps=1, dec_init_norm=0.0))
