"""Feature splitting across dictionary sizes, and a random-direction control for monosemanticity.

- `decoder_parents(W_small, W_large)`: each feature of the larger dictionary is linked to the feature
  of the smaller one whose decoder direction is closest (cosine of the rows of W_dec), as in the
  paper's feature-splitting view: a child close to its parent (cos >= 0.9) refines it, a child far
  from every smaller feature is new.
- `random_direction_control(h, x, densities)`: the same scoring applied to random directions of
  the hidden layer, each thresholded to fire on the same share of inputs as one real feature. A
  dictionary whose features score no better than this has not found anything the grammar can name.
"""
import numpy as np
import pandas as pd
import torch

from analysis.explain import Explanations, explain_units

STRONG_PARENT_COS = 0.9


@torch.no_grad()
def decoder_parents(W_small: torch.Tensor, W_large: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(parent [d_large], cos [d_large]): for each row of W_large [d_large, d_in], the most similar row of
    W_small [d_small, d_in] by cosine."""
    a = W_small / W_small.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b = W_large / W_large.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = b @ a.T                                                       # [d_large, d_small]
    best, parent = cos.max(1)
    return parent, best


@torch.no_grad()
def random_direction_control(h: torch.Tensor, x: torch.Tensor, densities, seed: int = 0) -> Explanations:
    """Score random unit directions r_j of the hidden layer h [N, d_in], each as relu(h @ r_j - t_j)
    with t_j set so that it fires on densities[j] of the inputs."""
    densities = np.asarray(densities, dtype=float)
    g = torch.Generator().manual_seed(seed)
    R = torch.randn(h.shape[1], len(densities), generator=g)
    R /= R.norm(dim=0, keepdim=True)
    proj = h.float() @ R                                                # [N, U]
    n = len(h)
    q = torch.as_tensor(np.clip(1 - densities, 0, 1), dtype=torch.float32)
    idx = (q * (n - 1)).round().long()                                  # [U]
    srt = proj.sort(dim=0).values                                       # [N, U]
    t = srt.gather(0, idx[None, :]).squeeze(0)                          # [U] threshold at that quantile
    acts = (proj - t[None, :]).clamp_min(0)
    return explain_units(acts, x, kind="random")


def splitting_links(small_name: str, small_sae, small_table: pd.DataFrame,
                    large_name: str, large_sae, large_table: pd.DataFrame) -> pd.DataFrame:
    """One row per feature of the larger SAE: its parent in the smaller one, their cosine, and both
    explanations and scores."""
    parent, cos = decoder_parents(small_sae.W_dec.detach().cpu(), large_sae.W_dec.detach().cpu())
    s = small_table.set_index("unit")
    l_ = large_table.set_index("unit")
    p = parent.numpy()
    return pd.DataFrame({
        "child_sae": large_name, "child": np.arange(len(p)), "child_status": l_["status"].to_numpy(),
        "child_explanation": l_["explanation"].to_numpy(), "child_score": l_["score"].to_numpy(),
        "parent_sae": small_name, "parent": p, "cos": cos.numpy(),
        "parent_status": s.loc[p, "status"].to_numpy(), "parent_explanation": s.loc[p, "explanation"].to_numpy(),
        "parent_score": s.loc[p, "score"].to_numpy(),
    })


def splitting_summary(links: pd.DataFrame) -> dict:
    """How the larger dictionary's alive features relate to the smaller one's."""
    alive = links[links["child_status"] == "alive"]
    strong = alive[alive["cos"] >= STRONG_PARENT_COS]
    children = strong.groupby("parent").size()
    return {
        "child_sae": links["child_sae"].iloc[0] if len(links) else None,
        "parent_sae": links["parent_sae"].iloc[0] if len(links) else None,
        "alive_children": int(len(alive)),
        "median_cos": float(alive["cos"].median()) if len(alive) else None,
        "share_with_close_parent": float(len(strong) / max(len(alive), 1)),
        "parents_with_close_children": int(len(children)),
        "max_children_per_parent": int(children.max()) if len(children) else 0,
        "child_better_than_parent": float((alive["child_score"] > alive["parent_score"]).mean()) if len(alive) else None,
    }
