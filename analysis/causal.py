"""Causal effects of SAE features on the MLP's prediction, inside the spliced forward pass.

The spliced forward pass itself is `sae.splice.spliced_forward(mlp, sae, x, edit=None,
with_error=False)`: `head(decode(edit(encode(hidden(x)))))`. This module builds the edits:
`ablate(ids)` zeroes features, `clamp({id: value})` sets them.

The SAE's error term (h - decode(encode(h))) is NOT added by default: the spliced model of the
probe and of the spliced exact-match metric is the SAE's reconstruction alone, and an edit should be
read against that model. `with_error=True` adds the (unedited) error term back, so that an unedited
call returns the MLP's own prediction. Because the MLP's head is one Linear layer directly on the
hidden layer and decode is linear in f, the *change* an edit makes is the same either way:
    edited - unedited = (f_edited - f) @ W_dec @ w_head.
`ablation_effects` uses that identity to get every feature's zero-ablation effect on every input at
the cost of one matrix product (tests check it against `spliced_forward`), and `effects_table`
averages it over where each feature's explanation holds and where it does not.
"""
import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from analysis.concepts import cell_index, concept_set
from analysis.explain import Explanations, cell_sum_matrix
from dataset.task import task_of
from sae.splice import Edit


def ablate(ids) -> Edit:
    """Edit that zeroes the features `ids` (an int or a list of ints)."""
    ids = [int(ids)] if np.isscalar(ids) else [int(i) for i in ids]

    def edit(f: torch.Tensor) -> torch.Tensor:
        f[:, ids] = 0.0
        return f
    return edit


def clamp(values: dict) -> Edit:
    """Edit that sets each feature `id` to `value` on every input ({id: value})."""
    def edit(f: torch.Tensor) -> torch.Tensor:
        for i, v in values.items():
            f[:, int(i)] = float(v)
        return f
    return edit


def head_weight(mlp) -> torch.Tensor:
    if not isinstance(mlp.head, nn.Linear) or mlp.head.out_features != 1:
        raise TypeError("ablation_effects needs the MLP's head to be one Linear layer to a scalar")
    return mlp.head.weight.detach()[0]                                  # [d_in]


@torch.no_grad()
def feature_output_weights(mlp, sae) -> torch.Tensor:
    """How much one unit of each feature moves the spliced prediction: W_dec @ w_head, [d_sae]."""
    return sae.W_dec.detach() @ head_weight(mlp).to(sae.W_dec.device)


@torch.no_grad()
def ablation_effects(mlp, sae, f: torch.Tensor) -> torch.Tensor:
    """Change of the spliced prediction when each feature is zeroed, on each input: [batch, d_sae]
    (exact, see module docstring)."""
    return -f * feature_output_weights(mlp, sae).to(f.device)[None, :]


@torch.no_grad()
def effects_table(mlp, sae, f: torch.Tensor, ex: Explanations, x: torch.Tensor) -> pd.DataFrame:
    """Mean zero-ablation effect of each feature where its explanation (concept / ramp support)
    holds, where it does not, where the feature is active, and its mean |effect| over all inputs,
    from its activations f [n, d_sae] on inputs x [n, 2L+2]. Zeroing feature u moves the spliced
    prediction by -f_u * w_u (`ablation_effects`), so every mean is a sum of f over the right inputs,
    taken per cell."""
    task = task_of(x)
    cs = concept_set(task)
    gt = task.ground_truth(x)
    cells = cell_index(gt, task)
    n, d_sae = f.shape
    w = feature_output_weights(mlp.cpu(), sae.cpu())                    # [d_sae]
    F_cell = (cell_sum_matrix(cells, task.n_cells) @ f).double()       # [n_cells, d_sae] sums of f per cell
    n_cell = torch.bincount(cells, minlength=task.n_cells).double()     # [n_cells]
    cols = torch.as_tensor(ex.truth_col)
    on_cells = cols.clamp_min(0) < cs.n_cell
    T = cs.cell_truth[:, cols.clamp_min(0).clamp_max(cs.n_cell - 1)].double()   # [1600, d_sae]
    f_true = (F_cell * T).sum(0)                                        # [d_sae]
    n_true = n_cell @ T
    for u in torch.nonzero(~on_cells & (cols >= 0)).flatten().tolist():  # digit concepts: per input
        holds = cs.concept_truth(int(cols[u]), gt, cells)
        f_true[u], n_true[u] = float(f[holds, u].double().sum()), float(holds.sum())
    f_all = F_cell.sum(0)
    n_act = (f > 0).sum(0).double()
    wd = w.double()
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    live = cols >= 0
    where_true = torch.where(live & (n_true > 0), -wd * f_true / n_true.clamp_min(1), nan)
    where_false = torch.where(live & (n_true < n), -wd * (f_all - f_true) / (n - n_true).clamp_min(1), nan)
    where_active = torch.where(n_act > 0, -wd * f_all / n_act.clamp_min(1), nan)
    return pd.DataFrame({"effect_where_true": where_true.numpy(), "effect_where_false": where_false.numpy(),
                         "effect_where_active": where_active.numpy(),
                         "effect_mean_abs": (wd.abs() * f_all / n).numpy()})
