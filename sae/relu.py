"""`relu`: the L1 SAE of Towards Monosemanticity (Bricken et al. 2023), the paper's recipe.

act = ReLU; loss = ||h - h_hat||^2 / var(h) + l1_coeff * sum_i f_i ||W_dec_i|| (batch means), the
penalty weighted by decoder norms (Anthropic's April 2024 update) so that it cannot be dodged by
shrinking f and growing W_dec. Dead features are resampled (sae.training.resample_dead_) at the
fractions of training in the recipe. The loss and its backward are one fused kernel
(sae.kernels.ReluSAELoss), sparse over the active features once they are sparse, tested equal to
autograd on both paths.
"""
from dataclasses import dataclass, field

import torch.nn.functional as F

from sae import kernels
from sae.base import SAE, SAEConfig, register


@dataclass
class ReluConfig(SAEConfig):
    architecture: str = "relu"
    l1_coeff: float = field(default=0.03, metadata={"help": "weight of the decoder-norm-weighted L1 penalty"})


@register
class ReluSAE(SAE):
    config_class = ReluConfig
    # a sparse L1 recipe, measured at 2048 latents on 300k fresh activations (benchmarks/RESEARCH10.md):
    # L0 ~14, FVU ~0.05. The earlier l1_coeff 0.01 for 300 steps fired ~160 features per input, and
    # 0.05 for 600 steps reached L0 10 at FVU 0.11: the L1 coefficient needs its warm-up and the steps.
    RECIPE = dict(lr=1e-3, batch_size=512, steps=1500, dead_window=50_000, resample_at=(0.1, 0.2, 0.3, 0.4),
                  sparsity_warmup_steps=300)
    sparsity_name = "l1_coeff"
    SAELENS_ARCHITECTURE = "standard"

    def activate(self, pre):
        return F.relu(pre)

    def loss(self, h, var, dead, sparsity_scale=1.0):
        loss, mse, l1, fired, n_active = kernels.ReluSAELoss.apply(h, self.W_enc, self.b_enc, self.W_dec, self.b_dec,
                                                                   var, self.cfg.l1_coeff * sparsity_scale)
        return loss, fired, {"mse": float(mse.detach()), "l0": float(n_active) / len(h), "l1": float(l1.detach())}
