"""`jumprelu`: the JumpReLU SAE (Rajamanoharan et al. 2024, DeepMind).

act = pre * H(pre - theta) with a learned threshold theta = exp(log_threshold) per feature; loss =
||h - h_hat||^2 / var(h) + l0_coeff * L0, the threshold trained through straight-through estimators
with a rectangle kernel of width `bandwidth` (in activation units). Dead features are resampled like
relu's, their threshold reset to `threshold_init`.
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from sae.base import SAE, SAEConfig, register
from sae.losses import normalized_mse


@dataclass
class JumpReLUConfig(SAEConfig):
    architecture: str = "jumprelu"
    l0_coeff: float = field(default=2e-3, metadata={"help": "weight of the L0 penalty"})
    bandwidth: float = field(default=0.05, metadata={"help": "width of the straight-through kernel (activation units)"})
    threshold_init: float = field(default=0.1, metadata={"help": "initial threshold"})

    def __post_init__(self):
        super().__post_init__()
        if not (self.bandwidth > 0 and self.threshold_init > 0):
            raise ValueError(f"bandwidth and threshold_init must be > 0 (got {self.bandwidth}, {self.threshold_init})")


class _JumpReLU(torch.autograd.Function):
    """pre * H(pre - theta); d/dtheta by the rectangle-kernel pseudo-derivative -(theta/eps) K((pre-theta)/eps)."""

    @staticmethod
    def forward(ctx, pre, theta, bandwidth):
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return pre * (pre > theta)

    @staticmethod
    def backward(ctx, grad):
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        near = ((pre - theta).abs() < eps / 2).to(grad.dtype)                   # [batch, d_sae]
        g_pre = grad * (pre > theta)
        g_theta = (-(theta / eps) * near * grad).sum(0)
        return g_pre, g_theta, None


class _Step(torch.autograd.Function):
    """H(pre - theta); no gradient to pre, -(1/eps) K((pre-theta)/eps) to theta."""

    @staticmethod
    def forward(ctx, pre, theta, bandwidth):
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        near = ((pre - theta).abs() < eps / 2).to(grad.dtype)
        return None, (-(1.0 / eps) * near * grad).sum(0), None


@register
class JumpReLUSAE(SAE):
    config_class = JumpReLUConfig
    RECIPE = dict(lr=1e-3, batch_size=1024, steps=300, dead_window=20_000, resample_at=(0.2, 0.4, 0.6), sparsity_warmup_steps=0)
    sparsity_name = "l0_coeff"
    # SAELens: f = relu(pre) * (pre > threshold); with threshold > 0, relu(pre) = pre where the mask is on
    SAELENS_ARCHITECTURE = "jumprelu"

    def saelens_extras(self):
        return {}, {"threshold": self.threshold.detach()}

    @classmethod
    def from_saelens_extras(cls, cfg, tensors):
        threshold = tensors["threshold"]
        if not (threshold > 0).all():
            raise ValueError("threshold must be > 0 (this project learns log_threshold)")
        return {}, {"log_threshold": threshold.log()}

    @classmethod
    def saelens_extra_tensor_shapes(cls, d_sae):
        return {"threshold": (d_sae,)}

    def __init__(self, cfg, generator=None):
        super().__init__(cfg, generator)
        # the log taken on the CPU in float32 (as always), even when the module is built on the meta device
        log_init = float(torch.tensor(cfg.threshold_init, device="cpu").log())
        self.log_threshold = nn.Parameter(torch.full((cfg.d_sae,), log_init))   # [d_sae]

    @property
    def threshold(self) -> torch.Tensor:
        return self.log_threshold.exp()                                # [d_sae]

    def activate(self, pre):
        return _JumpReLU.apply(pre, self.threshold, self.cfg.bandwidth)

    def loss(self, h, var, dead, sparsity_scale=1.0):
        pre = self.pre_acts(h)                                        # [batch, d_sae]
        f = self.activate(pre)
        mse = normalized_mse(h, self.decode(f), var)
        l0_soft = _Step.apply(pre, self.threshold, self.cfg.bandwidth).sum(1).mean()
        active = f > 0
        return (mse + self.cfg.l0_coeff * sparsity_scale * l0_soft, active.any(0),
                {"mse": float(mse.detach()), "l0": float(active.sum(1).float().mean())})

    @torch.no_grad()
    def reset_features_(self, idx):
        self.log_threshold[idx] = math.log(self.cfg.threshold_init)
