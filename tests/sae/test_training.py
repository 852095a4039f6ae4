"""SAE training: invariants after steps, resampling, AuxK, determinism, resume == no resume."""
import pytest
import torch

from common.io import PipelineError
from sae.registry import ARCHITECTURES, build_sae
from sae.training import geometric_median, resample_dead_, train
from tests.helpers import synthetic_acts, tiny_sae_config, tiny_train_config

D_IN, D_SAE = 64, 128


def tiny_cfg(arch, d_sae=D_SAE, **kw):
    return tiny_sae_config(arch, D_IN, d_sae, **kw)


def tiny_tc(**kw):
    return tiny_train_config(**kw)


def test_relu_decoder_stays_unit_norm_and_loss_falls():
    acts = synthetic_acts()
    losses = []
    sae, info = train(tiny_cfg("relu"), acts, tiny_tc(steps=40), on_step=lambda s, t, st: losses.append(st["mse"]))
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))
    assert info["steps"] == 40 and len(losses) == 40
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5])


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_trains(arch):
    acts = synthetic_acts()
    sae, info = train(tiny_cfg(arch), acts, tiny_tc(steps=20))
    h_hat, f = sae(acts[:100])
    assert torch.isfinite(h_hat).all() and (f >= 0).all()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))
    if arch == "topk":
        assert ((f > 0).sum(1) <= 6).all() and ((f > 0).sum(1) == 6).float().mean() > 0.9


def test_same_seed_same_weights_other_seed_other_weights():
    acts = synthetic_acts()
    a, _ = train(tiny_cfg("relu"), acts, tiny_tc(seed=1))
    b, _ = train(tiny_cfg("relu"), acts, tiny_tc(seed=1))
    c, _ = train(tiny_cfg("relu"), acts, tiny_tc(seed=2))
    assert torch.equal(a.W_enc, b.W_enc) and torch.equal(a.W_dec, b.W_dec)
    assert not torch.equal(a.W_enc, c.W_enc)


def test_resampling_revives_dead_features():
    acts = synthetic_acts()
    sae = build_sae(tiny_cfg("relu"))
    with torch.no_grad():
        sae.b_enc[:40] = -1e3                                         # features 0..39 can never fire
    assert (sae.encode(acts)[:, :40] > 0).sum() == 0
    opt = torch.optim.Adam(sae.parameters())
    sae(acts[:8])[0].sum().backward()
    opt.step()
    opt.state[sae.b_enc]["exp_avg"].fill_(1.0)
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[:40] = True
    n = resample_dead_(sae, opt, acts[:500], dead, torch.Generator().manual_seed(0))
    assert n == 40
    fired = (sae.encode(acts)[:, :40] > 0).any(0)
    assert fired.float().mean() > 0.9
    assert (opt.state[sae.b_enc]["exp_avg"][:40] == 0).all() and (opt.state[sae.b_enc]["exp_avg"][40:] == 1).all()
    torch.testing.assert_close(sae.W_dec[:40].norm(dim=1), torch.ones(40))


def test_training_counts_resampled_features():
    acts = synthetic_acts()
    # huge l1 kills most features early; resampling at half-way must bring some back
    sae, info = train(tiny_cfg("relu", l1_coeff=1.0), acts, tiny_tc(steps=40, dead_window=256, lr=0.03))
    assert info["resampled"] > 0


def test_auxk_loss_is_positive_with_dead_latents_and_zero_without():
    acts = synthetic_acts()[:64]
    sae = build_sae(tiny_cfg("topk"))
    none_dead = torch.zeros(D_SAE, dtype=torch.bool)
    _, _, s0 = sae.loss(acts, 1.0, none_dead)
    _, _, s1 = sae.loss(acts, 1.0, ~none_dead)
    assert s0["aux"] == 0.0 and s1["aux"] > 0.0


def test_geometric_median_resists_outliers():
    x = torch.cat([torch.zeros(95, 3), torch.full((5, 3), 1000.0)])
    assert geometric_median(x).norm() < 1.0 < x.mean(0).norm()


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("arch", ["relu", "topk"])
def test_resume_after_interruption_gives_the_same_weights(arch, tmp_path):
    acts = synthetic_acts()
    tc = tiny_tc(steps=24, checkpoint_every=5, resample_at=(0.5,), dead_window=256)
    full, full_info = train(tiny_cfg(arch), acts, tc)

    ckpt = tmp_path / "checkpoint.pth"

    def stop_at_13(step, total, stats):
        if step == 13:
            raise Interrupt
    with pytest.raises(Interrupt):
        train(tiny_cfg(arch), acts, tc, checkpoint_path=ckpt, on_step=stop_at_13)
    assert torch.load(ckpt, weights_only=True)["step"] == 10
    resumed, info = train(tiny_cfg(arch), acts, tc, checkpoint_path=ckpt, resume=True)
    for name, p in full.state_dict().items():
        assert torch.equal(p, resumed.state_dict()[name]), name
    assert info["resampled"] == full_info["resampled"]


def test_resume_refuses_a_checkpoint_of_other_settings_or_a_broken_one(tmp_path):
    acts = synthetic_acts()
    ckpt = tmp_path / "checkpoint.pth"
    tc = tiny_tc(steps=12, checkpoint_every=5)

    def stop(step, total, stats):
        if step == 6:
            raise Interrupt
    with pytest.raises(Interrupt):
        train(tiny_cfg("relu"), acts, tc, checkpoint_path=ckpt, on_step=stop)
    with pytest.raises(PipelineError, match="other settings"):
        train(tiny_cfg("relu", d_sae=64), acts, tc, checkpoint_path=ckpt, resume=True)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(PipelineError, match="checkpoint.pth"):
        train(tiny_cfg("relu"), acts, tc, checkpoint_path=ckpt, resume=True)


def test_tensor_source_variance_is_the_mean_squared_distance_to_the_mean_bit_for_bit():
    """The in-place, chunked variance equals the plain double formula exactly (it normalises every SAE's
    loss: a last-bit change would move the default run's numbers)."""
    from sae.sources import TensorSource
    h = synthetic_acts(1000) * 3 + 0.1                                # [1000, 64]
    d = h.double()
    expected = float(((d - d.mean(0)) ** 2).sum() / len(h))
    source = TensorSource(h, torch.Generator().manual_seed(0))
    assert source.variance(chunk=len(h)) == expected                 # one chunk: the same sums, bit for bit
    assert abs(source.variance(chunk=300) - expected) <= 1e-12 * expected   # ragged chunks: same up to rounding
