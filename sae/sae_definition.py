"""Sparse autoencoders over the MLP's harvested layer: three architectures, one module, one config.

All three share the affine maps (h is one activation vector [d_in], f the features [d_sae]):

    pre   = (h - b_dec) @ W_enc + b_enc          # [batch, d_sae]   b_dec is tied before the encoder
    f     = act(pre)                             # [batch, d_sae]   non-negative; "active" where f > 0
    h_hat = f @ W_dec + b_dec                    # [batch, d_in]    linear in f, so effects on the
                                                 #                  (linear) MLP head attribute to features

with the rows of W_dec [d_sae, d_in] kept at unit norm (`unit_norm_decoder_`, and the gradient
component parallel to each row removed before a step, `remove_parallel_grad_`). They differ in `act`
and in the sparsity term of the loss (the losses themselves live in `sae.training`):

- `relu` (Bricken et al. 2023, the paper's): act = ReLU;
  loss = ||h - h_hat||^2 / var(h) + l1_coeff * sum_i f_i * ||W_dec_i||.
- `topk` (Gao et al. 2024, OpenAI): act keeps the k largest pre-activations (then ReLU), so exactly
  L0 <= k; loss = ||h - h_hat||^2 / var(h) + aux_coeff * AuxK, where AuxK reconstructs the residual
  from the aux_k largest pre-activations of dead latents. Decoding touches only the k active
  rows of W_dec (`decode_sparse`) and the encoder's gradient only the k active columns (`encode_topk`),
  which is where its speed comes from.
- `jumprelu` (Rajamanoharan et al. 2024): act = pre * H(pre - theta) with a learned threshold
  theta = exp(log_threshold) per feature; loss = ||h - h_hat||^2 / var(h) + l0_coeff * L0, the
  threshold trained through straight-through estimators with a rectangle kernel of width `bandwidth`.

The file written by `save_sae` holds the config (with "architecture") and `load_sae` rebuilds the SAE
from it alone, in eval mode.
"""
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.io import PipelineError, atomic_torch_save, require_keys, safe_torch_load

ARCHITECTURES = ("relu", "topk", "jumprelu")
SAE_REMEDY = "re-run train_sae.py"


@dataclass
class SAEConfig:
    architecture: str = "relu"   # relu (L1, the paper's) | topk (OpenAI 2024) | jumprelu (DeepMind 2024)
    d_in: int = 512              # width of the harvested layer
    d_sae: int = 2048            # dictionary size (features)
    l1_coeff: float = 0.01       # relu: weight of the decoder-norm-weighted L1 penalty
    k: int = 16                  # topk: active features per input
    aux_k: int = 256             # topk: dead latents used by the AuxK loss
    aux_coeff: float = 0.25      # topk: weight of the AuxK loss (OpenAI's 1/32 revives too slowly in 300 steps)
    l0_coeff: float = 2e-3       # jumprelu: weight of the L0 penalty
    bandwidth: float = 0.05      # jumprelu: width of the straight-through rectangle kernel (activation units)
    threshold_init: float = 0.1  # jumprelu: initial threshold

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture {self.architecture!r}: expected one of {', '.join(ARCHITECTURES)}")
        if self.d_in < 1 or self.d_sae < 1:
            raise ValueError(f"d_in and d_sae must be >= 1 (got {self.d_in}, {self.d_sae})")
        if self.architecture == "topk" and not 1 <= self.k <= self.d_sae:
            raise ValueError(f"k = {self.k}: expected 1..d_sae ({self.d_sae})")


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


SPARSE_MAX_K = 64   # above this many active units per input, dense products are faster on CPU


def _scatter_rows(indices: torch.Tensor, weights: torch.Tensor, x: torch.Tensor, n_rows: int) -> torch.Tensor:
    """out[r] = sum over (b, j) with indices[b, j] == r of weights[b, j] * x[b]: [n_rows, d].
    One sparse-dense product: the gradient of a k-sparse layer costs batch*k*d, not batch*n_rows*d."""
    batch, k = indices.shape
    if k > SPARSE_MAX_K:
        dense = torch.zeros(batch, n_rows, dtype=x.dtype, device=x.device).scatter_add_(1, indices, weights)
        return dense.t() @ x
    cols = torch.arange(batch, device=x.device).repeat_interleave(k)
    s = torch.sparse_coo_tensor(torch.stack([indices.reshape(-1), cols]), weights.reshape(-1), (n_rows, batch),
                                check_invariants=False)
    return torch.sparse.mm(s, x)


