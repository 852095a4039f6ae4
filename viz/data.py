"""Everything the reports show, computed once from the run's models (no plotting here).

Feature activations on the fresh analysis inputs are kept sparse (COO: sample, feature, value),
because 2048 features x 50,000 inputs dense is 400 MB while an SAE activates a few dozen per input.
Every per-feature statistic (histogram, top-activating inputs, neurons that feed it) is derived
from that one pass. The quantities drawn as link widths are exact, not fitted:

- neuron j -> feature i: the neuron's contribution to the feature's pre-activation,
  `(h_j - b_dec_j) * W_enc[j, i]` (the encoder is linear before its activation);
- feature i -> output: the feature's direct effect on the prediction, `f_i * (W_dec[i] @ w_head)`
  (the head is linear, so the spliced prediction is the sum of these plus a constant);
- input position p -> neuron j: mean |change of h_j| when position p of each input is replaced by
  the same position of another (random) input (resample ablation).
"""
from dataclasses import dataclass, field

import numpy as np
import torch

from dataset.data_generator import N_DIGITS, N_INPUTS, N_SLOTS, ground_truth, target

CHUNK = 8192
HIST_BINS = 20          # bins of each feature's activation histogram (0, max_act]
TOP_INPUTS = 8          # top-activating inputs stored per feature card
TOP_NEURONS = 5         # neurons listed per feature card
INPUT_NAMES = ("c1[0]", "c1[1]", "c1[2]", "c1[3]", "p1", "c2[0]", "c2[1]", "c2[2]", "c2[3]", "p2")


@dataclass
class SparseActs:
    """Non-zero feature activations: rows (input index), cols (feature), vals; n inputs, d_sae."""
    rows: torch.Tensor      # [nnz] int64
    cols: torch.Tensor      # [nnz] int64
    vals: torch.Tensor      # [nnz] float32
    n: int
    d_sae: int

    def counts(self) -> torch.Tensor:
        return torch.bincount(self.cols, minlength=self.d_sae)                       # [d_sae]

    def group_sums(self, group: torch.Tensor, n_groups: int) -> torch.Tensor:
        """Sum of each feature's activation over the inputs of each group: [n_groups, d_sae]."""
        key = group[self.rows] * self.d_sae + self.cols
        return torch.bincount(key, weights=self.vals.double(), minlength=n_groups * self.d_sae).view(n_groups, self.d_sae)


@torch.no_grad()
def hidden_and_features(mlp, sae, x: torch.Tensor, device="cpu"):
    """Hidden layer h [n, d_hidden], predictions [n], the MLP's spliced prediction [n] and the features as SparseActs."""
    hs, preds, spliced, rows, cols, vals = [], [], [], [], [], []
    w_head, b_head = mlp.head.weight[0], mlp.head.bias[0]
    for i in range(0, len(x), CHUNK):
        xc = x[i:i + CHUNK].to(device)
        h = mlp.hidden(xc)                                                 # [chunk, d_hidden]
        f = sae.encode(h)                                                  # [chunk, d_sae]
        hs.append(h.cpu())
        preds.append((h @ w_head + b_head).cpu())
        spliced.append((sae.decode(f) @ w_head + b_head).cpu())
        r, c = f.nonzero(as_tuple=True)
        rows.append(r.cpu() + i)
        cols.append(c.cpu())
        vals.append(f[r, c].cpu())
    acts = SparseActs(torch.cat(rows), torch.cat(cols), torch.cat(vals).float(), len(x), sae.cfg.d_sae)
    return torch.cat(hs), torch.cat(preds), torch.cat(spliced), acts


def feature_histograms(acts: SparseActs, bins: int = HIST_BINS):
    """Per feature: max activation [d_sae] and counts of its non-zero activations in `bins` equal bins of (0, max]."""
    vmax = torch.zeros(acts.d_sae).index_reduce_(0, acts.cols, acts.vals, "amax", include_self=True)
    scale = vmax[acts.cols].clamp_min(1e-12)
    b = (acts.vals / scale * bins).long().clamp_(0, bins - 1)
    hist = torch.bincount(acts.cols * bins + b, minlength=acts.d_sae * bins).view(acts.d_sae, bins)
    return vmax, hist


