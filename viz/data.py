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
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dataset.task import N_DIGITS, Task, task_of, task_of_truth
from sae.splice import CHUNK, iter_chunks

HIST_BINS = 20          # bins of each feature's activation histogram (0, max_act]
TOP_INPUTS = 8          # top-activating inputs stored per feature card
# inputs behind the input -> neuron links (10 resampled forward passes each): ~50 per (pointer
# combination, target) cell, a quarter of the cost of all 32768
N_RESAMPLE = 8192
SPARSE_SHARE = 0.05     # below this share of active entries the reductions run over the nonzeros


def input_names(task: Task) -> tuple:
    """The name of each input position: c1[0..L-1], p1, c2[0..L-1], p2."""
    names = dict(zip(task.digit_positions, task.digit_variables)) | {task.p1: "p1", task.p2: "p2"}
    return tuple(names[i] for i in range(task.n_inputs))


def pointer_combo(gt: dict) -> torch.Tensor:
    """p1 * L + p2 for each input [n]: the L * L pointer combinations (16 at L = 4)."""
    return gt["p1"] * task_of_truth(gt).slots + gt["p2"]


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
    cell_counts: torch.Tensor   # [L*L, 10] inputs per (pointer combination, target)
    cell_h: torch.Tensor        # [L*L, 10, d_hidden] summed h per cell
    cell_f: torch.Tensor        # [L*L, 10, d_sae] summed f per cell
    combo_value: dict           # var ("a", "b") -> (mean f [L*L, 10, d_sae], counts [L*L, 10])
    nz_rows: torch.Tensor = None  # [nnz] input index of every firing (feature, input) pair
    nz_cols: torch.Tensor = None  # [nnz] its feature
    nz_vals: torch.Tensor = None  # [nnz] its activation


@torch.no_grad()
def fresh_stats(mlp, sae, x: torch.Tensor, hist_max: torch.Tensor, keep_columns=(),
                sparse: bool | None = None) -> FreshStats:
    """One chunked pass over the inputs x [n, 2L+2] (`sae.splice.iter_chunks`, on the models' device);
    `hist_max` [d_sae] fixes each feature's histogram range (its max activation on these inputs, from
    the labels). `sparse`: reduce over the nonzeros only (None: when at most SPARSE_SHARE of the
    chunk's entries fire); both give the same numbers."""
    n, d_sae, d_hidden = len(x), sae.cfg.d_sae, mlp.cfg.d_hidden
    task = task_of(x)
    n_combos = task.slots ** 2
    gt = task.ground_truth(x)
    combo = pointer_combo(gt)
    cell = combo * N_DIGITS + gt["target"]                                            # [n] in 0..159
    groups = {"cell": cell, "a": combo * N_DIGITS + gt["a"], "b": combo * N_DIGITS + gt["b"]}
    G = n_combos * N_DIGITS
    # one scatter per chunk into the 1600 (p1, p2, a, b) cells; the three groupings are sums of those
    fine = (combo * N_DIGITS + gt["a"]) * N_DIGITS + gt["b"]                           # [n] in 0..1599
    fine_sum = torch.zeros(G * N_DIGITS, d_sae, dtype=torch.float64)
    hist = torch.zeros(d_sae * HIST_BINS, dtype=torch.long)
    top_val = torch.zeros(TOP_INPUTS, d_sae)
    top_idx = torch.full((TOP_INPUTS, d_sae), -1, dtype=torch.long)
    h_firing = torch.zeros(d_sae, d_hidden, dtype=torch.float64)
    h_all = torch.empty(n, d_hidden)
    keep = {int(u): [] for u in keep_columns}
    nz = []                                   # (rows, cols, vals) of every chunk: the cards' examples and profiles
    scale = HIST_BINS / hist_max.clamp_min(1e-12)                                       # [d_sae]
    feat_ids = torch.arange(d_sae)
    for chunk in iter_chunks(mlp, sae, x, CHUNK):
        i = chunk.start
        f = chunk.features.cpu()                                                       # [c, d_sae]
        h = chunk.hidden.cpu()                                                         # [c, d_hidden]
        h_all[i:i + len(h)] = h
        fire = f > 0                                                                   # [c, d_sae]
        nnz = int(fire.sum())
        r_all, c_all = fire.nonzero(as_tuple=True)
        nz.append((r_all.int() + i, c_all.int(), f[r_all, c_all]))
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
    fc = fine_sum.view(n_combos, N_DIGITS, N_DIGITS, d_sae)
    a_idx, b_idx = torch.meshgrid(torch.arange(N_DIGITS), torch.arange(N_DIGITS), indexing="ij")
    t_idx = (a_idx - b_idx).abs().flatten()                                            # [100]
    by_target = torch.zeros(n_combos, N_DIGITS, d_sae, dtype=torch.float64).index_add_(
        1, t_idx, fc.reshape(n_combos, N_DIGITS * N_DIGITS, d_sae))
    sums = {"cell": by_target.view(G, d_sae), "a": fc.sum(2).reshape(G, d_sae), "b": fc.sum(1).reshape(G, d_sae)}
    top_idx[top_val <= 0] = -1
    top_val[top_val <= 0] = 0
    cell_counts = torch.bincount(cell, minlength=G)
    cell_h = torch.zeros(G, d_hidden, dtype=torch.float64).index_add_(0, cell, h_all.double())
    combo_value = {}
    for var in ("a", "b"):
        c = torch.bincount(groups[var], minlength=G)
        combo_value[var] = ((sums[var] / c.clamp_min(1).unsqueeze(1)).view(n_combos, N_DIGITS, d_sae).numpy(),
                            c.view(n_combos, N_DIGITS).numpy())
    return FreshStats(
        n=n, counts=counts, hist=hist, hist_max=hist_max, top_val=top_val.T.contiguous(),
        top_idx=top_idx.T.contiguous(), mean_h_firing=(h_firing / counts.clamp_min(1).unsqueeze(1)).float(),
        h=h_all, columns={u: torch.cat(v).numpy() if v else np.zeros(0) for u, v in keep.items()},
        cell_counts=cell_counts.view(n_combos, N_DIGITS), cell_h=cell_h.view(n_combos, N_DIGITS, d_hidden),
        cell_f=sums["cell"].view(n_combos, N_DIGITS, d_sae), combo_value=combo_value,
        nz_rows=torch.cat([t[0] for t in nz]), nz_cols=torch.cat([t[1] for t in nz]), nz_vals=torch.cat([t[2] for t in nz]))


