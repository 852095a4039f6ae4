"""`gated`: the gated SAE (Rajamanoharan et al. 2024, DeepMind).

Two paths share W_enc: the gate decides which features fire, the magnitude path how strongly.
With pre = (h - b_dec) @ W_enc + b_enc the gate's pre-activation (b_enc is the gate bias):

    f = [pre > 0] * relu(exp(r_mag) * (pre - b_enc) + b_mag)        # [batch, d_sae]

loss = ||h - h_hat||^2 / var(h) + l1_coeff * sum_i relu(pre_i) ||W_dec_i|| + ||h - h_gate||^2 / var(h),
h_gate = relu(pre) @ W_dec + b_dec with the decoder frozen (the auxiliary term that trains the gate,
which the step function itself cannot). Dead features are resampled like relu's, their r_mag and
b_mag reset. This is the layout SAELens ("gated": W_enc, b_gate, r_mag, b_mag, W_dec, b_dec) and
dictionary_learning (GatedAutoEncoder) save, so theirs join a run (import_sae.py). Its recipe is
relu's, not measured for this architecture.
"""
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from sae.base import SAE, SAEConfig, register
from sae.losses import normalized_mse


@dataclass
class GatedConfig(SAEConfig):
    architecture: str = "gated"
    l1_coeff: float = field(default=0.03, metadata={"help": "weight of the decoder-norm-weighted L1 penalty"})


@register
class GatedSAE(SAE):
    config_class = GatedConfig
    RECIPE = dict(lr=1e-3, batch_size=512, steps=1500, dead_window=50_000, resample_at=(0.1, 0.2, 0.3, 0.4),
                  sparsity_warmup_steps=300)   # relu's (sae/relu.py), not measured for gated
    sparsity_name = "l1_coeff"
    SAELENS_ARCHITECTURE = "gated"
    SAELENS_B_ENC = "b_gate"                   # SAELens's name for the gate bias (it has no b_enc)

    def __init__(self, cfg, generator=None):
        super().__init__(cfg, generator)
        self.r_mag = nn.Parameter(torch.zeros(cfg.d_sae))             # [d_sae]
        self.b_mag = nn.Parameter(torch.zeros(cfg.d_sae))             # [d_sae]

    def activate(self, pre):
        magnitude = F.relu(self.r_mag.exp() * (pre - self.b_enc) + self.b_mag)
        return (pre > 0).to(pre.dtype) * magnitude

    def loss(self, h, var, dead, sparsity_scale=1.0):
        pre = self.pre_acts(h)                                        # [batch, d_sae]
        f = self.activate(pre)
        mse = normalized_mse(h, self.decode(f), var)
        gate = F.relu(pre)
        l1 = (gate * self.W_dec.norm(dim=1)).sum(1).mean()
        aux = normalized_mse(h, gate @ self.W_dec.detach() + self.b_dec.detach(), var)
        active = f > 0
        return (mse + self.cfg.l1_coeff * sparsity_scale * l1 + aux, active.any(0),
                {"mse": float(mse.detach()), "l0": float(active.sum(1).float().mean()), "l1": float(l1.detach())})

    @torch.no_grad()
    def reset_features_(self, idx):
        self.r_mag[idx] = 0.0
        self.b_mag[idx] = 0.0

    def saelens_extras(self):
        return {}, {"r_mag": self.r_mag.detach(), "b_mag": self.b_mag.detach()}

    @classmethod
    def from_saelens_extras(cls, cfg, tensors):
        b_mag = tensors["b_mag"]
        if cfg.get("apply_b_dec_to_input", True) is False:
            # SAELens's magnitude path h @ (W_enc * exp(r_mag)) + b_mag; here (h - b_dec) @ ...: add back
            b_mag = b_mag + tensors["r_mag"].exp() * (tensors["b_dec"] @ tensors["W_enc"])
        return {}, {"r_mag": tensors["r_mag"], "b_mag": b_mag}

    @classmethod
    def saelens_extra_tensor_shapes(cls, d_sae):
        return {"r_mag": (d_sae,), "b_mag": (d_sae,)}
