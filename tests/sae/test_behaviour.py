"""Each architecture's own behaviour, through its public interface, against its definition written
out here: inference (TopK's k, BatchTopK's and Matryoshka's learned threshold, JumpReLU's theta),
the training loss's terms, AuxK reaching only dead latents, dead latents reviving."""
import pytest
import torch
import torch.nn.functional as F

import sae.training as training
from sae.losses import normalized_mse
from sae.registry import ARCHITECTURES
from sae.sae_definition import load_sae, save_sae
from sae.saelens import load_saelens, save_saelens
from sae.training import init_b_dec_, geometric_median, lr_factor, train
from tests.helpers import synthetic_acts, tiny_sae, tiny_train_config

D_IN, D_SAE, K = 64, 128, 6


def _with_bias(sae, seed=1):
    """Non-zero biases, so a definition that forgets one of them shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.b_dec.copy_(0.3 * torch.randn(D_IN, generator=g))
        sae.b_enc.copy_(0.1 * torch.randn(D_SAE, generator=g))
    return sae


def _pre(sae, h):
    return (h - sae.b_dec) @ sae.W_enc + sae.b_enc                    # [n, d_sae], the shared encoder map


# ---- inference equals its definition -----------------------------------------------------------

@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_inference_is_the_architectures_definition(arch):
    sae = _with_bias(tiny_sae(arch, D_IN, D_SAE, k=K, threshold_init=0.2)).eval()
    h = synthetic_acts(200)
    with torch.no_grad():
        if arch in ("batchtopk", "matryoshka"):
            sae.threshold.fill_(0.15)                                 # as if trained
        pre = _pre(sae, h)
        if arch == "relu":
            expected = F.relu(pre)
        elif arch in ("topk", "ortsae", "balmatryoshka"):             # (OrtSAE, balance Matryoshka: TopK but for the loss)
            kth = pre.topk(K, dim=1).values[:, -1:]                   # the k-th largest of each row
            expected = F.relu(pre) * (pre >= kth)
        elif arch in ("batchtopk", "matryoshka"):
            expected = pre * (pre > 0.15)                             # one learned threshold, whatever the row
        elif arch == "jumprelu":
            expected = pre * (pre > sae.threshold)
        elif arch == "gated":                                         # the gate, then the rescaled magnitude
            sae.r_mag.fill_(0.3)
            sae.b_mag.fill_(-0.05)
            expected = (pre > 0) * F.relu(torch.exp(torch.tensor(0.3)) * (pre - sae.b_enc) - 0.05)
        f = sae.encode(h)
    torch.testing.assert_close(f, expected)
    if arch in ("batchtopk", "matryoshka"):
        l0 = (f > 0).sum(1)
        assert l0.min() != l0.max()                                   # a threshold, not a per-row top-k


def test_topk_keeps_exactly_k_where_k_are_positive():
    sae = _with_bias(tiny_sae("topk", D_IN, D_SAE, k=K))
    with torch.no_grad():
        sae.b_enc.fill_(5.0)                                          # every pre-activation positive
    assert ((sae.encode(synthetic_acts(50)) > 0).sum(1) == K).all()


# ---- BatchTopK's threshold -----------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["batchtopk", "matryoshka"])
def test_batchtopk_threshold_is_the_running_mean_of_the_smallest_kept_activation(arch):
    sae = _with_bias(tiny_sae(arch, D_IN, D_SAE, k=K)).train()
    m = sae.cfg.threshold_momentum
    acts = synthetic_acts(3 * 64)
    expected = None
    for i in range(3):
        h = acts[i * 64:(i + 1) * 64]
        with torch.no_grad():
            pre = _pre(sae, h).flatten()
            kept = pre.topk(64 * K).values                            # the batch's batch * k largest
            smallest = float(kept[kept > 0].min())
        expected = smallest if expected is None else m * expected + (1 - m) * smallest
        _, _, stats = sae.loss(h, 1.0, torch.zeros(D_SAE, dtype=torch.bool))
        assert stats["l0"] == pytest.approx(K)                        # k per input on average, in training
        assert float(sae.threshold) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("arch", ["batchtopk", "matryoshka"])
def test_a_trained_batchtopk_fires_about_k_per_input_at_inference(arch):
    acts = synthetic_acts(3000)
    sae, _ = train(tiny_sae(arch, D_IN, D_SAE, k=K).cfg, acts, tiny_train_config(steps=60))
    l0 = (sae.encode(acts[-500:]) > 0).sum(1).float().mean()
    assert float(sae.threshold) > 0
    assert K / 3 <= float(l0) <= 3 * K                                # (the running mean lags: 2.9-6 here)


# ---- the training losses' terms ------------------------------------------------------------------

def test_topk_training_loss_is_the_inference_reconstruction_plus_weighted_auxk():
    sae = _with_bias(tiny_sae("topk", D_IN, D_SAE, k=K, aux_coeff=0.25))
    with torch.no_grad():
        sae.b_enc.fill_(-0.6)                                         # many selected pre-activations < 0
    h = synthetic_acts(100)
    dead = torch.arange(D_SAE) < 40
    loss, fired, stats = sae.loss(h, 2.0, dead)
    h_hat = sae(h)[0]
    assert stats["mse"] == pytest.approx(float(normalized_mse(h, h_hat.detach(), 2.0)), rel=1e-5)
    assert stats["aux"] > 0
    assert float(loss.detach()) == pytest.approx(stats["mse"] + 0.25 * stats["aux"], rel=1e-5)
    assert torch.equal(fired, (sae.encode(h) > 0).any(0))            # fired = had a non-zero value


def test_topk_latents_selected_at_zero_have_not_fired():
    sae = tiny_sae("topk", D_IN, D_SAE, k=K)
    with torch.no_grad():
        sae.b_enc.fill_(-1e3)                                         # every pre-activation negative
    _, fired, stats = sae.loss(synthetic_acts(50), 1.0, torch.zeros(D_SAE, dtype=torch.bool))
    assert not fired.any() and stats["l0"] == 0


def test_relu_loss_is_mse_plus_warmed_decoder_weighted_l1():
    sae = _with_bias(tiny_sae("relu", D_IN, D_SAE, l1_coeff=0.05))
    with torch.no_grad():
        sae.W_dec.mul_(torch.linspace(0.5, 2.0, D_SAE)[:, None])      # decoder norms != 1
    h = synthetic_acts(80)
    loss, _, stats = sae.loss(h, 3.0, torch.zeros(D_SAE, dtype=torch.bool), sparsity_scale=0.5)
    h_hat, f = sae(h)
    l1 = (f * sae.W_dec.norm(dim=1)).sum(1).mean().detach()
    assert stats["l1"] == pytest.approx(float(l1.detach()), rel=1e-5)
    assert float(loss.detach()) == pytest.approx(float(normalized_mse(h, h_hat.detach(), 3.0)) + 0.5 * 0.05 * float(l1), rel=1e-5)


def test_matryoshka_loss_is_the_sum_over_its_prefixes():
    sae = _with_bias(tiny_sae("matryoshka", D_IN, D_SAE, k=K, prefixes=(8, 32, D_SAE))).train()
    h = synthetic_acts(64)
    with torch.no_grad():
        pre = _pre(sae, h)
        kth = pre.flatten().topk(64 * K).values[-1]
        f = pre * (pre >= kth) * (pre > 0)                            # BatchTopK's training selection
        expected = sum(float(normalized_mse(h, f[:, :m] @ sae.W_dec[:m] + sae.b_dec, 1.5)) for m in (8, 32, D_SAE))
    loss, _, stats = sae.loss(h, 1.5, torch.zeros(D_SAE, dtype=torch.bool))   # no dead latent: no AuxK
    assert stats["aux"] == 0
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)


# ---- AuxK and dead latents -----------------------------------------------------------------------

def test_auxk_gradient_reaches_only_dead_latents():
    sae = _with_bias(tiny_sae("topk", D_IN, D_SAE, k=K, aux_k=16))
    h = synthetic_acts(100)
    dead = torch.arange(D_SAE) % 3 == 0
    with torch.no_grad():
        pre = _pre(sae, h)
        residual = h - sae(h)[0]
    aux = sae.auxk(h, pre, residual, dead)
    g_enc, g_dec = torch.autograd.grad(aux, [sae.W_enc, sae.W_dec])
    touched_enc = g_enc.abs().sum(0) > 0                              # [d_sae]
    touched_dec = g_dec.abs().sum(1) > 0
    assert touched_enc.any() and touched_dec.any()
    assert not (touched_enc & ~dead).any() and not (touched_dec & ~dead).any()


def test_auxk_rebuilds_the_residual_from_the_aux_k_largest_dead_latents():
    sae = _with_bias(tiny_sae("topk", D_IN, D_SAE, k=K, aux_k=5))
    h = synthetic_acts(60)
    dead = torch.arange(D_SAE) % 2 == 0                               # 64 dead, aux_k 5
    with torch.no_grad():
        pre = _pre(sae, h)
        residual = h - sae(h)[0]
        top = pre.masked_fill(~dead, float("-inf")).topk(5, dim=1)
        r_hat = torch.zeros_like(h)
        for j in range(5):                                            # sum of the 5 chosen decoder rows
            r_hat += F.relu(top.values[:, j:j + 1]) * sae.W_dec[top.indices[:, j]]
        expected = ((residual - r_hat) ** 2).sum() / ((residual - residual.mean(0)) ** 2).sum()
    assert float(sae.auxk(h, pre, residual, dead).detach()) == pytest.approx(float(expected), rel=1e-5)


def test_batchtopk_training_keeps_only_positive_selected_activations():
    """With fewer positive pre-activations than batch * k, the selection's negatives stay out."""
    sae = _with_bias(tiny_sae("batchtopk", D_IN, D_SAE, k=K)).train()
    h = synthetic_acts(64)
    with torch.no_grad():
        sae.b_enc.fill_(-float(_pre(sae, h).quantile(0.98)))          # ~2% positive: fewer than k per input
        pre = _pre(sae, h)
        kth = pre.flatten().topk(64 * K).values[-1]
        f = pre * ((pre >= kth) & (pre > 0))
    assert (f > 0).sum() < 64 * K                                     # the case: too few positives
    _, _, stats = sae.loss(h, 1.0, torch.zeros(D_SAE, dtype=torch.bool))
    assert stats["l0"] == pytest.approx(float((f > 0).sum(1).float().mean()))
    assert stats["mse"] == pytest.approx(float(normalized_mse(h, f @ sae.W_dec.detach() + sae.b_dec.detach(), 1.0)), rel=1e-5)


