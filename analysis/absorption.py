"""Feature absorption measured against the ground truth: where a unit for a general concept goes silent
on a sub-case that a unit for the sub-case has taken over (Chanin et al. 2024, "A is for Absorption").

The task has exact hierarchies (`hierarchies_of(task)`): a *parent* concept whose *children* split its inputs
into disjoint sub-cases.
- pointer: `p1 = k` with children `p1 = k & p2 = j` (j = 0..3), and `p2 = k` with `p1 = j & p2 = k`;
- sign: `a - b >= 1` (a > b) with children `a - b = v` (v = 1..9), `a - b <= -1` with v = -1..-9;
- target: `target >= t` (t = 1..8) with children `target = v` (v = t..9).
(The pointer-gated ramps `ramp a | p1 = k` fire on the pointer family's parents, so they are measured
there; a ramp is a claim about size, which absorption is not.)

For one set of units (an SAE's features, the neurons, random directions at the features' densities),
chosen on one stream of fresh inputs ("explain") and measured on another ("analysis"), the held-out
rule of every label:
- the parent's **unit**: of the units firing on at least 0.1% of inputs (not ultralow) with precision
  P(parent | unit fires) >= PRECISE (0.8; and at least halfway from the parent's base rate to 1), the
  one of highest F1 against the parent (the issue's rule; SAEBench picks "main latents" by k-sparse
  probing against a probe that estimates the concept). A parent no unit is precise for is *not
  represented* and left out of the shares.
- a child's **units**: every other such unit precise for the child (the same bar): units that live
  inside the child (a unit for a sub-case of the child counts).
- the parent unit's *level* on an input: its activation over its typical activation (the median where
  it fires and the parent holds, on the choosing inputs), capped at 1; 0 where it is silent.

On every input where the parent holds (it lies in exactly one child):
- **full absorption**: the parent's unit is silent and a unit of the input's child fires
  (SAEBench: the main latents are silent and an absorbing latent carries the probe projection);
- **partial absorption**: 1 - parent level where a unit of the input's child fires, else 0: the part of
  the parent's typical firing that is missing where a child's unit fires instead (SAEBench's
  absorption fraction, with the parent's typical firing in place of the probe's projection). Full
  absorption counts 1 here, so partial >= full.
A parent's shares are means over its inputs; a family's pools its represented parents' inputs; the
headline (`<set>_absorption_full`, `_partial`) is the mean of the families' shares (each hierarchy kind counts once: the target family has the most
parents). A child is *absorbed* (the issue's stricter per-child rule) when the parent's unit's recall on
it is < 0.5 while the median over its siblings is >= 0.8, and at least half of its inputs are fully
absorbed.

What ground truth makes exact: the parent and child sets are known (SAEBench labels tokens by a
trained probe, whose errors count as absorption or hide it), the children of a parent are known (it
keeps latents whose decoder has a positive cosine with the probe), and a unit's meaning is read from
where it fires, so the neurons and random directions are measured by the same function.

`absorbed_by` is the per-feature view the feature cards show: for each unit with an explanation, the
other units, precise for that explanation, that fire where it holds and the unit is silent.
"""
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from analysis.concepts import explanation_truth
from analysis.explain import ULTRALOW_DENSITY, active_mask
from dataset.task import N_DIGITS, Task, task_of

PRECISE = 0.8            # P(concept | unit fires) for a unit to stand for a concept
ABSORBED_RECALL = 0.5    # per-child rule: the parent's unit's recall on the child below this ...
SIBLING_RECALL = 0.8     # ... while its median recall on the siblings is at least this
MIN_HOLE_COVER = 0.1     # absorbed_by: a unit listed fires on at least this share of the hole
MAX_ABSORBERS = 3        # absorbed_by: at most this many units listed per feature
UNIT_SETS = ("features", "neurons", "random_directions")    # the summary prefixes of analysis.labels


@dataclass(frozen=True)
class Hierarchy:
    family: str
    parent: str
    children: tuple          # concept names; their truth sets partition the parent's


@lru_cache(maxsize=None)
def hierarchies_of(task: Task) -> tuple:
    """The task's hierarchies: each pointer value over its L pointer pairs, the signs of a - b, the targets."""
    out = []
    for p, q in (("p1", "p2"), ("p2", "p1")):
        for k in range(task.slots):
            kids = tuple(f"p1 = {k} & p2 = {j}" if p == "p1" else f"p1 = {j} & p2 = {k}" for j in range(task.slots))
            out.append(Hierarchy("pointer", f"{p} = {k}", kids))
    out.append(Hierarchy("sign", "a - b >= 1", tuple(f"a - b = {v}" for v in range(1, N_DIGITS))))
    out.append(Hierarchy("sign", "a - b <= -1", tuple(f"a - b = {-v}" for v in range(1, N_DIGITS))))
    for t in range(1, N_DIGITS - 1):
        out.append(Hierarchy("target", f"target >= {t}", tuple(f"target = {v}" for v in range(t, N_DIGITS))))
    return tuple(out)


