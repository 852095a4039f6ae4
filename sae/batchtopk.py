"""`batchtopk`: the BatchTopK SAE (Bussmann et al. 2024).

TopK keeps exactly k latents per input; BatchTopK keeps the batch * k largest pre-activations of the
whole batch, so an input with more going on gets more latents (k on average). At inference one
global threshold replaces the batch: f = pre * (pre > threshold), the threshold being the running
mean of the smallest activation kept in each training batch (a buffer, so it travels in the file).
Dead latents get TopK's AuxK loss. Under torchrun the batch of the selection is each process's slice.

Its inference is a JumpReLU with one threshold for every latent, so the SAELens layout writes it as
SAELens's "jumprelu" (read back, it is a jumprelu SAE that encodes identically).
"""
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from sae.base import register
from sae.losses import normalized_mse
from sae.topk import TopKConfig, TopKSAE


@dataclass
class BatchTopKConfig(TopKConfig):
    architecture: str = "batchtopk"
    k: int = field(default=16, metadata={"help": "active features per input (topk: exactly; batchtopk, matryoshka: on average)"})
    aux_coeff: float = field(default=1 / 32, metadata={"help": "weight of the AuxK loss"})
    threshold_momentum: float = field(default=0.99, metadata={"help": "batchtopk: momentum of the inference threshold's running mean"})

    def __post_init__(self):
        super().__post_init__()
        if self.rescale_acts_by_decoder_norm:
            raise ValueError("rescale_acts_by_decoder_norm: a topk / ortsae setting (batch top-k ranks pre itself)")
        if not 0 <= self.threshold_momentum < 1:
            raise ValueError(f"threshold_momentum = {self.threshold_momentum}: expected 0 <= m < 1")


@register
class BatchTopKSAE(TopKSAE):
    config_class = BatchTopKConfig
    # measured on 300k fresh activations at 2048 latents (benchmarks/RESEARCH10.md): lr 2e-3 beats 1e-3
    RECIPE = dict(lr=2e-3, batch_size=512, steps=1500, dead_window=5_000, resample_at=(), sparsity_warmup_steps=0)
    SAELENS_ARCHITECTURE = "jumprelu"
    SAELENS_READS = False           # SAELens's "jumprelu" folders load as this project's jumprelu

    def __init__(self, cfg, generator=None):
        super().__init__(cfg, generator)
        self.register_buffer("threshold", torch.tensor(-1.0))        # < 0 until trained: per-input top-k

    def select(self, pre: torch.Tensor) -> torch.Tensor:
        """bool [batch, d_sae]: the kept entries of pre-activations [batch, d_sae] (before the ReLU)."""
        if self.training:
            flat = pre.reshape(-1)
            _, idx = flat.topk(min(pre.shape[0] * self.cfg.k, flat.numel()), sorted=False)
            return torch.zeros_like(flat, dtype=torch.bool).scatter_(0, idx, True).view_as(pre)
        if self.threshold < 0:
            _, idx = pre.topk(self.cfg.k, dim=-1, sorted=False)
            return torch.zeros_like(pre, dtype=torch.bool).scatter_(-1, idx, True)
        return pre > self.threshold

    def activate(self, pre):
        return F.relu(pre) * self.select(pre)

    def prefix_losses(self, h, f, var):
        """Reconstruction terms beyond the whole dictionary's (none here; Matryoshka adds its prefixes')."""
        return 0.0

    def loss(self, h, var, dead, sparsity_scale=1.0):
        pre = self.pre_acts(h)                                        # [batch, d_sae]
        keep = self.select(pre.detach()) & (pre.detach() > 0)
        f = pre * keep                                                # [batch, d_sae]
        h_hat = self.decode(f)                                        # [batch, d_in], decoded once
        mse = normalized_mse(h, h_hat, var)
        aux = self.auxk(h, pre.detach(), (h - h_hat).detach(), dead, var)
        if self.training and keep.any():
            with torch.no_grad():                                     # the inference threshold's running mean
                smallest = pre.detach()[keep].min()
                m = self.cfg.threshold_momentum
                self.threshold.copy_(smallest if self.threshold < 0 else m * self.threshold + (1 - m) * smallest)
        return (mse + self.prefix_losses(h, f, var) + self.cfg.aux_coeff * aux, keep.any(0),
                {"mse": float(mse.detach()), "aux": float(aux.detach()),
                 "l0": float(keep.sum(1).float().mean())})

    def saelens_extras(self):
        t = float(self.threshold) if self.threshold >= 0 else 0.0
        return {}, {"threshold": torch.full((self.cfg.d_sae,), t)}