@torch.no_grad()
def resample_input_effects(mlp, x: torch.Tensor, h: torch.Tensor, group: torch.Tensor, n_groups: int,
                           seed: int, device="cpu") -> torch.Tensor:
    """Sum over each group's inputs of |h'_j - h_j| when input position p is resampled from another input:
    [n_groups, 2L+2, d_hidden] (divide by the group's size for the mean)."""
    g = torch.Generator().manual_seed(seed)
    n_inputs = task_of(x).n_inputs
    out = torch.zeros(n_groups, n_inputs, h.shape[1], dtype=torch.float64)
    for p in range(n_inputs):
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
    counts: torch.Tensor        # [L*L, 10]
    h_sum: torch.Tensor         # [L*L, 10, d_hidden]
    f_sum: torch.Tensor         # [L*L, 10, d_sae]
    input_effect: torch.Tensor  # [L*L, 10, 10, d_hidden], summed over the resampled inputs of each cell
    resample_counts: torch.Tensor  # [L*L, 10] resampled inputs per cell


def sankey_data(mlp, x: torch.Tensor, fs: FreshStats, seed: int, device="cpu", n_resample: int = N_RESAMPLE) -> SankeyData:
    """Cell sums for the Sankey; the input -> neuron effects from the first `n_resample` inputs (their
    means are taken over those inputs' cells, see `resample_counts`)."""
    task = task_of(x)
    n_combos = task.slots ** 2
    gt = task.ground_truth(x)
    cell = pointer_combo(gt) * N_DIGITS + gt["target"]
    m = min(n_resample, len(x))
    eff = resample_input_effects(mlp, x[:m], fs.h[:m], cell[:m], n_combos * N_DIGITS, seed, device)
    rc = torch.bincount(cell[:m], minlength=n_combos * N_DIGITS).view(n_combos, N_DIGITS)
    return SankeyData(fs.cell_counts, fs.cell_h, fs.cell_f, eff.view(n_combos, N_DIGITS, task.n_inputs, -1), rc)


# the feature cards' view of each feature (sae_vis / Neuronpedia style)
N_BANDS = 5             # quantile bands of a feature's activations where it fires
PER_BAND = 2            # examples drawn from each band (plus the TOP_INPUTS top ones)
N_NEIGHBOURS = 4        # nearest features listed per card, by decoder cosine and by co-activation
PROFILE_VARS = ("a", "b", "a-b")


@dataclass
class FeatureProfiles:
    """Per feature: examples across its activation quantiles, its activation against the ground-truth
    magnitudes where it fires, its contribution to the prediction by a - b, and its nearest features."""
    bands: list                 # [d_sae] list of N_BANDS lists of (input index, activation), lowest band first
    binned: dict                # var -> (mean activation where it fires [d_sae, n_values], counts [d_sae, n_values])
    values: dict                # var -> the values of the bins (e.g. -9..9 for a-b)
    corr: dict                  # var -> [d_sae] correlation of activation and var where it fires (nan: constant)
    contrib_by_diff: np.ndarray  # [d_sae, 19] mean contribution f * w_out over all inputs of each a - b value
    slope: dict                 # var -> [d_sae] least-squares change of the contribution per unit of var, where it fires
    cos_neighbours: list        # [d_sae] list of (feature, decoder cosine)
    coact_neighbours: list      # [d_sae] list of (feature, Jaccard of firing)


