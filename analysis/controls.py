"""The random-direction control: what the explanation grammar finds in directions that mean nothing.

Random unit directions r_j of the hidden layer, each read as relu(h @ r_j - t_j) with t_j set so that
it fires on the same share of inputs as one real feature, are explained and scored exactly like the
features (chosen on one set of fresh inputs, scored on another). A dictionary whose features score
no better than this has not found anything the grammar can name; the share of random directions
explained is reported beside every dictionary's. `analysis.labels` explains their activations
(`random_direction_acts`) with `analysis.explain.held_out`, like every other set of units.
"""
import numpy as np
import torch


@torch.no_grad()
def random_directions(d_in: int, densities, h_choose: torch.Tensor, seed: int = 0):
    """(R [d_in, U] unit directions, t [U] thresholds): t_j puts direction j's firing rate on the
    choosing activations h_choose [N, d_in] at densities[j]."""
    densities = np.asarray(densities, dtype=float)
    g = torch.Generator().manual_seed(seed)
    R = torch.randn(len(densities), d_in, generator=g).T                # the first U directions whatever U
    R = R / R.norm(dim=0, keepdim=True)
    proj = h_choose.float() @ R                                         # [N, U]
    q = torch.as_tensor(np.clip(1 - densities, 0, 1), dtype=torch.float32)
    idx = (q * (len(h_choose) - 1)).round().long()                     # [U]
    t = proj.sort(dim=0).values.gather(0, idx[None, :]).squeeze(0)      # [U] threshold at that quantile
    return R, t


@torch.no_grad()
def random_direction_acts(h_choose: torch.Tensor, h_score: torch.Tensor, densities, seed: int = 0):
    """The random directions' activations (on h_choose [N, d_in], on h_score [M, d_in]) at the given
    densities (see module docstring)."""
    R, t = random_directions(h_choose.shape[1], densities, h_choose, seed)
    return (h_choose.float() @ R - t).clamp_min(0), (h_score.float() @ R - t).clamp_min(0)

