"""Feature splitting across dictionary sizes.

- `decoder_parents(W_small, W_large)`: each feature of the larger dictionary is linked to the feature
  of the smaller one whose decoder direction is closest (cosine of the rows of W_dec), as in the
  paper's feature-splitting view: a child close to its parent (cos >= 0.9) refines it, a child far
  from every smaller feature is new.
"""
import numpy as np
import pandas as pd
import torch


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