def top_inputs(acts: SparseActs, k: int = TOP_INPUTS):
    """The k inputs each feature fires most on: (sample index [d_sae, k], value [d_sae, k]); -1 / 0 pad."""
    order = np.lexsort((-acts.vals.numpy(), acts.cols.numpy()))         # by feature, then value descending
    cols = acts.cols.numpy()[order]
    starts = np.searchsorted(cols, np.arange(acts.d_sae))
    counts = np.bincount(cols, minlength=acts.d_sae)
    idx = np.full((acts.d_sae, k), -1, np.int64)
    val = np.zeros((acts.d_sae, k), np.float32)
    for j in range(k):
        has = counts > j
        pos = order[starts[has] + j]
        idx[has, j] = acts.rows.numpy()[pos]
        val[has, j] = acts.vals.numpy()[pos]
    return idx, val


def mean_hidden_where_firing(acts: SparseActs, h: torch.Tensor) -> torch.Tensor:
    """Mean hidden vector over the inputs where each feature fires: [d_sae, d_hidden] (zeros if never)."""
    ones = torch.ones(len(acts.rows))
    m = torch.sparse_coo_tensor(torch.stack([acts.cols, acts.rows]), ones, (acts.d_sae, acts.n)).coalesce()
    sums = torch.sparse.mm(m, h)                                                   # [d_sae, d_hidden]
    return sums / acts.counts().clamp_min(1).unsqueeze(1).float()


def feature_output_weights(mlp, sae) -> torch.Tensor:
    """W_dec[i] @ w_head for every feature: the prediction's change per unit of activation [d_sae]."""
    return (sae.W_dec.detach() @ mlp.head.weight.detach()[0]).cpu()


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
            out[:, p].index_add_(0, group[i:i + CHUNK], d.double())
    return out


def pointer_combo(gt: dict) -> torch.Tensor:
    """p1 * 4 + p2 for each input [n]: the 16 pointer combinations."""
    return gt["p1"] * N_SLOTS + gt["p2"]


@dataclass
class SankeyData:
    """Per (pointer combination, target) cell: input count, summed h, summed feature activations and
    summed |resample effect| of every input position on every neuron."""
    counts: torch.Tensor        # [16, 10]
    h_sum: torch.Tensor         # [16, 10, d_hidden]
    f_sum: torch.Tensor         # [16, 10, d_sae]
    input_effect: torch.Tensor  # [16, 10, 10, d_hidden]


def sankey_data(mlp, x, h, acts: SparseActs, seed: int, device="cpu") -> SankeyData:
    gt = ground_truth(x)
    n_t = N_DIGITS
    cell = pointer_combo(gt) * n_t + gt["target"]                               # [n] in 0..159
    n_cells = N_SLOTS * N_SLOTS * n_t
    counts = torch.bincount(cell, minlength=n_cells).view(N_SLOTS * N_SLOTS, n_t)
    h_sum = torch.zeros(n_cells, h.shape[1], dtype=torch.float64).index_add_(0, cell, h.double())
    f_sum = acts.group_sums(cell, n_cells)
    eff = resample_input_effects(mlp, x, h, cell, n_cells, seed, device)
    return SankeyData(counts, h_sum.view(16, n_t, -1), f_sum.view(16, n_t, -1), eff.view(16, n_t, N_INPUTS, -1))


def combo_value_map(acts: SparseActs, gt: dict, var: str):
    """Mean activation of every feature on the inputs of each (pointer combination, value of `var`)
    cell: (means [16, 10, d_sae], counts [16, 10])."""
    key = pointer_combo(gt) * N_DIGITS + gt[var]
    counts = torch.bincount(key, minlength=16 * N_DIGITS)
    sums = acts.group_sums(key, 16 * N_DIGITS)
    return (sums / counts.clamp_min(1).unsqueeze(1)).view(16, N_DIGITS, -1), counts.view(16, N_DIGITS)


def topk_rows(a: torch.Tensor, k: int):
    """Vectorised top-k of every row of a dense [n, d] matrix: (values [n, k], indices [n, k])."""
    k = min(k, a.shape[1])
    return a.topk(k, dim=1)


def input_text(x_row) -> str:
    return "[" + ", ".join(str(int(v)) for v in x_row) + "]"
