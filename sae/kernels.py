"""The fast paths of the SAE, kept apart from the readable maths in the architecture modules.

Each is tested equal to the plain autograd computation it replaces (tests/sae/test_kernels.py):

- `GatherPre` / `SparseDecode`: a k-sparse encoder gradient and decoder (TopK), touching only the k
  active columns of W_enc / rows of W_dec per input, via one sparse-dense product (`scatter_rows`)
  and one sampled dense-dense product (`sampled_dot`), never a [batch, k, d_in] gather.
- `ReluSAELoss`: the relu SAE's loss with a hand-written backward (five matmuls where autograd makes
  about ten; the [batch, d_sae] features dominate memory traffic at d_sae = 2048).
"""
import warnings

import torch
import torch.nn.functional as F

SPARSE_MAX_K = 64   # above this many active units per input, dense products are faster on CPU


def scatter_rows(indices: torch.Tensor, weights: torch.Tensor, x: torch.Tensor, n_rows: int) -> torch.Tensor:
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


def sampled_dot(indices: torch.Tensor, a: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
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


class GatherPre(torch.autograd.Function):
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
        g_W_enc_t = scatter_rows(indices, grad, h - b_dec, d_sae)    # [d_sae, d_in]
        g_b_enc = torch.zeros(d_sae, dtype=grad.dtype, device=grad.device).index_add_(
            0, indices.reshape(-1), grad.reshape(-1))
        return None, None, None, g_W_enc_t.t(), g_b_enc, -(W_enc @ g_b_enc)


class SparseDecode(torch.autograd.Function):
    """sum_j values[b, j] * W_dec[indices[b, j]] (no b_dec); reads and updates only those rows."""

    @staticmethod
    def forward(ctx, values, indices, W_dec):
        ctx.save_for_backward(values, indices, W_dec)
        return F.embedding_bag(indices, W_dec, per_sample_weights=values, mode="sum")

    @staticmethod
    def backward(ctx, grad):                                          # [batch, d_in]
        values, indices, W_dec = ctx.saved_tensors
        g_values = sampled_dot(indices, grad, W_dec)                 # [batch, k]
        g_W_dec = scatter_rows(indices, values, grad, W_dec.shape[0])          # [d_sae, d_in]
        return g_values, None, g_W_dec


class ReluSAELoss(torch.autograd.Function):
    """The relu SAE's loss, ||h - h_hat||^2 / var + l1 * sum_i f_i ||W_dec_i|| (batch means), with a
    hand-written backward: the five matmuls and four passes over the [batch, d_sae] features, where
    autograd makes about ten (the features dominate memory traffic at d_sae = 2048)."""

    @staticmethod
    def forward(ctx, h, W_enc, b_enc, W_dec, b_dec, var, l1):
        batch = h.shape[0]
        x = h - b_dec                                                 # [batch, d_in]
        f = torch.addmm(b_enc, x, W_enc).relu_()                      # [batch, d_sae]
        err = torch.addmm(b_dec, f, W_dec).sub_(h)                    # h_hat - h, [batch, d_in]
        norms = W_dec.norm(dim=1)                                     # [d_sae]
        mse = err.pow(2).sum() / (batch * var)
        l1_term = (f @ norms).sum() / batch
        active = f > 0                                                # [batch, d_sae]
        ctx.save_for_backward(x, f, err, active, W_enc, W_dec, norms)
        ctx.var, ctx.l1 = var, l1
        ctx.mark_non_differentiable(active)
        return mse + l1 * l1_term, mse.detach(), l1_term.detach(), active

    @staticmethod
    def backward(ctx, grad_loss, _g_mse, _g_l1, _g_active):
        x, f, err, active, W_enc, W_dec, norms = ctx.saved_tensors
        batch = x.shape[0]
        g = err * (2 * grad_loss / (batch * ctx.var))                 # d loss / d h_hat, [batch, d_in]
        c = ctx.l1 * grad_loss / batch
        g_W_dec = f.t() @ g                                           # [d_sae, d_in]
        g_W_dec += (c * f.sum(0) / norms.clamp_min(1e-12)).unsqueeze(1) * W_dec   # through ||W_dec_i||
        g_pre = torch.addmm((c * norms).expand(batch, -1), g, W_dec.t())          # d loss / d f
        g_pre.mul_(active)                                            # through the ReLU
        g_W_enc = x.t() @ g_pre                                       # [d_in, d_sae]
        g_b_enc = g_pre.sum(0)
        g_b_dec = g.sum(0) - W_enc @ g_b_enc
        return None, g_W_enc, g_b_enc, g_W_dec, g_b_dec, None, None
