"""Everything the reports show, computed once from the run's models (no plotting here).

One pass over the fresh analysis inputs in chunks: each chunk's feature matrix f [chunk, d_sae] is
dense (an SAE's L0 can be anywhere from 10 to 500), and every per-feature statistic is a reduction
of it that is accumulated and then dropped (histogram counts, top-activating inputs, the mean hidden
vector where each feature fires, per-cell sums), so memory is one chunk plus the results.

The quantities drawn as link widths are exact, not fitted:
- neuron j -> feature i: the neuron's contribution to the feature's pre-activation,
  `(h_j - b_dec_j) * W_enc[j, i]` (the encoder is linear before its activation);
- feature i -> output: the feature's direct effect on the prediction, `f_i * (W_dec[i] @ w_head)`
  (the head is linear, so the spliced prediction is the sum of these plus a constant);
- input position p -> neuron j: mean |change of h_j| when position p of each input is replaced by
  the same position of another (random) input (resample ablation).
"""
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dataset.task import N_DIGITS, N_INPUTS, N_SLOTS, ground_truth
from sae.splice import CHUNK, iter_chunks

HIST_BINS = 20          # bins of each feature's activation histogram (0, max_act]
TOP_INPUTS = 8          # top-activating inputs stored per feature card
# inputs behind the input -> neuron links (10 resampled forward passes each): ~50 per (pointer
# combination, target) cell, a quarter of the cost of all 32768
N_RESAMPLE = 8192
INPUT_NAMES = ("c1[0]", "c1[1]", "c1[2]", "c1[3]", "p1", "c2[0]", "c2[1]", "c2[2]", "c2[3]", "p2")
N_COMBOS = N_SLOTS * N_SLOTS
SPARSE_SHARE = 0.05     # below this share of active entries the reductions run over the nonzeros


def pointer_combo(gt: dict) -> torch.Tensor:
    """p1 * 4 + p2 for each input [n]: the 16 pointer combinations."""
    return gt["p1"] * N_SLOTS + gt["p2"]


@dataclass
class FreshStats:
    """Reductions of the features over the fresh inputs (see module doc)."""
    n: int
    counts: torch.Tensor        # [d_sae] inputs each feature fires on
    hist: torch.Tensor          # [d_sae, HIST_BINS] counts of its activation where it fires, bins of (0, hist_max]
    hist_max: torch.Tensor      # [d_sae]
    top_val: torch.Tensor       # [d_sae, TOP_INPUTS] largest activations (0 where it fired on fewer inputs)
    top_idx: torch.Tensor       # [d_sae, TOP_INPUTS] their input indices (-1 where none)
    mean_h_firing: torch.Tensor  # [d_sae, d_hidden] mean hidden vector over the inputs where it fires
    h: torch.Tensor             # [n, d_hidden] hidden layer
    columns: dict               # feature id -> its activations where it fires (the features asked for)
    cell_counts: torch.Tensor   # [16, 10] inputs per (pointer combination, target)
    cell_h: torch.Tensor        # [16, 10, d_hidden] summed h per cell
    cell_f: torch.Tensor        # [16, 10, d_sae] summed f per cell
    combo_value: dict           # var ("a", "b") -> (mean f [16, 10, d_sae], counts [16, 10])