def test_resampling_draws_inputs_by_squared_loss_and_scales_to_the_alive_encoder():
    """Three inputs with losses 1, 2, 3 (the SAE reconstructs nothing): 600 dead features draw them
    with probabilities 1/14, 4/14, 9/14 (~ loss squared; ~ loss would give 1/6, 2/6, 3/6). The new
    encoder columns get enc_scale x the alive columns' mean norm."""
    d, n_dead, n_alive = 8, 600, 40
    sae = tiny_sae("relu", d, n_dead + n_alive)
    dead = torch.arange(n_dead + n_alive) < n_dead
    with torch.no_grad():
        sae.W_enc.zero_()
        sae.W_enc[:, ~dead] = 5.0 / d ** 0.5                          # alive columns of norm 5
        sae.b_enc.fill_(-100.0)                                       # nothing fires: h_hat = b_dec = 0
    h = torch.zeros(3, d)
    h[0, 0], h[1, 1], h[2, 2] = 1.0, 2 ** 0.5, 3 ** 0.5               # squared errors 1, 2, 3
    opt = torch.optim.Adam(sae.parameters())
    n = training.resample_dead_(sae, opt, h, dead, torch.Generator().manual_seed(0), enc_scale=0.2)
    assert n == n_dead
    picked = sae.W_dec[:n_dead, :3].abs().argmax(1)                   # which input each row came from
    share = torch.bincount(picked, minlength=3).float() / n_dead
    assert share.tolist() == pytest.approx([1 / 14, 4 / 14, 9 / 14], abs=0.06)
    torch.testing.assert_close(sae.W_enc[:, :n_dead].norm(dim=0), torch.full((n_dead,), 0.2 * 5.0))