def _sampled_dot(indices: torch.Tensor, a: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """out[b, j] = a[b] . W[indices[b, j]] [batch, k] (indices unique within a row), as one sampled
    dense-dense product (SDDMM): no [batch, k, d] gather, no [batch, n_rows] product."""
    batch, k = indices.shape
    sorted_idx, order = indices.sort(dim=1)                           # CSR wants sorted columns
    crow = torch.arange(0, batch * k + 1, k, device=a.device)
    with warnings.catch_warnings():   # "sparse CSR support is in beta": this one product is tested
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        pattern = torch.sparse_csr_tensor(crow, sorted_idx.reshape(-1), torch.zeros(batch * k, dtype=a.dtype, device=a.device),
                                          (batch, W.shape[0]), check_invariants=False)
    values = torch.sparse.sampled_addmm(pattern, a, W.t(), beta=0.0).values().view(batch, k)
    return torch.empty_like(values).scatter_(1, order, values)


class _GatherPre(torch.autograd.Function):
    """Pre-activations already computed without gradient at `indices` [batch, k]; backward sends
    their gradient to W_enc, b_enc and b_dec touching only those k columns per input."""

    @staticmethod
    def forward(ctx, values, indices, h, W_enc, b_enc, b_dec):
        ctx.save_for_backward(indices, h, W_enc, b_dec)
        return values.clone()

    @staticmethod
    def backward(ctx, grad):                                          # [batch, k]
        indices, h, W_enc, b_dec = ctx.saved_tensors
        d_sae = W_enc.shape[1]
        g_W_enc_t = _scatter_rows(indices, grad, h - b_dec, d_sae)    # [d_sae, d_in]
        g_b_enc = torch.zeros(d_sae, dtype=grad.dtype, device=grad.device).index_add_(
            0, indices.reshape(-1), grad.reshape(-1))
        return None, None, None, g_W_enc_t.t(), g_b_enc, -(W_enc @ g_b_enc)


class _SparseDecode(torch.autograd.Function):
    """sum_j values[b, j] * W_dec[indices[b, j]] (no b_dec); reads and updates only those rows."""

    @staticmethod
    def forward(ctx, values, indices, W_dec):
        ctx.save_for_backward(values, indices, W_dec)
        return F.embedding_bag(indices, W_dec, per_sample_weights=values, mode="sum")

    @staticmethod
    def backward(ctx, grad):                                          # [batch, d_in]
        values, indices, W_dec = ctx.saved_tensors
        g_values = _sampled_dot(indices, grad, W_dec)                 # [batch, k]
        g_W_dec = _scatter_rows(indices, values, grad, W_dec.shape[0])          # [d_sae, d_in]
        return g_values, None, g_W_dec


class SAE(nn.Module):
    def __init__(self, cfg: SAEConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        d_in, d_sae = cfg.d_in, cfg.d_sae
        W_dec = torch.randn(d_sae, d_in, generator=generator)
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(W_dec)                               # [d_sae, d_in], unit rows
        self.W_enc = nn.Parameter(W_dec.t().clone())                  # [d_in, d_sae], tied at init
        self.b_enc = nn.Parameter(torch.zeros(d_sae))                 # [d_sae]
        self.b_dec = nn.Parameter(torch.zeros(d_in))                  # [d_in]
        if cfg.architecture == "jumprelu":
            self.log_threshold = nn.Parameter(torch.full((d_sae,), float(torch.tensor(cfg.threshold_init).log())))

    # --- encoder ---------------------------------------------------------------------------------
    def pre_acts(self, h: torch.Tensor) -> torch.Tensor:
        return (h - self.b_dec) @ self.W_enc + self.b_enc             # [batch, d_sae]

    @property
    def threshold(self) -> torch.Tensor:
        return self.log_threshold.exp()                                # [d_sae]

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        arch = self.cfg.architecture
        if arch == "relu":
            return F.relu(pre)
        if arch == "topk":
            values, indices = pre.topk(self.cfg.k, dim=-1, sorted=False)   # [batch, k]
            return torch.zeros_like(pre).scatter_(-1, indices, F.relu(values))
        return _JumpReLU.apply(pre, self.threshold, self.cfg.bandwidth)

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        """[batch, d_in] -> features [batch, d_sae], non-negative."""
        return self.activate(self.pre_acts(h))

    def encode_topk(self, h: torch.Tensor):
        """topk only: (values [batch, k] >= 0, indices [batch, k], pre [batch, d_sae] without
        gradient). Gradients reach only the k selected encoder columns per input (`_GatherPre`)."""
        with torch.no_grad():
            pre = self.pre_acts(h)                                    # [batch, d_sae]
            values, indices = pre.topk(self.cfg.k, dim=-1, sorted=False)
        return F.relu(self.gather_pre(pre, indices, h)), indices, pre

    def gather_pre(self, pre: torch.Tensor, indices: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """pre[b, indices[b, j]] [batch, k], differentiable w.r.t. W_enc, b_enc, b_dec."""
        return _GatherPre.apply(pre.gather(1, indices), indices, h, self.W_enc, self.b_enc, self.b_dec)

    # --- decoder ---------------------------------------------------------------------------------
    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """features [batch, d_sae] -> reconstruction [batch, d_in] = f @ W_dec + b_dec."""
        return f @ self.W_dec + self.b_dec

    def decode_sparse(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Same as `decode` for a feature matrix holding `values` [batch, k] at `indices` [batch, k]
        and zeros elsewhere; reads (and back-propagates into) only those rows of W_dec."""
        return _SparseDecode.apply(values, indices, self.W_dec) + self.b_dec

    def forward(self, h: torch.Tensor):
        """[batch, d_in] -> (h_hat [batch, d_in], f [batch, d_sae])."""
        f = self.encode(h)
        return self.decode(f), f

    # --- decoder-norm invariants -----------------------------------------------------------------
    @torch.no_grad()
    def unit_norm_decoder_(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def remove_parallel_grad_(self) -> None:
        """Drop the part of W_dec's gradient along each (unit) row: a step then only rotates rows."""
        if self.W_dec.grad is not None:
            g, w = self.W_dec.grad, self.W_dec
            g -= (g * w).sum(1, keepdim=True) * w


def save_sae(sae: SAE, path: Path, metrics: dict | None = None, train_config: dict | None = None) -> None:
    """Write weights + config (+ the metrics it reached and how it was trained), atomically."""
    atomic_torch_save({
        "config": asdict(sae.cfg),
        "state_dict": {k: v.detach().cpu() for k, v in sae.state_dict().items()},
        "metrics": metrics or {},
        "train_config": train_config or {},
    }, path)


def sae_from_checkpoint(ckpt, path: Path) -> SAE:
    """Rebuild an SAE from a loaded checkpoint dict (as written by `save_sae`, or a training
    checkpoint holding the same keys); a mismatch -> PipelineError naming `path`."""
    require_keys(ckpt, ["config", "state_dict"], path, "SAE checkpoint", SAE_REMEDY)
    try:
        config = dict(ckpt["config"])
        known = {f.name for f in fields(SAEConfig)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}")
        sae = SAE(SAEConfig(**config))
        sae.load_state_dict(ckpt["state_dict"])
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        msg = " ".join(str(e).split())[:200]
        raise PipelineError(f"{path}: not an SAE checkpoint of this project ({msg}); {SAE_REMEDY}") from None
    return sae


def load_sae(path: Path, device="cpu") -> SAE:
    """Rebuild the SAE from its file alone, in eval mode."""
    ckpt = safe_torch_load(path, "SAE checkpoint", SAE_REMEDY)
    return sae_from_checkpoint(ckpt, path).to(device).eval()


def sae_metrics_of(path: Path) -> dict:
    """The metrics stored in an SAE file (empty dict if none)."""
    return safe_torch_load(path, "SAE checkpoint", SAE_REMEDY).get("metrics", {})
