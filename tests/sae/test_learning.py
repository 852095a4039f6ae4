"""SAE training learns, never on the held-out rows, and JumpReLU's threshold gets the gradient of its
paper: each checked against a hand computation or an invariant, not the code's own formula."""
import pytest
import torch

from common.io import PipelineError
from sae.jumprelu import _Step
from sae.registry import ARCHITECTURES, build_sae
from sae.training import split_activations, train
from tests.helpers import synthetic_acts, tiny_sae, tiny_sae_config, tiny_train_config

D_IN, D_SAE = 64, 128


def fvu(sae, acts: torch.Tensor) -> float:
    """Fraction of variance unexplained, computed here from the SAE's reconstruction."""
    with torch.no_grad():
        h_hat, _ = sae(acts)                                              # [n, d_in]
    return float(((acts - h_hat) ** 2).sum() / ((acts - acts.mean(0)) ** 2).sum())


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_training_lowers_the_loss_and_the_held_out_error(arch):
    acts = synthetic_acts()                                               # [2000, 64]; the last 200 held out
    held_out = acts[split_activations(acts, 200)[1]]
    losses, mses = [], []
    sae, info = train(tiny_sae_config(arch, D_IN, D_SAE), acts, tiny_train_config(steps=60, n_eval=200),
                      on_step=lambda step, total, stats: (losses.append(stats["loss"]), mses.append(stats["mse"])))
    assert info["steps"] == 60 and len(losses) == 60
    # the whole loss falls; its reconstruction term (the batch FVU) at least halves (measured: TopK
    # 0.73 -> 0.16, JumpReLU 0.72 -> 0.08; TopK's AuxK term grows as features die, so its total falls less)
    assert sum(losses[-5:]) < 0.8 * sum(losses[:5]), losses
    assert sum(mses[-5:]) < 0.5 * sum(mses[:5]), mses
    # the untrained SAE of the same seed (the one training started from, before its data-dependent init)
    untrained = build_sae(tiny_sae_config(arch, D_IN, D_SAE), generator=torch.Generator().manual_seed(0))
    assert fvu(sae, held_out) < 0.5 * min(1.0, fvu(untrained, held_out))


def test_split_holds_out_the_last_rows_at_most_a_fifth():
    acts = torch.arange(100.0)[:, None]
    train_rows, held = split_activations(acts, 10)
    assert acts[held].flatten().tolist() == list(range(90, 100)) and acts[train_rows].flatten().tolist() == list(range(90))
    train_rows, held = split_activations(acts, 60)                        # capped at a fifth
    assert acts[held].flatten().tolist() == list(range(80, 100)) and train_rows.stop == 80
    with pytest.raises(PipelineError, match="too few"):
        split_activations(acts[:0], 10)


@pytest.mark.parametrize("arch", ["relu", "topk", "jumprelu"])
def test_the_held_out_rows_are_never_trained_on(arch):
    """Huge values in the held-out rows would wreck any statistic (variance, b_dec's median, resampling
    scores) or batch that touched them: the trained weights must be the same to the bit."""
    acts = synthetic_acts()
    poisoned = acts.clone()
    poisoned[-200:] = 1e9                                                 # exactly the held-out rows (n_eval = 200)
    tc = tiny_train_config(steps=30, n_eval=200, resample_at=(0.5,), dead_window=64)
    a, info = train(tiny_sae_config(arch, D_IN, D_SAE), acts, tc)
    b, _ = train(tiny_sae_config(arch, D_IN, D_SAE), poisoned, tc)
    assert info["n_train"] == 1800 and info["n_eval"] == 200
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    # the control: poison one training row and the weights do change
    poisoned_train = acts.clone()
    poisoned_train[0] = 1e3
    c, _ = train(tiny_sae_config(arch, D_IN, D_SAE), poisoned_train, tc)
    assert not torch.equal(a.W_dec, c.W_dec)


# Pseudo-derivatives of JumpReLU (Rajamanoharan et al. 2024, eqs. 11-12) with the rectangle kernel
# K(u) = 1 if |u| < 1/2: d/dtheta [pre * H(pre - theta)] = -(theta / eps) K((pre - theta) / eps) and
# d/dtheta H(pre - theta) = -(1 / eps) K((pre - theta) / eps). A hand example with eps = 0.2 (window
# |pre - theta| < 0.1) and thresholds (0.5, 1.0, 2.0):
EPS = 0.2
THETA = [0.5, 1.0, 2.0]
PRE = [[0.45, 1.50, 2.05],       # near, above, near
       [0.70, 0.95, 1.00],       # above, near, below
       [0.58, 1.08, 2.50],       # near, near, above
       [0.10, -3.0, 1.95]]       # below, below, near
GRAD = [[1.0, 2.0, -1.0],        # upstream gradient dL/d(output) for each entry
        [3.0, -0.5, 4.0],
        [-2.0, 1.5, 0.5],
        [0.25, 7.0, 2.0]]
# by hand: the near entries of each column and their upstream gradients
#   column 0: rows 0 (|0.45 - 0.5| = 0.05) and 2 (0.08): 1.0 - 2.0 = -1.0
#   column 1: rows 1 (0.05) and 2 (0.08): -0.5 + 1.5 = 1.0
#   column 2: rows 0 (0.05) and 3 (0.05): -1.0 + 2.0 = 1.0
NEAR_GRAD_SUM = [-1.0, 1.0, 1.0]


def _jumprelu(theta):
    sae = tiny_sae("jumprelu", d_in=4, d_sae=3, bandwidth=EPS)
    with torch.no_grad():
        sae.log_threshold.copy_(torch.tensor(theta, dtype=torch.float64).log().float())
    return sae


def test_jumprelu_threshold_gradient_is_the_pseudo_derivative():
    sae = _jumprelu(THETA)
    theta = sae.threshold.detach()
    pre = torch.tensor(PRE, requires_grad=True)
    out = sae.activate(pre)                                               # [4, 3]
    torch.testing.assert_close(out.detach(), torch.tensor([[0.0, 1.5, 2.05], [0.7, 0.0, 0.0], [0.58, 1.08, 2.5], [0.0, 0.0, 0.0]]))
    (out * torch.tensor(GRAD)).sum().backward()
    expected_theta = [-(t / EPS) * s for t, s in zip(theta.tolist(), NEAR_GRAD_SUM)]
    # the parameter is log(theta): the chain rule multiplies by theta
    assert sae.log_threshold.grad.tolist() == pytest.approx([g * t for g, t in zip(expected_theta, theta.tolist())],
                                                            rel=1e-5)
    # the activation passes the gradient straight through where it is on, nowhere else
    on = [[0, 1, 1], [1, 0, 0], [1, 1, 1], [0, 0, 0]]
    torch.testing.assert_close(pre.grad, torch.tensor(GRAD) * torch.tensor(on, dtype=torch.float32))


def test_step_threshold_gradient_is_the_pseudo_derivative():
    theta = torch.tensor(THETA, requires_grad=True)
    pre = torch.tensor(PRE, requires_grad=True)
    step = _Step.apply(pre, theta, EPS)
    assert step.tolist() == [[0, 1, 1], [1, 0, 0], [1, 1, 1], [0, 0, 0]]
    (step * torch.tensor(GRAD)).sum().backward()
    assert theta.grad.tolist() == pytest.approx([-(1 / EPS) * s for s in NEAR_GRAD_SUM], rel=1e-6)
    assert pre.grad is None or not pre.grad.any()                        # the L0 term does not move pre