def test_a_block_of_dead_latents_revives_under_auxk(monkeypatch):
    """Latents 0..15 of 48 start with encoder columns 100x too small: never in the top k, so only AuxK
    (once the training loop counts them dead) gives them a gradient. Measured: 16 of 16 revive; 4
    without AuxK (aux_coeff 0) or when nothing is ever counted dead."""
    build = training.build_sae

    def build_with_dead_block(cfg, generator=None):
        sae = build(cfg, generator=generator)
        with torch.no_grad():
            sae.W_enc[:, :16] *= 0.01
        return sae
    monkeypatch.setattr(training, "build_sae", build_with_dead_block)
    acts = synthetic_acts(4000)
    cfg = tiny_sae("topk", D_IN, 48, k=4, aux_k=32, aux_coeff=1.0).cfg
    start = build_with_dead_block(cfg, torch.Generator().manual_seed(0))
    assert (start.encode(acts[:1000])[:, :16] > 0).sum() == 0
    sae, info = train(cfg, acts, tiny_train_config(steps=150, dead_window=1024, lr=1e-2))
    revived = int(((sae.encode(acts[-1000:]) > 0).sum(0)[:16] > 0).sum())
    assert revived >= 12, f"only {revived} of 16 dead latents revived"
    assert info["dead_at_end_of_training"] <= 4


