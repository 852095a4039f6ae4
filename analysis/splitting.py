"""Feature splitting: which fine features split from which coarse ones, and whether they refine them.

Splitting shows up in two places:
- across dictionary sizes (a sweep, `train_sae.py --sweep d_sae=...`): each feature of the larger
  dictionary is linked to a feature of the next smaller one (`link` "size");
- within one Matryoshka dictionary: each latent beyond the first prefix is linked to a latent of the
  smaller prefixes (`link` "prefix"; a latent's *level* is the smallest prefix that holds it).

Each child gets two parents among the coarse features: `parent`, the one whose decoder direction is
closest (cosine of the rows of W_dec, the paper's feature-splitting view), and `cofiring_parent`, the
one whose firing rate rises most where the child fires (P(parent | child) - P(parent), so a coarse
feature firing almost everywhere is nobody's parent). For each, on fresh inputs:
- `*_cos`: the decoder cosine; `*_coactivation`: the share of the child's firings on which that
  parent fires too (a child that splits its parent fires inside it);
- `*_nested`: the share of the inputs where the child's explanation holds on which the parent's holds
  too, and `*_refines`: nested >= REFINES and the child's explanation holds on at most REFINES of the
  inputs the parent's holds on: the child names a sub-case of its parent.
Explanations are the split-aware grammar's (`split_explanation`: a pointer pair and one value
condition can be named), with their held-out scores.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from analysis.concepts import explanation_truth
from analysis.explain import MONOSEMANTIC_SCORE

STRONG_PARENT_COS = 0.9
REFINES = 0.95


@dataclass
class Dictionary:
    """One SAE as splitting sees it."""
    name: str
    W_dec: torch.Tensor          # [U, d_in]
    acts: torch.Tensor           # [n, U] its features on the inputs every dictionary is compared on
    table: pd.DataFrame          # its labels (features.csv): status, split_explanation, split_score
    levels: np.ndarray           # [U] the level of each unit: d_sae, or its Matryoshka prefix


def decoder_cosines(W_small: torch.Tensor, W_large: torch.Tensor) -> torch.Tensor:
    """[d_large, d_small]: cosine of every row of W_large [d_large, d_in] with every row of W_small."""
    a = W_small / W_small.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b = W_large / W_large.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return b @ a.T


@torch.no_grad()
def decoder_parents(W_small: torch.Tensor, W_large: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(parent [d_large], cos [d_large]): for each row of W_large [d_large, d_in], the most similar row of
    W_small [d_small, d_in] by cosine."""
    best, parent = decoder_cosines(W_small, W_large).max(1)
    return parent, best


def _pair_columns(prefix: str, parent_table, parent, t_child, x, a_child, a_parent, cos) -> dict:
    """What one child-parent pairing shares: decoder cosine, co-firing, nested explanations."""
    p = parent_table.iloc[parent.numpy()]
    t_parent = explanation_truth(p["split_explanation"].tolist(), x)
    n_child, n_tc, n_tp = a_child.sum(0), t_child.sum(0), t_parent.sum(0)
    coact = (a_child & a_parent).sum(0) / n_child.clamp_min(1)
    nested = (t_child & t_parent).sum(0) / n_tc.clamp_min(1)
    both = (n_tc > 0) & (n_tp > 0)
    return {
        f"{prefix}": parent.numpy(), f"{prefix}_status": p["status"].to_numpy(),
        f"{prefix}_explanation": p["split_explanation"].to_numpy(), f"{prefix}_score": p["split_score"].to_numpy(),
        f"{prefix}_cos": cos.numpy(),
        f"{prefix}_coactivation": np.where(n_child.numpy() > 0, coact.numpy(), np.nan),
        f"{prefix}_nested": np.where(both.numpy(), nested.numpy(), np.nan),
        f"{prefix}_refines": (both & (nested >= REFINES) & (n_tc <= REFINES * n_tp)).numpy(),
    }