FAMILIES = ("pointer", "sign", "target")


def _precision_f1(active: torch.Tensor, truth: torch.Tensor):
    """(precision, F1) [U, K] of each unit's firing (bool [n, U]) against each concept (bool [n, K])."""
    tp = active.float().T @ truth.float()                                       # [U, K]
    n_act, n_true = active.sum(0).float(), truth.sum(0).float()
    return tp / n_act.clamp_min(1)[:, None], 2 * tp / (n_act[:, None] + n_true[None, :]).clamp_min(1)


def _precise_bar(truth: torch.Tensor) -> torch.Tensor:
    """[K]: the precision a unit needs to stand for each concept (bool [n, K]): PRECISE, and at least
    halfway from the concept's base rate to 1, so that a unit firing at random on a concept true on
    90% of inputs (`target >= 1`) does not stand for it."""
    return torch.clamp((1 + truth.float().mean(0)) / 2, min=PRECISE)


def _typical(acts: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """[U]: the median of each unit's activation over the inputs `where` [n, U] marks (1 where none)."""
    a = torch.where(where, acts.float(), torch.full_like(acts, float("nan"), dtype=torch.float))
    med = a.nanmedian(0).values
    return torch.where(torch.isfinite(med) & (med > 0), med, torch.ones_like(med))


@dataclass
class Absorption:
    """One unit set's absorption: one row per (parent, child) in `table` (see `absorption`)."""
    table: pd.DataFrame

    def summary(self, prefix: str) -> dict:
        """`<prefix>_absorption_*` keys: full and partial shares overall and per family, parents
        represented, absorbed children (see module docstring)."""
        t = self.table
        rep = t[t["parent_unit"] >= 0]
        out = {f"{prefix}_absorption_parents": int(t["parent"].nunique()),
               f"{prefix}_absorption_parents_represented": int(rep["parent"].nunique()),
               f"{prefix}_absorption_absorbed_children": int(rep["absorbed"].sum())}
        for kind in ("full", "partial"):
            shares = {}
            for fam in FAMILIES:
                f = rep[rep["family"] == fam]
                n = f["n_inputs"].sum()
                shares[fam] = float((f[kind] * f["n_inputs"]).sum() / n) if n > 0 else None
                out[f"{prefix}_absorption_{kind}_{fam}"] = shares[fam]
            known = [v for v in shares.values() if v is not None]
            out[f"{prefix}_absorption_{kind}"] = float(np.mean(known)) if known else None
        return out


@torch.no_grad()
def absorption(acts_choose: torch.Tensor, x_choose: torch.Tensor, acts: torch.Tensor, x: torch.Tensor,
               threshold_fraction: float = 0.0, hierarchies=None) -> Absorption:
    """Absorption of one set of units (activations [n, U] on inputs x [n, 2L+2]; by default the hierarchies of their task): units chosen on
    (acts_choose, x_choose), measured on (acts, x) (see module docstring). `threshold_fraction`: where a
    unit counts as firing (`analysis.explain.active_mask`; the neurons' rule).

    Table columns: family, parent, child, parent_unit (-1: not represented), parent_f1, parent_precision
    (choosing inputs), child_units (';'-joined), n_inputs (the child's inputs on the measuring stream),
    parent_recall (share of them the parent's unit fires on), full, partial (means over them), absorbed."""
    hierarchies = hierarchies_of(task_of(x)) if hierarchies is None else hierarchies
    names = sorted({h.parent for h in hierarchies} | {c for h in hierarchies for c in h.children})
    col = {name: j for j, name in enumerate(names)}
    acts_choose, acts = acts_choose.float(), acts.float()
    A_c, A = active_mask(acts_choose, threshold_fraction), active_mask(acts, threshold_fraction)  # [n, U] bool
    T_c, T = explanation_truth(names, x_choose), explanation_truth(names, x)                            # [n, K] bool
    prec, f1 = _precision_f1(A_c, T_c)                                                          # [U, K]
    usable = A_c.float().mean(0) >= ULTRALOW_DENSITY                                            # [U]
    precise = (prec >= _precise_bar(T_c)) & usable[:, None]                                     # [U, K]
    rows = []
    for h in hierarchies:
        p = col[h.parent]
        score = torch.where(precise[:, p], f1[:, p], torch.full_like(f1[:, p], -1.0))
        u = int(score.argmax()) if len(score) and score.max() >= 0 else -1
        inside = torch.nonzero(T[:, p]).flatten()                                               # [n_p]
        A_p = A[inside]                                                                         # [n_p, U]
        if u >= 0:
            where = A_c[:, u] & T_c[:, p]
            typ = _typical(acts_choose[:, u:u + 1], where[:, None])[0]
            parent_level = (torch.where(A_p[:, u], acts[inside, u], 0.0) / typ).clamp(max=1)     # [n_p]
        for c in h.children:
            k = col[c]
            on = T[inside, k]                                                                   # [n_p]
            n_in = int(on.sum())
            kids = [v for v in torch.nonzero(precise[:, k]).flatten().tolist() if v != u]
            row = {"family": h.family, "parent": h.parent, "child": c, "parent_unit": u,
                   "parent_f1": float(f1[u, p]) if u >= 0 else np.nan,
                   "parent_precision": float(prec[u, p]) if u >= 0 else np.nan,
                   "child_units": ";".join(map(str, kids)), "n_inputs": n_in,
                   "parent_recall": np.nan, "full": np.nan, "partial": np.nan}
            if u >= 0 and n_in:
                silent = ~A_p[on, u]
                child_fires = A_p[on][:, kids].any(1)                                           # [n_in]
                row |= {"parent_recall": float((~silent).float().mean()),
                        "full": float((silent & child_fires).float().mean()),
                        "partial": float(((1 - parent_level[on]) * child_fires).mean())}
            rows.append(row)
    table = pd.DataFrame(rows)
    table["absorbed"] = False
    for _, grp in table[table["parent_unit"] >= 0].groupby("parent", sort=False):
        recall, full = grp["parent_recall"].to_numpy(), grp["full"].to_numpy()
        for j, i in enumerate(grp.index):
            siblings = np.delete(recall, j)
            table.loc[i, "absorbed"] = bool(recall[j] < ABSORBED_RECALL and np.median(siblings) >= SIBLING_RECALL
                                            and full[j] >= 0.5)
    return Absorption(table=table)


def absorption_line(summary: dict, prefixes=UNIT_SETS) -> str:
    """Full / partial absorption of each unit set in `summary`, with the parents represented, as one
    line: "features 0.112/0.158 (14/18), neurons ..."."""
    parts = []
    for p in prefixes:
        if f"{p}_absorption_parents" in summary:
            parts.append(f"{p.replace('_', ' ')} {_share(summary.get(f'{p}_absorption_full'))}/"
                         f"{_share(summary.get(f'{p}_absorption_partial'))} ({summary[f'{p}_absorption_parents_represented']}"
                         f"/{summary[f'{p}_absorption_parents']})")
    return ", ".join(parts)


def _share(v) -> str:
    return "-" if v is None else f"{v:.3f}"


@torch.no_grad()
def absorbed_by(acts_choose: torch.Tensor, acts: torch.Tensor, truth_choose: torch.Tensor,
                truth: torch.Tensor, ids=None) -> pd.DataFrame:
    """For each unit u (one column of acts [n, U]) whose explanation holds where truth [n, U] says
    (truth_choose on the choosing inputs acts_choose [n', U]; an all-false column: no explanation): its
    *hole*, the inputs where the explanation holds and u is silent, and the units that fill it: units
    v != u firing on at least 0.1% of the choosing inputs, precise for u's explanation there (`_precise_bar`)
    there (v lives inside u's concept) that fire on at least MIN_HOLE_COVER of the hole; at most
    MAX_ABSORBERS, the most covering first. `ids` [U]: the units' numbers as reported (default 0..U-1).
    Columns: hole_share (hole / inputs where the explanation holds; NaN without one), absorbed_by
    ("v:cover" pairs, ' '-joined, v from `ids`)."""
    n_units = acts.shape[1]
    ids = np.arange(n_units) if ids is None else np.asarray(ids)
    A_c, A = acts_choose > 0, acts > 0                                               # [n', U], [n, U]
    hole = truth & ~A                                                                # [n, U]
    n_true, n_hole = truth.sum(0).float(), hole.sum(0).float()                       # [U]
    prec, _ = _precision_f1(A_c, truth_choose)                                       # [V=U, U]
    usable = A_c.float().mean(0) >= ULTRALOW_DENSITY                                 # [V]
    cover = (A.float().T @ hole.float()) / n_hole.clamp_min(1)[None, :]               # [V, U]
    ok = (prec >= _precise_bar(truth_choose)) & usable[:, None] & (cover >= MIN_HOLE_COVER) & ~torch.eye(n_units, dtype=torch.bool)
    cover = torch.where(ok, cover, torch.zeros_like(cover))
    listed = [""] * n_units
    if n_units:
        top_val, top_idx = cover.topk(min(MAX_ABSORBERS, n_units), dim=0)           # [k, U]
        listed = [" ".join(f"{int(ids[i])}:{float(v):.2f}" for v, i in zip(top_val[:, u], top_idx[:, u]) if v > 0)
                  for u in range(n_units)]
    share = torch.where(n_true > 0, n_hole / n_true.clamp_min(1), torch.full_like(n_true, float("nan")))
    return pd.DataFrame({"hole_share": share.numpy(), "absorbed_by": listed})