@torch.no_grad()
def fresh_stats(mlp, sae, x: torch.Tensor, hist_max: torch.Tensor, keep_columns=(),
                sparse: bool | None = None) -> FreshStats:
    """One chunked pass over the inputs x [n, 10] (`sae.splice.iter_chunks`, on the models' device);
    `hist_max` [d_sae] fixes each feature's histogram range (its max activation on these inputs, from
    the labels). `sparse`: reduce over the nonzeros only (None: when at most SPARSE_SHARE of the
    chunk's entries fire); both give the same numbers."""
    n, d_sae, d_hidden = len(x), sae.cfg.d_sae, mlp.cfg.d_hidden
    gt = ground_truth(x)
    combo = pointer_combo(gt)
    cell = combo * N_DIGITS + gt["target"]                                            # [n] in 0..159
    groups = {"cell": cell, "a": combo * N_DIGITS + gt["a"], "b": combo * N_DIGITS + gt["b"]}
    G = N_COMBOS * N_DIGITS
    # one scatter per chunk into the 1600 (p1, p2, a, b) cells; the three groupings are sums of those
    fine = (combo * N_DIGITS + gt["a"]) * N_DIGITS + gt["b"]                           # [n] in 0..1599
    fine_sum = torch.zeros(G * N_DIGITS, d_sae, dtype=torch.float64)
    hist = torch.zeros(d_sae * HIST_BINS, dtype=torch.long)
    top_val = torch.zeros(TOP_INPUTS, d_sae)
    top_idx = torch.full((TOP_INPUTS, d_sae), -1, dtype=torch.long)
    h_firing = torch.zeros(d_sae, d_hidden, dtype=torch.float64)
    h_all = torch.empty(n, d_hidden)
    keep = {int(u): [] for u in keep_columns}
    scale = HIST_BINS / hist_max.clamp_min(1e-12)                                       # [d_sae]
    feat_ids = torch.arange(d_sae)
    for chunk in iter_chunks(mlp, sae, x, CHUNK):
        i = chunk.start
        f = chunk.features.cpu()                                                       # [c, d_sae]
        h = chunk.hidden.cpu()                                                         # [c, d_hidden]
        h_all[i:i + len(h)] = h
        fire = f > 0                                                                   # [c, d_sae]
        nnz = int(fire.sum())
        use_sparse = sparse if sparse is not None else nnz <= SPARSE_SHARE * fire.numel()
        if use_sparse:   # e.g. TopK k=16 of 2048: work on the nonzeros only
            r, c = fire.nonzero(as_tuple=True)                                          # [nnz]
            v = f[r, c]
            b = (v * scale[c]).long().clamp_(0, HIST_BINS - 1) + c * HIST_BINS
            hist += torch.bincount(b, minlength=d_sae * HIST_BINS)
            m = torch.sparse_coo_tensor(torch.stack([c, r]), torch.ones(nnz), (d_sae, len(f)))
            h_firing += torch.sparse.mm(m, h).double()                                  # [d_sae, d_hidden]
            fine_sum.view(-1).index_put_((fine[i + r] * d_sae + c,), v.double(), accumulate=True)
        else:
            b = (f * scale).long().clamp_(0, HIST_BINS - 1) + feat_ids * HIST_BINS     # [c, d_sae]
            hist += torch.bincount(b[fire], minlength=d_sae * HIST_BINS)
            h_firing += (fire.T.float() @ h).double()                                  # [d_sae, d_hidden]
            fine_sum += torch.zeros(G * N_DIGITS, d_sae).index_add_(0, fine[i:i + len(f)], f).double()   # [1600, d_sae]
        k = min(TOP_INPUTS, len(f))
        v, j = f.topk(k, dim=0)                                                        # [k, d_sae]
        cand_v = torch.cat([top_val, v])
        cand_i = torch.cat([top_idx, j + i])
        v, o = cand_v.topk(TOP_INPUTS, dim=0)
        top_val, top_idx = v, cand_i.gather(0, o)
        for u in keep:
            col = f[:, u]
            keep[u].append(col[col > 0])
    hist = hist.view(d_sae, HIST_BINS)
    counts = hist.sum(1)                                   # every firing lands in exactly one bin
    # fine cells (combo, a, b) -> (combo, target = |a - b|), (combo, a), (combo, b)
    fc = fine_sum.view(N_COMBOS, N_DIGITS, N_DIGITS, d_sae)
    a_idx, b_idx = torch.meshgrid(torch.arange(N_DIGITS), torch.arange(N_DIGITS), indexing="ij")
    t_idx = (a_idx - b_idx).abs().flatten()                                            # [100]
    by_target = torch.zeros(N_COMBOS, N_DIGITS, d_sae, dtype=torch.float64).index_add_(
        1, t_idx, fc.reshape(N_COMBOS, N_DIGITS * N_DIGITS, d_sae))
    sums = {"cell": by_target.view(G, d_sae), "a": fc.sum(2).reshape(G, d_sae), "b": fc.sum(1).reshape(G, d_sae)}
    top_idx[top_val <= 0] = -1
    top_val[top_val <= 0] = 0
    cell_counts = torch.bincount(cell, minlength=G)
    cell_h = torch.zeros(G, d_hidden, dtype=torch.float64).index_add_(0, cell, h_all.double())
    combo_value = {}
    for var in ("a", "b"):
        c = torch.bincount(groups[var], minlength=G)
        combo_value[var] = ((sums[var] / c.clamp_min(1).unsqueeze(1)).view(N_COMBOS, N_DIGITS, d_sae).numpy(),
                            c.view(N_COMBOS, N_DIGITS).numpy())
    return FreshStats(
        n=n, counts=counts, hist=hist, hist_max=hist_max, top_val=top_val.T.contiguous(),
        top_idx=top_idx.T.contiguous(), mean_h_firing=(h_firing / counts.clamp_min(1).unsqueeze(1)).float(),
        h=h_all, columns={u: torch.cat(v).numpy() if v else np.zeros(0) for u, v in keep.items()},
        cell_counts=cell_counts.view(N_COMBOS, N_DIGITS), cell_h=cell_h.view(N_COMBOS, N_DIGITS, d_hidden),
        cell_f=sums["cell"].view(N_COMBOS, N_DIGITS, d_sae), combo_value=combo_value)


