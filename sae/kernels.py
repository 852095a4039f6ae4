"""The fast paths of the SAE, kept apart from the readable maths in the architecture modules.

Each is tested equal to the plain autograd computation it replaces (tests/sae/test_kernels.py):

- `GatherPre` / `SparseDecode`: a k-sparse encoder gradient and decoder (TopK), touching only the k
  active columns of W_enc / rows of W_dec per input, via one sparse-dense product (`scatter_rows`)
  and one sampled dense-dense product (`sampled_dot`), never a [batch, k, d_in] gather.
- `ReluSAELoss`: the relu SAE's loss with a hand-written backward: five matmuls where autograd makes
  about ten while the features are dense; once they are sparse (the L1 warm-up done), only the
  encoder's forward stays dense and the decoder, the L1 term and every gradient touch the active
  entries alone (`RELU_SPARSE_MAX_DENSITY`).
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


# Density of active features (share of the [batch, d_sae] entries > 0) up to which ReluSAELoss runs
# sparse. Measured with benchmarks/bench_sae.py's density sweep (512 -> 2048, batch 512, the whole
# training step, both paths alternating in one process; this 2-core machine under heavy load):
# sparse/dense samples/s 1.19x at density 0.71% (the paper's L0 ~15), 1.11x at 2%, 0.63x at 5%, 10%
# and 20%: the crossing lies near 2.7%.
RELU_SPARSE_MAX_DENSITY = 0.025


def active_csr(f: torch.Tensor):
    """The positive entries of f [batch, d_sae] in row-major order: (rows, cols, values [nnz], crow
    [batch + 1], the CSR row pointers)."""
    flat = f.view(-1).nonzero().squeeze(1)                            # row-major: by row, then column
    rows, cols = flat.div(f.shape[1], rounding_mode="floor"), flat.remainder(f.shape[1])
    crow = torch.zeros(len(f) + 1, dtype=torch.long, device=f.device)
    crow[1:] = torch.bincount(rows, minlength=len(f)).cumsum(0)
    return rows, cols, f.view(-1).index_select(0, flat), crow          # (f[rows, cols] is ~10x slower)


def _csr(crow, cols, values, shape):
    with warnings.catch_warnings():   # "sparse CSR support is in beta": the products are tested
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols, values, shape, check_invariants=False)


class ReluSAELoss(torch.autograd.Function):
    """The relu SAE's loss, ||h - h_hat||^2 / var + l1 * sum_i f_i ||W_dec_i|| (batch means), with a
    hand-written backward. Returns (loss, mse, l1 term, fired [d_sae] bool, active count).

    The encoder's forward is always the dense product (every pre-activation is needed for the
    ReLU). Then, by the measured density of the batch's features:
    - dense (> RELU_SPARSE_MAX_DENSITY, early in the L1 warm-up): five matmuls and four passes over
      the [batch, d_sae] features, where autograd makes about ten;
    - sparse: the decoder forward (embedding_bag), the L1 term and every backward product touch only
      the active entries (CSR): d loss / d f at them by one sampled product (SDDMM), the gradients of
      W_dec and W_enc by two sparse-dense products sharing the transposed pattern."""

    @staticmethod
    def forward(ctx, h, W_enc, b_enc, W_dec, b_dec, var, l1):
        batch = h.shape[0]
        x = h - b_dec                                                 # [batch, d_in]
        f = torch.addmm(b_enc, x, W_enc).relu_()                      # [batch, d_sae]
        norms = W_dec.norm(dim=1)                                     # [d_sae]
        active = f > 0                                                # [batch, d_sae]
        n_active = active.sum()
        fired = active.any(0)
        ctx.var, ctx.l1 = var, l1
        ctx.sparse = int(n_active) <= RELU_SPARSE_MAX_DENSITY * f.numel()
        if ctx.sparse:
            rows, cols, values, crow = active_csr(f)                  # [nnz] x3, [batch + 1]
            err = F.embedding_bag(cols, W_dec, crow[:-1], per_sample_weights=values, mode="sum")
            err.add_(b_dec).sub_(h)                                   # h_hat - h, [batch, d_in]
            l1_term = (values * norms[cols]).sum() / batch
            ctx.save_for_backward(x, rows, cols, values, crow, err, W_enc, W_dec, norms)
        else:
            err = torch.addmm(b_dec, f, W_dec).sub_(h)                # h_hat - h, [batch, d_in]
            l1_term = (f @ norms).sum() / batch
            ctx.save_for_backward(x, f, err, active, W_enc, W_dec, norms)
        mse = err.pow(2).sum() / (batch * var)
        ctx.mark_non_differentiable(fired, n_active)
        return mse + l1 * l1_term, mse.detach(), l1_term.detach(), fired, n_active

    @staticmethod
    def backward(ctx, grad_loss, _g_mse, _g_l1, _g_fired, _g_n):
        if ctx.sparse:
            return ReluSAELoss._sparse_backward(ctx, grad_loss)
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

    @staticmethod
    def _sparse_backward(ctx, grad_loss):
        x, rows, cols, values, crow, err, W_enc, W_dec, norms = ctx.saved_tensors
        batch, d_sae = x.shape[0], W_enc.shape[1]
        g = err * (2 * grad_loss / (batch * ctx.var))                 # d loss / d h_hat, [batch, d_in]
        c = ctx.l1 * grad_loss / batch
        pattern = _csr(crow, cols, values, (batch, d_sae))
        g_pre = torch.sparse.sampled_addmm(pattern, g, W_dec.t(), beta=0.0).values()   # [nnz], g . W_dec_i
        g_pre += c * norms[cols]                                      # d loss / d pre at the active entries
        order = cols.argsort(stable=True)                             # the transposed pattern, [d_sae, batch]
        t_crow = torch.zeros(d_sae + 1, dtype=torch.long, device=x.device)
        t_crow[1:] = torch.bincount(cols, minlength=d_sae).cumsum(0)
        t_rows = rows[order]
        g_W_dec = torch.sparse.mm(_csr(t_crow, t_rows, values[order], (d_sae, batch)), g)       # [d_sae, d_in]
        col_sums = torch.zeros(d_sae, dtype=values.dtype, device=x.device).index_add_(0, cols, values)
        g_W_dec += (c * col_sums / norms.clamp_min(1e-12)).unsqueeze(1) * W_dec   # through ||W_dec_i||
        g_W_enc_t = torch.sparse.mm(_csr(t_crow, t_rows, g_pre[order], (d_sae, batch)), x)     # [d_sae, d_in]
        g_b_enc = torch.zeros(d_sae, dtype=g_pre.dtype, device=x.device).index_add_(0, cols, g_pre)
        g_b_dec = g.sum(0) - W_enc @ g_b_enc
        return None, g_W_enc_t.t(), g_b_enc, g_W_dec, g_b_dec, None, None
