"""`topk`: the TopK SAE (Gao et al. 2024, OpenAI), the default run's architecture.

act keeps the k largest pre-activations (then ReLU), so L0 <= k with no sparsity term; loss =
||h - h_hat||^2 / var(h) + aux_coeff * AuxK, where AuxK rebuilds the main reconstruction's residual
from the aux_k largest pre-activations of dead latents, so they get a gradient and revive. Training
is sparse: the encoder's gradient and the decoder touch only the k active columns / rows of each
input (sae.kernels.GatherPre / SparseDecode).
"""
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from sae.base import SAE, SAEConfig, register
from sae.losses import normalized_mse, residual_fvu


def fold_decoder_norms(W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor) -> dict:
    """SAELens's TopK with rescale_acts_by_decoder_norm computes f = topk(pre * n) and decodes
    (f / n) @ W_dec, n [d_sae] the decoder rows' norms. The same SAE with W_enc * n, b_enc * n and
    W_dec / n computes those f and that reconstruction with the plain TopK (SAELens's own
    `fold_W_dec_norm`); a row of norm 0 would divide by zero there too, so it is refused."""
    n = W_dec.norm(dim=1)                                             # [d_sae]
    if not bool((n > 0).all()):
        raise ValueError(f"W_dec row {int((n <= 0).nonzero()[0])} has norm 0: rescale_acts_by_decoder_norm divides by it")
    return {"W_enc": W_enc * n, "b_enc": b_enc * n, "W_dec": W_dec / n[:, None]}


@dataclass
class TopKConfig(SAEConfig):
    architecture: str = "topk"
    k: int = field(default=16, metadata={"help": "active features per input"})
    aux_k: int = field(default=256, metadata={"help": "dead latents used by the AuxK loss"})
    aux_coeff: float = field(default=0.25, metadata={"help": "weight of the AuxK loss"})   # OpenAI's 1/32 revives too slowly here
    # SAELens's choices, opt-in for comparison (no flags; benchmarks/bench_dictionaries.py --set topk:NAME=VALUE):
    # rank the top k by pre * ||W_dec_i|| (features keep the values relu(pre), so the reconstruction is SAELens's);
    # a no-op while the decoder rows are held at unit norm (sae.training.TrainConfig.unit_norm_decoder)
    rescale_acts_by_decoder_norm: bool = False
    # AuxK's squared error divided by: "residual" its own variance (OpenAI, an FVU of the residual) | "data" the
    # data's variance, as the main term, times min(n_dead / aux_k, 1) (SAELens: its raw MSE scale)
    aux_norm: str = "residual"

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.rescale_acts_by_decoder_norm, bool):
            raise ValueError(f"rescale_acts_by_decoder_norm = {self.rescale_acts_by_decoder_norm!r}: expected true or false")
        if self.aux_norm not in ("residual", "data"):
            raise ValueError(f"aux_norm = {self.aux_norm!r}: expected residual or data")
        if not 1 <= self.k <= self.d_sae:
            raise ValueError(f"k = {self.k}: expected 1..d_sae ({self.d_sae})")
        if self.aux_k < 1:
            raise ValueError(f"aux_k = {self.aux_k}: expected >= 1")


@register
class TopKSAE(SAE):
    config_class = TopKConfig
    # 1500 steps lift a 64-feature SAE from 45% to 65% monosemantic and interchange 89% -> 99%;
    # AuxK revives dead latents, resampling made it worse (README, "Measured figures")
    RECIPE = dict(lr=6e-3, batch_size=512, steps=1500, dead_window=5_000, resample_at=(), sparsity_warmup_steps=0)
    SAELENS_ARCHITECTURE = "topk"

    def saelens_extras(self):
        # SAELens ranks and scales by the norms where we only rank: the same active set and reconstruction
        return {"k": self.cfg.k, "rescale_acts_by_decoder_norm": self.cfg.rescale_acts_by_decoder_norm}, {}

    @classmethod
    def from_saelens_extras(cls, cfg, tensors):
        rescale = cfg.get("rescale_acts_by_decoder_norm", False)
        if not isinstance(rescale, bool):
            raise ValueError(f"rescale_acts_by_decoder_norm = {rescale!r}: expected true or false")
        if not rescale:
            return {"k": cfg["k"]}, {}
        return {"k": cfg["k"]}, fold_decoder_norms(tensors["W_enc"], tensors["b_enc"], tensors["W_dec"])

    def ranked(self, pre):
        """What the top k are chosen by: pre [batch, d_sae], or with rescale_acts_by_decoder_norm pre * ||W_dec_i||."""
        if not self.cfg.rescale_acts_by_decoder_norm:
            return pre
        return pre * self.W_dec.detach().norm(dim=1)

    def activate(self, pre):
        indices = self.ranked(pre).topk(self.cfg.k, dim=-1, sorted=False).indices   # [batch, k]
        return torch.zeros_like(pre).scatter_(-1, indices, F.relu(pre.gather(-1, indices)))

    def encode_sparse(self, h):
        """(values [batch, k] >= 0, indices [batch, k], pre [batch, d_sae] without gradient);
        gradients reach only the k selected encoder columns per input."""
        with torch.no_grad():
            pre = self.pre_acts(h)                                    # [batch, d_sae]
            _, indices = self.ranked(pre).topk(self.cfg.k, dim=-1, sorted=False)
        return F.relu(self.gather_pre(pre, indices, h)), indices, pre

    def auxk(self, h, pre, residual, dead, var=None):
        """AuxK loss: rebuild `residual` [batch, d_in] from the aux_k largest pre-activations
        (pre [batch, d_sae], no gradient) of the `dead` latents; gradients reach only those. Divided
        by the residual's variance, or with aux_norm "data" by `var` (the data's) x min(n_dead / aux_k, 1)."""
        n_dead = int(dead.sum())
        if n_dead == 0:
            return pre.new_zeros(())
        k = min(self.cfg.aux_k, n_dead)
        with torch.no_grad():
            _, indices = self.ranked(pre).masked_fill(~dead, float("-inf")).topk(k, dim=-1, sorted=False)   # [batch, k]
        values = F.relu(self.gather_pre(pre, indices, h))
        r_hat = self.decode_sparse(values, indices) - self.b_dec
        if self.cfg.aux_norm == "data":
            return normalized_mse(residual, r_hat, var) * min(n_dead / self.cfg.aux_k, 1.0)
        return residual_fvu(residual, r_hat)

    def loss(self, h, var, dead, sparsity_scale=1.0):
        values, indices, pre = self.encode_sparse(h)                  # [batch, k] x2, [batch, d_sae]
        h_hat = self.decode_sparse(values, indices)                   # [batch, d_in]
        mse = normalized_mse(h, h_hat, var)
        fired = torch.zeros(self.cfg.d_sae, dtype=torch.bool, device=h.device)
        fired[indices[values > 0]] = True
        aux = self.auxk(h, pre, (h - h_hat).detach(), dead, var)
        l0 = float((values > 0).sum(1).float().mean())
        return mse + self.cfg.aux_coeff * aux, fired, {"mse": float(mse.detach()), "aux": float(aux.detach()), "l0": l0}
