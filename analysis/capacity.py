"""How much there is to find in the hidden layer: it bounds what any dictionary can recover.

- the number of principal components holding 90% and 99% of the layer's variance;
- the share of its variance the (p1, p2, a, b) cell alone explains (the variance of the per-cell
  means over the total): what is left is what the raw digits that are not pointed at add.
"""
import torch

from analysis.concepts import cell_index
from analysis.explain import cell_sum_matrix
from dataset.task import task_of


@torch.no_grad()
def layer_capacity(h: torch.Tensor, x: torch.Tensor) -> dict:
    """h [N, d_hidden] the hidden layer on inputs x [N, 2L+2]."""
    h = h.double()
    centred = h - h.mean(0)
    total = float((centred ** 2).sum())
    eig = torch.linalg.eigvalsh(centred.T @ centred).flip(0).clamp_min(0)      # [d_hidden], descending
    share = eig.cumsum(0) / eig.sum().clamp_min(1e-30)
    task = task_of(x)
    cells = cell_index(task.ground_truth(x), task)
    counts = torch.bincount(cells, minlength=task.n_cells).double()             # [n_cells]
    sums = (cell_sum_matrix(cells, task.n_cells) @ centred.float()).double()    # [n_cells, d_hidden]
    between = float(((sums ** 2).sum(1) / counts.clamp_min(1)).sum())
    return {"hidden_pcs_for_90": int((share < 0.9).sum()) + 1, "hidden_pcs_for_99": int((share < 0.99).sum()) + 1,
            "hidden_variance_explained_by_cell": between / max(total, 1e-30)}