# ---- the loop's schedule and initialisation ------------------------------------------------------

def test_learning_rate_schedule():
    tc = tiny_train_config(warmup_steps=4, decay_fraction=0.25)
    factors = [lr_factor(s, 20, tc) for s in range(20)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[4:15] == pytest.approx([1.0] * 11)
    assert factors[15:] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])


def test_b_dec_starts_at_the_geometric_median():
    x = torch.cat([torch.zeros(90, D_IN), torch.full((10, D_IN), 50.0)])
    sae = tiny_sae("topk", D_IN, D_SAE, k=K)
    init_b_dec_(sae, x, "median")
    torch.testing.assert_close(sae.b_dec.detach(), geometric_median(x))
    assert sae.b_dec.norm() < 0.1 * x.mean(0).norm()


# ---- a trained threshold survives both layouts (the other architectures: test_architectures.py and
# test_saelens.py, where BatchTopK's threshold is still the untrained -1) ---------------------------

@pytest.mark.parametrize("arch", ["batchtopk", "matryoshka"])
def test_the_learned_threshold_round_trips(arch, tmp_path):
    sae = _with_bias(tiny_sae(arch, D_IN, D_SAE, k=K)).eval()
    with torch.no_grad():
        sae.threshold.fill_(0.15)
    h = synthetic_acts(100)
    save_sae(sae, tmp_path / "sae.pth")
    save_saelens(sae, tmp_path / "saelens")                          # written as SAELens's jumprelu
    for back in (load_sae(tmp_path / "sae.pth"), load_saelens(tmp_path / "saelens")):
        torch.testing.assert_close(back.encode(h), sae.encode(h))
        torch.testing.assert_close(back(h)[0], sae(h)[0])