def feature_profiles(fs: FreshStats, x: torch.Tensor, W_dec: torch.Tensor, w_out: torch.Tensor,
                     seed: int = 0) -> FeatureProfiles:
    """From the nonzeros of `fresh_stats` (inputs x [n, 10]): see FeatureProfiles. W_dec [d_sae, d_in],
    w_out [d_sae] (W_dec @ w_head)."""
    d_sae = W_dec.shape[0]
    gt = task_of(x).ground_truth(x)
    r, c, v = fs.nz_rows.long(), fs.nz_cols.long(), fs.nz_vals.double()               # [nnz]
    w = w_out.double().cpu()
    binned, values, corr, slope = {}, {}, {}, {}
    counts = torch.bincount(c, minlength=d_sae).double().clamp_min(1)                 # [d_sae]
    for var in PROFILE_VARS:
        g_all = gt[var].long()
        lo, nv = (-(N_DIGITS - 1), 2 * N_DIGITS - 1) if var == "a-b" else (0, N_DIGITS)
        g = g_all[r]                                                                   # [nnz]
        idx = c * nv + (g - lo)
        s = torch.zeros(d_sae * nv, dtype=torch.float64).index_add_(0, idx, v).view(d_sae, nv)
        k = torch.bincount(idx, minlength=d_sae * nv).view(d_sae, nv)
        binned[var] = ((s / k.clamp_min(1)).float().numpy(), k.numpy())
        values[var] = list(range(lo, lo + nv))
        gd = g.double()
        sums = {name: torch.zeros(d_sae, dtype=torch.float64).index_add_(0, c, t)
                for name, t in (("g", gd), ("v", v), ("gg", gd * gd), ("vv", v * v), ("gv", gd * v))}
        mg, mv = sums["g"] / counts, sums["v"] / counts
        cov = sums["gv"] / counts - mg * mv
        var_g = (sums["gg"] / counts - mg * mg).clamp_min(0)
        var_v = (sums["vv"] / counts - mv * mv).clamp_min(0)
        ok = (var_g > 1e-12) & (var_v > 1e-12)
        corr[var] = torch.where(ok, cov / (var_g * var_v).sqrt().clamp_min(1e-12), torch.nan).numpy()
        slope[var] = torch.where(var_g > 1e-12, w * cov / var_g.clamp_min(1e-12), torch.nan).numpy()
    diff = gt["a-b"].long() + N_DIGITS - 1                                             # [n] in 0..18
    per_diff = torch.bincount(diff, minlength=2 * N_DIGITS - 1).double().clamp_min(1)
    s = torch.zeros(d_sae * (2 * N_DIGITS - 1), dtype=torch.float64).index_add_(0, c * (2 * N_DIGITS - 1) + diff[r], v)
    contrib_by_diff = (s.view(d_sae, -1) / per_diff[None, :] * w[:, None]).float().numpy()

    # examples: the activations of each feature sorted, cut into N_BANDS equal-count bands
    g = torch.Generator().manual_seed(seed)
    order = torch.argsort(c * (v.max().item() + 1 if len(v) else 1) + v)                # by feature, then activation
    r_s, c_s, v_s = r[order], c[order], v[order]
    starts = torch.searchsorted(c_s, torch.arange(d_sae + 1))
    bands = []
    for u in range(d_sae):
        a, b = int(starts[u]), int(starts[u + 1])
        out = []
        for q in range(N_BANDS):
            lo, hi = a + (b - a) * q // N_BANDS, a + (b - a) * (q + 1) // N_BANDS
            if hi <= lo:
                out.append([])
                continue
            pick = lo + torch.randperm(hi - lo, generator=g)[:PER_BAND]
            pick = pick[torch.argsort(v_s[pick], descending=True)]
            out.append([(int(r_s[j]), float(v_s[j])) for j in pick])
        bands.append(out)

    # neighbours: decoder cosine, and Jaccard of the sets of inputs each feature fires on
    Wn = F.normalize(W_dec.detach().float().cpu(), dim=1)
    cos = Wn @ Wn.T                                                                    # [d_sae, d_sae]
    cos.fill_diagonal_(-2)
    with warnings.catch_warnings():   # torch's notes that its sparse support is "beta"
        warnings.simplefilter("ignore", UserWarning)
        fire = torch.sparse_coo_tensor(torch.stack([c, r]), torch.ones(len(r)), (d_sae, fs.n)).coalesce()
        inter = torch.sparse.mm(fire, fire.t()).to_dense()                              # [d_sae, d_sae] co-firing counts
    n_fire = torch.bincount(c, minlength=d_sae).float()
    jac = inter / (n_fire[:, None] + n_fire[None, :] - inter).clamp_min(1)
    jac.fill_diagonal_(-1)
    k = min(N_NEIGHBOURS, d_sae - 1)
    cv, ci = cos.topk(k, dim=1)
    jv, ji = jac.topk(k, dim=1)
    cos_nb = [[(int(i), float(val)) for i, val in zip(ci[u], cv[u])] for u in range(d_sae)]
    jac_nb = [[(int(i), float(val)) for i, val in zip(ji[u], jv[u]) if val > 0] for u in range(d_sae)]
    return FeatureProfiles(bands=bands, binned=binned, values=values, corr=corr, contrib_by_diff=contrib_by_diff,
                           slope=slope, cos_neighbours=cos_nb, coact_neighbours=jac_nb)