@torch.no_grad()
def link(coarse: Dictionary, fine: Dictionary, x: torch.Tensor, kind: str, coarse_units=None,
         fine_units=None) -> pd.DataFrame:
    """One row per unit of `fine` (or of `fine_units`): its parent among `coarse`'s units (or
    `coarse_units`) by decoder direction (`parent_*` columns) and by co-firing (`cofiring_parent_*`),
    and what each pair shares (see module docstring)."""
    cu = torch.arange(coarse.W_dec.shape[0]) if coarse_units is None else torch.as_tensor(coarse_units)
    fu = torch.arange(fine.W_dec.shape[0]) if fine_units is None else torch.as_tensor(fine_units)
    cos = decoder_cosines(coarse.W_dec[cu].float(), fine.W_dec[fu].float())        # [F, C]
    a_child, a_coarse = fine.acts[:, fu] > 0, coarse.acts[:, cu] > 0               # [n, F], [n, C]
    together = a_child.float().T @ a_coarse.float()                                # [F, C] firings in common
    # how much more often each coarse unit fires with the child than it fires at all: a coarse unit that
    # fires almost always co-fires with everything and earns nothing
    excess = together / a_child.sum(0).clamp_min(1)[:, None].float() - a_coarse.float().mean(0)
    dec_pos, cof_pos = cos.argmax(1), excess.argmax(1)
    c = fine.table.iloc[fu.numpy()]
    t_child = explanation_truth(c["split_explanation"].tolist(), x)
    out = {"link": kind, "child_sae": fine.name, "child": fu.numpy(), "child_level": fine.levels[fu.numpy()],
           "child_status": c["status"].to_numpy(), "child_explanation": c["split_explanation"].to_numpy(),
           "child_score": c["split_score"].to_numpy(), "parent_sae": coarse.name}
    for prefix, pos in (("parent", dec_pos), ("cofiring_parent", cof_pos)):
        out |= _pair_columns(prefix, coarse.table, cu[pos], t_child, x, a_child, a_coarse[:, pos],
                             cos.gather(1, pos[:, None]).squeeze(1))
        out[f"{prefix}_level"] = coarse.levels[cu[pos].numpy()]
    return pd.DataFrame(out)


def size_links(small: Dictionary, large: Dictionary, x: torch.Tensor) -> pd.DataFrame:
    """Every feature of the larger dictionary linked to the smaller one."""
    return link(small, large, x, "size")


def prefix_links(d: Dictionary, prefixes, x: torch.Tensor) -> pd.DataFrame:
    """Every latent of a Matryoshka dictionary beyond its first prefix, linked to the latents of the
    smaller prefixes."""
    parts = [link(d, d, x, "prefix", coarse_units=range(0, lo), fine_units=range(lo, hi))
             for lo, hi in zip(prefixes, prefixes[1:])]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def prefix_levels(d_sae: int, prefixes) -> np.ndarray:
    """[d_sae]: the smallest prefix holding each latent (all d_sae without prefixes)."""
    bounds = list(prefixes) or [d_sae]
    return np.array([next(b for b in bounds if u < b) for u in range(d_sae)])


def splitting_summary(links: pd.DataFrame) -> dict:
    """How one set of links' alive children relate to their parents (decoder and co-firing)."""
    alive = links[links["child_status"] == "alive"]
    strong = alive[alive["parent_cos"] >= STRONG_PARENT_COS]
    children = strong.groupby("parent").size()
    first = links.iloc[0] if len(links) else None
    out = {
        "link": None if first is None else first["link"],
        "child_sae": None if first is None else first["child_sae"],
        "parent_sae": None if first is None else first["parent_sae"],
        "alive_children": int(len(alive)),
        "median_cos": float(alive["parent_cos"].median()) if len(alive) else None,
        "share_with_close_parent": float(len(strong) / max(len(alive), 1)),
        "parents_with_close_children": int(len(children)),
        "max_children_per_parent": int(children.max()) if len(children) else 0,
        "child_better_than_parent": float((alive["child_score"] > alive["parent_score"]).mean()) if len(alive) else None,
    }
    for prefix, key in (("parent", "decoder"), ("cofiring_parent", "cofiring")):
        explained = alive[(alive["child_score"] >= MONOSEMANTIC_SCORE) & (alive[f"{prefix}_score"] >= MONOSEMANTIC_SCORE)]
        out |= {
            f"{key}_median_coactivation": float(alive[f"{prefix}_coactivation"].median()) if len(alive) else None,
            f"{key}_share_firing_inside": float((alive[f"{prefix}_coactivation"] >= 0.5).mean()) if len(alive) else None,
            f"{key}_explained_pairs": int(len(explained)),
            f"{key}_share_refining": float(explained[f"{prefix}_refines"].mean()) if len(explained) else None,
        }
    return out