@torch.no_grad()
def resample_input_effects(mlp, x: torch.Tensor, h: torch.Tensor, group: torch.Tensor, n_groups: int,
                           seed: int, device="cpu") -> torch.Tensor:
    """Sum over each group's inputs of |h'_j - h_j| when input position p is resampled from another input:
    [n_groups, 10, d_hidden] (divide by the group's size for the mean)."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(n_groups, N_INPUTS, h.shape[1], dtype=torch.float64)
    for p in range(N_INPUTS):
        perm = torch.randperm(len(x), generator=g)
        xp = x.clone()
        xp[:, p] = x[perm, p]
        for i in range(0, len(x), CHUNK):
            d = (mlp.hidden(xp[i:i + CHUNK].to(device)).cpu() - h[i:i + CHUNK]).abs()   # [chunk, d_hidden]
            onehot = F.one_hot(group[i:i + CHUNK], n_groups).float()                      # [chunk, n_groups]
            out[:, p] += (onehot.T @ d).double()
    return out


@dataclass
class SankeyData:
    """Per (pointer combination, target) cell: input count, summed h, summed feature activations and
    summed |resample effect| of every input position on every neuron."""
    counts: torch.Tensor        # [16, 10]
    h_sum: torch.Tensor         # [16, 10, d_hidden]
    f_sum: torch.Tensor         # [16, 10, d_sae]
    input_effect: torch.Tensor  # [16, 10, 10, d_hidden], summed over the resampled inputs of each cell
    resample_counts: torch.Tensor  # [16, 10] resampled inputs per cell


def sankey_data(mlp, x: torch.Tensor, fs: FreshStats, seed: int, device="cpu", n_resample: int = N_RESAMPLE) -> SankeyData:
    """Cell sums for the Sankey; the input -> neuron effects from the first `n_resample` inputs (their
    means are taken over those inputs' cells, see `resample_counts`)."""
    gt = ground_truth(x)
    cell = pointer_combo(gt) * N_DIGITS + gt["target"]
    m = min(n_resample, len(x))
    eff = resample_input_effects(mlp, x[:m], fs.h[:m], cell[:m], N_COMBOS * N_DIGITS, seed, device)
    rc = torch.bincount(cell[:m], minlength=N_COMBOS * N_DIGITS).view(N_COMBOS, N_DIGITS)
    return SankeyData(fs.cell_counts, fs.cell_h, fs.cell_f, eff.view(N_COMBOS, N_DIGITS, N_INPUTS, -1), rc)
