"""What each unit (SAE feature or neuron) means: its best concept or ramp, and how well it fits.

A unit is *active* on an input where its activation exceeds its threshold (SAE features: > 0;
neurons: see `NEURON_THRESHOLD_FRACTION`). Units active on no input are *dead*, on fewer than
`ULTRALOW_DENSITY` (0.1%) of inputs *ultralow* (Bricken et al.'s term; reported apart, never
counted as alive), the rest *alive*.

Two kinds of explanation, scored on one scale in [0, 1]:

- a **concept** C (see `analysis.concepts`) explains where the unit is active. Its F1 is that of
  "active" against "C holds" (precision = P(C | active), recall = P(active | C)); its score is
  min(F1, F1 of "silent" against "C does not hold"). For the usual sparse unit the second term is
  near 1 and the score is the F1; it matters for units active on most inputs: a neuron firing on
  99.9% of inputs has F1 0.996 against the near-tautology `a - b <= 8` but explains nothing, and
  its silent side (F1 0) says so. `f1`, `precision` and `recall` are reported as they are.
- a **ramp** `ramp m | S` says the unit fires where the support condition S holds and grows with the
  ground-truth magnitude m (`a`, `b`, `a - b`, `target`; written `-a`, `-(a - b)` when it shrinks
  with m) there.
  score = min(score of S, |r|), r = Pearson correlation of the activation with m over the inputs
  where S holds and the unit is active: a ramp claims two things (where it fires, and that its size
  follows m there) and is only as good as the weaker claim. (Correlating over all of S, silent
  inputs included, would let a step-shaped unit such as `p2 = 1 & b >= 5` pass as a ramp in b.)
  Supports are the single conditions and the conjunctions that contain a pointer equality
  (`p1 = k`, `p2 = k`), the forms a pointer-gated value takes.

A ramp's score never exceeds the score of its support, so it never makes a unit look *more*
monosemantic than its best concept does; it says more about it (what the size of the activation
means). A unit is explained by its ramp when the ramp scores within RAMP_TOLERANCE (0.05) of its
best concept, unless that would drop it below 0.8 while the concept reaches it; otherwise by its
concept. So `score >= 0.8` holds exactly when the better of the two reaches 0.8, and both
candidates are kept in the table
(`concept_explanation`/`concept_f1`, `ramp_explanation`/`ramp_score`).

Everything is counted per *cell* (the joint values of p1, p2, a, b: 1600 at L = 4; see
`analysis.concepts`), so scoring U units against C concepts costs one [U, 1600] @ [1600, C] product,
whatever the number of inputs (plus [U, N] @ [N, ~200] for the digit concepts, and 15 [U, 1600] @
[1600, R] products for the ramps' correlations over the R ~1200 supports). The task (L) is read from
the inputs' width.
"""
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from analysis.concepts import (MAGNITUDES, Condition, ConceptSet, cell_ground_truth, cell_index, concept_set,
                               core_concepts, display_name)
from dataset.task import N_DIGITS, Task, task_of

MONOSEMANTIC_SCORE = 0.8       # the bar for "this unit has an explanation"
ULTRALOW_DENSITY = 1e-3        # units firing on fewer than 0.1% of inputs are ultralow
# A neuron counts as active above this fraction of its own maximum on the evaluated inputs (same
# rule for every neuron). Measured on the default MLP (fresh inputs of seed 1's analysis stream, not
# the ones labels are scored on), share of alive neurons scoring >= 0.8 for fractions
# 0 / 0.05 / 0.1 / 0.2 / 0.3 / 0.5: 9.3% / 9.1% / 8.7% / 7.6% / 6.6% / 6.0%, median score
# 0.49 / 0.49 / 0.48 / 0.46 / 0.48 / 0.40. Raising the threshold never helps the neurons (the
# two-sided score already keeps broad units from scoring on near-tautologies), so they get the
# same rule as the features, > 0: the comparison gives the neurons their best showing.
NEURON_THRESHOLD_FRACTION = 0.0
# a ramp is preferred to a concept scoring up to this much more: it also says what the size of the
# activation means (a step-shaped unit gets a ramp score ~0.2 below its concept's F1, so stays a concept)
RAMP_TOLERANCE = 0.05
MIN_RAMP_SUPPORT = 20          # active inputs inside a ramp's support needed for its correlation to count
CHUNK_UNITS = 256



def pointer_ramps(task: Task) -> tuple:
    """The pointer-to-value ramps the MLP must hold to solve the task: (magnitude, pointer condition), 2L."""
    return tuple([("a", Condition("p1", "=", k)) for k in range(task.slots)]
                 + [("b", Condition("p2", "=", k)) for k in range(task.slots)])


def pointer_ramp_names(task: Task) -> tuple:
    return tuple(f"ramp {m} | {c}" for m, c in pointer_ramps(task))


# the sign of a - b
SIGN_CONCEPTS = ("a - b >= 1", "a - b <= -1", "a - b >= 0", "a - b <= 0")
SIGN_NAME = "sign of a - b"


def cell_sum_matrix(cells: torch.Tensor, n_cells: int) -> torch.Tensor:
    """Sparse [n_cells, N] 0/1 matrix with P @ v = the sums of v [N, ...] over the inputs of each cell
    (a CSR product is ~10x faster than index_add_ here)."""
    n = len(cells)
    order = torch.from_numpy(np.argsort(cells.numpy(), kind="stable"))         # (torch.argsort is far slower here)
    crow = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(cells, minlength=n_cells).cumsum(0)])
    with warnings.catch_warnings():   # "sparse CSR support is in beta": the one op used here is tested
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(crow, order, torch.ones(n), (n_cells, n))


def _signed(name: str, r: float) -> str:
    if r >= 0:
        return name
    return f"-({name})" if " " in name else f"-{name}"


def active_mask(acts: torch.Tensor, threshold_fraction: float = 0.0) -> torch.Tensor:
    """bool [N, U]: activation > threshold_fraction * (the unit's max over these inputs), and > 0."""
    if threshold_fraction <= 0:
        return acts > 0
    thr = acts.max(0).values.clamp_min(0) * threshold_fraction                # [U]
    return (acts > thr) & (acts > 0)


@dataclass
class Explanations:
    """Per-unit results (numpy arrays of length U, in unit order) plus the matrices reports need."""
    table: pd.DataFrame                      # one row per unit (columns: see `explain_units`)
    heatmap_f1: np.ndarray                   # [U, n_heatmap] F1 against each single core condition
    heatmap_concepts: list                   # names of those columns
    core_f1: np.ndarray                      # [U, 38] F1 against the core concepts (at L = 4)
    pointer_ramp_score: np.ndarray           # [U, 2L] best ramp score of each unit for each pointer ramp
    sign_f1: np.ndarray                      # [U] best F1 against a sign-of-(a - b) concept
    truth_col: np.ndarray                    # [U] column of the explanation's concept / ramp support (-1: none)
    task: Task                               # the task of the inputs the units were scored on
    choice: dict = field(default_factory=dict)   # what was chosen per unit (concept column, ramp support
                                                 # position, magnitude and sign, ramp or concept), to score
                                                 # the same explanations on other inputs (`explain_units(chosen=)`)
    extras: dict = field(default_factory=dict)


def ramp_supports(cs: ConceptSet) -> np.ndarray:
    """Columns of `cs` a ramp may be supported on: single conditions and conjunctions holding a pointer
    equality (benchmarks/unexplained.py searches the same ones)."""
    cols = []
    for j, c in enumerate(cs.cell_concepts):
        if len(c.conditions) == 1 or any(k.var in ("p1", "p2") and k.op == "=" for k in c.conditions):
            cols.append(j)
    return np.array(cols)


@torch.no_grad()
def explain_units(acts: torch.Tensor, x: torch.Tensor, active: torch.Tensor | None = None,
                  kind: str = "feature", concepts: ConceptSet | None = None,
                  chunk: int = CHUNK_UNITS, chosen: Explanations | None = None) -> Explanations:
    """Score every unit of `acts` [N, U] (activations on inputs `x` [N, 2L+2]) against the grammar
    (`concepts`, by default the task's, the task read from x's width).

    Without `chosen`, each unit's best concept and best ramp are chosen on these inputs. With
    `chosen` (the result of a call on other inputs), the explanations chosen there are kept and only
    scored here: a score measured on the inputs it was chosen on is biased upwards by the choice among
    ~5,000 candidates, one measured on fresh inputs is not. A ramp keeps its direction: its r here is
    counted only in the chosen sign.

    `active` [N, U] bool says where each unit counts as firing (default: acts > 0).
    Table columns: unit, kind, status, density, mean_act, max_act, explanation, explanation_kind
    ("concept" | "ramp" | "none" for dead units), variables (the ground-truth variables the
    explanation uses, sorted and ';'-joined: "a;p1" for `ramp a | p1 = 2`; "" for dead units), score, precision, recall, f1, corr (ramps; NaN for
    concepts), monosemantic, concept_explanation, concept_f1, ramp_explanation, ramp_score.
    """
    task = task_of(x)
    cs = concepts or concept_set(task)
    if cs.task != task:
        raise ValueError(f"the grammar is of L = {cs.task.slots} slots, the inputs of L = {task.slots}")
    acts = acts.float()
    if active is None:
        active = acts > 0
    n, n_units = acts.shape
    gt = task.ground_truth(x)
    cells = cell_index(gt, task)                                                # [N]
    cell_count = torch.bincount(cells, minlength=task.n_cells).double()         # [n_cells]
    Tc = cs.cell_truth.float()                                                  # [n_cells, n_cell]
    # digit concepts are functions of one digit's value: count activity per (digit position, value)
    # through a one-hot [N, 20L] matrix, then map the 80 counts to the ~200 digit concepts
    digit_variables = task.digit_variables
    dig = torch.stack([gt[d] for d in digit_variables], dim=1)                  # [N, 2L]
    OH = torch.nn.functional.one_hot(dig, N_DIGITS).flatten(1).float()          # [N, 20L]
    dgt = {d: torch.arange(N_DIGITS).repeat(len(digit_variables)) for d in digit_variables}
    pos = torch.arange(len(digit_variables)).repeat_interleave(N_DIGITS)
    TDV = torch.stack([c.holds(dgt) & (pos == digit_variables.index(c.variables[0]))
                       for c in cs.digit_concepts], dim=1).float()             # [20L, n_digit]
    n_true = torch.cat([cell_count.float() @ Tc, OH.sum(0) @ TDV])             # [C]

    sup = torch.as_tensor(ramp_supports(cs))                                   # [R] columns usable as ramp supports
    TS = cs.cell_truth[:, sup].float()                                          # [n_cells, R]
    cgt = cell_ground_truth(task)
    # magnitudes per cell, shifted to mean ~0 (a correlation ignores shifts; it keeps float32 sums exact enough)
    mag = torch.stack([cgt[m].double() - cgt[m].double().mean() for m in MAGNITUDES], dim=1)   # [n_cells, n_mag]
    n_mag = len(MAGNITUDES)
    # [n_cells, N] sparse 0/1 matrix: P @ v sums v over the inputs of each cell (much faster than index_add_)
    P = cell_sum_matrix(cells, task.n_cells)                                    # [n_cells, N]

    heat_cols = [j for j in range(cs.n_cell) if cs.is_single[j]]
    core_cols = [cs.column(c) for c in core_concepts(task)]
    ramps = pointer_ramps(task)
    sign_cols = [cs.column(c) for c in SIGN_CONCEPTS]
    # [R, 8]: which supports contain each pointer ramp's pointer condition
    has_ptr = torch.tensor([[cond in cs.cell_concepts[int(j)].conditions for _, cond in ramps] for j in sup])
    ptr_mag = [MAGNITUDES.index(m) for m, _ in ramps]
    ptr_cols = [torch.nonzero(has_ptr[:, j]).flatten() for j in range(len(ramps))]

    out = {k: np.zeros(n_units) for k in ("n_active", "concept_score", "concept_f1", "concept_prec", "concept_rec",
                                           "ramp_score", "ramp_f1", "ramp_prec", "ramp_rec", "ramp_r")}
    concept_col = np.zeros(n_units, int)
    ramp_sup = np.zeros(n_units, int)
    ramp_pos = np.zeros(n_units, int)                                           # index into `sup`
    ramp_mag = np.zeros(n_units, int)
    heat, core, pr_score, sign = [], [], [], []
    for u0 in range(0, n_units, chunk):
        A = active[:, u0:u0 + chunk].float()                                    # [N, Uc]
        uc = A.shape[1]
        sl = slice(u0, u0 + uc)
        K = P @ A                                                               # [n_cells, Uc] active inputs per cell
        TP = torch.cat([K.T @ Tc, (A.T @ OH) @ TDV], dim=1)                     # [Uc, C]
        n_act = A.sum(0)                                                        # [Uc]
        F1 = 2 * TP / (n_act[:, None] + n_true[None, :]).clamp_min(1)           # [Uc, C]  where it fires
        TN = n - n_act[:, None] - n_true[None, :] + TP
        F1_off = 2 * TN / ((n - n_act)[:, None] + (n - n_true)[None, :]).clamp_min(1)   # where it is silent
        SC = torch.minimum(F1, F1_off)                                          # [Uc, C] two-sided score
        del TN, F1_off
        if chosen is None:
            best_sc, best = SC.max(1)
        else:
            best = torch.as_tensor(chosen.choice["concept_col"][sl])
            best_sc = SC.gather(1, best[:, None]).squeeze(1)
        out["n_active"][sl] = n_act.numpy()
        out["concept_score"][sl] = best_sc.numpy()
        out["concept_f1"][sl] = F1.gather(1, best[:, None]).squeeze(1).numpy()
        tp_best = TP.gather(1, best[:, None]).squeeze(1)
        out["concept_prec"][sl] = (tp_best / n_act.clamp_min(1)).numpy()
        out["concept_rec"][sl] = (tp_best / n_true[best].clamp_min(1)).numpy()
        concept_col[sl] = best.numpy()
        heat.append(F1[:, heat_cols].numpy())
        core.append(F1[:, core_cols].numpy())
        sign.append(F1[:, sign_cols].max(1).values.numpy())

        # ramps: correlation of the activation with each magnitude over the inputs where the support
        # holds and the unit is active. Per-cell sums (activation centred on the unit's mean, in float64),
        # then one float32 product sums them over every support's cells.
        a = acts[:, u0:u0 + uc] * A                                             # [N, Uc], 0 where silent
        Kd = K.double()
        S1, S2 = (P @ a).double(), (P @ (a * a)).double()                       # [n_cells, Uc]
        mu = S1.sum(0) / Kd.sum(0).clamp_min(1)                                 # [Uc]
        S1c = S1 - mu * Kd                                                      # sums of (a - mu)
        S2c = S2 - 2 * mu * S1 + mu ** 2 * Kd                                   # sums of (a - mu)^2
        parts = [Kd, S1c, S2c] + [Kd * mag[:, i:i + 1] for i in range(n_mag)] \
            + [Kd * mag[:, i:i + 1] ** 2 for i in range(n_mag)] + [S1c * mag[:, i:i + 1] for i in range(n_mag)]
        sums = (torch.cat(parts, dim=1).float().T @ TS).view(3 + 3 * n_mag, uc, -1)   # [., Uc, R]
        nA = sums[0]
        nAc = nA.clamp_min(1)
        mean_a = sums[1] / nAc
        var_a = sums[2] / nAc - mean_a ** 2                                     # [Uc, R]
        mean_M = sums[3:3 + n_mag] / nAc                                        # [n_mag, Uc, R]
        var_M = sums[3 + n_mag:3 + 2 * n_mag] / nAc - mean_M ** 2
        cov = sums[3 + 2 * n_mag:] / nAc - mean_a * mean_M
        ok = (nA >= MIN_RAMP_SUPPORT) & (var_a > 1e-5 * (mean_a ** 2 + mu.float()[:, None] ** 2 + 1e-12)) & (var_M > 1e-5)
        r = torch.where(ok, cov / (var_a.clamp_min(0) * var_M.clamp_min(0)).sqrt().clamp_min(1e-30),
                        torch.zeros_like(cov)).clamp(-1, 1).permute(1, 2, 0)    # [Uc, R, n_mag]
        score = torch.minimum(SC[:, sup][:, :, None], r.abs())                  # [Uc, R, n_mag]
        if chosen is None:
            best_score, best_idx = score.reshape(uc, -1).max(1)
        else:                                                                   # the chosen support, magnitude, sign
            best_idx = torch.as_tensor(chosen.choice["ramp_pos"][sl] * n_mag + chosen.choice["ramp_mag"][sl])
            r_kept = r.reshape(uc, -1).gather(1, best_idx[:, None]).squeeze(1) * torch.as_tensor(
                chosen.choice["ramp_sign"][sl], dtype=r.dtype)
            best_score = torch.minimum(SC[:, sup].reshape(uc, -1).repeat_interleave(n_mag, 1).gather(
                1, best_idx[:, None]).squeeze(1), r_kept.clamp_min(0))
        s_idx, m_idx = best_idx // n_mag, best_idx % n_mag
        sup_col = sup[s_idx]                                                    # [Uc] concept columns
        out["ramp_score"][sl] = best_score.numpy()
        out["ramp_r"][sl] = r.reshape(uc, -1).gather(1, best_idx[:, None]).squeeze(1).numpy()
        tp_r = TP.gather(1, sup_col[:, None]).squeeze(1)
        out["ramp_f1"][sl] = F1.gather(1, sup_col[:, None]).squeeze(1).numpy()
        out["ramp_prec"][sl] = (tp_r / n_act.clamp_min(1)).numpy()
        out["ramp_rec"][sl] = (tp_r / n_true[sup_col].clamp_min(1)).numpy()
        ramp_sup[sl] = sup_col.numpy()
        ramp_pos[sl] = s_idx.numpy()
        ramp_mag[sl] = m_idx.numpy()
        pr_score.append(torch.stack([score[:, cols, mi].max(1).values for cols, mi in zip(ptr_cols, ptr_mag)],
                                    dim=1).numpy())                             # [Uc, 8]
        del F1, SC, TP, sums, score, r

    # activation statistics
    act_pos = torch.where(active, acts, torch.zeros_like(acts))
    n_act = out["n_active"]
    density = n_act / max(n, 1)
    mean_act = np.where(n_act > 0, act_pos.sum(0).double().numpy() / np.maximum(n_act, 1), np.nan)
    max_act = acts.max(0).values.numpy() if n else np.full(n_units, np.nan)
    status = np.where(n_act == 0, "dead", np.where(density < ULTRALOW_DENSITY, "ultralow", "alive"))

    concept_names = [cs.names[j] for j in concept_col]
    ramp_sign = np.where(out["ramp_r"] < 0, -1.0, 1.0) if chosen is None else chosen.choice["ramp_sign"]
    ramp_names = [f"ramp {_signed(display_name(MAGNITUDES[mi]), sg)} | {cs.names[s]}"
                  for sg, mi, s in zip(ramp_sign, ramp_mag, ramp_sup)]
    # the ground-truth variables each explanation uses, as data (the interchange test groups by them)
    concept_vars = [set(cs.concepts[j].variables) for j in concept_col]
    ramp_vars = [set(cs.concepts[s].variables) | {MAGNITUDES[mi]} for mi, s in zip(ramp_mag, ramp_sup)]
    rs, cf = out["ramp_score"], out["concept_score"]
    if chosen is None:
        use_ramp = ((rs > 0) & (rs >= cf - RAMP_TOLERANCE)
                    & ((rs >= MONOSEMANTIC_SCORE) | (cf < MONOSEMANTIC_SCORE)))
        # a unit silent on the choosing inputs has no explanation to carry over
        explained = n_act > 0
    else:
        use_ramp, explained = chosen.choice["use_ramp"], chosen.choice["explained"]
    dead = status == "dead"
    unexplained = dead | ~explained
    none = unexplained
    table = pd.DataFrame({
        "unit": np.arange(n_units),
        "kind": kind,
        "status": status,
        "density": density,
        "mean_act": mean_act,
        "max_act": max_act,
        "explanation": np.where(none, "", np.where(use_ramp, ramp_names, concept_names)),
        "explanation_kind": np.where(none, "none", np.where(use_ramp, "ramp", "concept")),
        "variables": ["" if d else ";".join(sorted(rv if r else cv))
                      for d, r, rv, cv in zip(none, use_ramp, ramp_vars, concept_vars)],
        "score": np.where(none, np.nan, np.where(use_ramp, out["ramp_score"], out["concept_score"])),
        "precision": np.where(none, np.nan, np.where(use_ramp, out["ramp_prec"], out["concept_prec"])),
        "recall": np.where(none, np.nan, np.where(use_ramp, out["ramp_rec"], out["concept_rec"])),
        "f1": np.where(none, np.nan, np.where(use_ramp, out["ramp_f1"], out["concept_f1"])),
        "corr": np.where(use_ramp & ~none, out["ramp_r"], np.nan),
    })
    table["monosemantic"] = (table["status"] == "alive") & (table["score"] >= MONOSEMANTIC_SCORE)
    table["concept_explanation"] = np.where(none, "", concept_names)
    table["concept_score"] = np.where(none, np.nan, out["concept_score"])
    table["concept_f1"] = np.where(none, np.nan, out["concept_f1"])
    table["ramp_explanation"] = np.where(none | (out["ramp_score"] <= 0), "", ramp_names)
    table["ramp_score"] = np.where(none, np.nan, out["ramp_score"])
    truth_col = np.where(none, -1, np.where(use_ramp, ramp_sup, concept_col))
    choice = {"concept_col": concept_col, "ramp_pos": ramp_pos, "ramp_mag": ramp_mag, "ramp_sign": ramp_sign,
              "use_ramp": use_ramp, "explained": explained}
    return Explanations(
        table=table,
        heatmap_f1=np.concatenate(heat) if heat else np.zeros((0, len(heat_cols))),
        heatmap_concepts=[cs.names[j] for j in heat_cols],
        core_f1=np.concatenate(core) if core else np.zeros((0, len(core_cols))),
        pointer_ramp_score=np.concatenate(pr_score) if pr_score else np.zeros((0, len(ramps))),
        sign_f1=np.concatenate(sign) if sign else np.zeros(0),
        truth_col=truth_col,
        task=task,
        choice=choice,
    )


def held_out(acts_choose: torch.Tensor, x_choose: torch.Tensor, acts: torch.Tensor, x: torch.Tensor,
             kind: str = "feature", threshold_fraction: float = 0.0,
             concepts: ConceptSet | None = None) -> Explanations:
    """Every unit's explanation chosen on (acts_choose, x_choose) and scored on (acts, x), other fresh
    inputs: how every set of units (features, neurons, random directions) is labelled."""
    chosen = explain_units(acts_choose, x_choose, active=active_mask(acts_choose, threshold_fraction), kind=kind,
                           concepts=concepts)
    return explain_units(acts, x, active=active_mask(acts, threshold_fraction), kind=kind, concepts=concepts,
                         chosen=chosen)


def split_aware(acts_choose: torch.Tensor, x_choose: torch.Tensor, acts: torch.Tensor, x: torch.Tensor,
                kind: str = "feature", threshold_fraction: float = 0.0) -> pd.DataFrame:
    """The split-aware grammar's held-out explanation (`held_out` with `concept_set(pointer_pairs=True)`)
    of every unit that fires on the choosing inputs; the others get none. Columns split_explanation and
    split_score, one row per unit. Only the firing units are scored (a 2048-latent dictionary leaves most of them silent)."""
    n_units = acts.shape[1]
    idx = torch.nonzero(active_mask(acts_choose, threshold_fraction).any(0)).flatten()
    explanation, score = np.full(n_units, "", dtype=object), np.full(n_units, np.nan)
    if len(idx):
        ex = held_out(acts_choose[:, idx], x_choose, acts[:, idx], x, kind, threshold_fraction,
                      concept_set(task_of(x), pointer_pairs=True))
        explanation[idx.numpy()] = ex.table["explanation"].to_numpy()
        score[idx.numpy()] = ex.table["score"].to_numpy()
    return pd.DataFrame({"split_explanation": explanation, "split_score": score})


def summarize(ex: Explanations, prefix: str) -> dict:
    """Counts, monosemantic share and median score of the alive units, as `<prefix>_...` keys; with the
    split-aware grammar's share where the table has its columns (`split_aware`), and the share if
    ultralow units counted (alive or ultralow, score >= 0.8, of the alive and ultralow ones)."""
    t = ex.table
    alive = t["status"] == "alive"
    rare = alive | (t["status"] == "ultralow")
    out = {f"{prefix}_monosemantic_share_with_ultralow":
           float((rare & (t["score"] >= MONOSEMANTIC_SCORE)).sum() / max(int(rare.sum()), 1))}
    if "split_score" in t:
        split = alive & (t["split_score"] >= MONOSEMANTIC_SCORE)
        out[f"{prefix}_split_monosemantic"] = int(split.sum())
        out[f"{prefix}_split_monosemantic_share"] = float(split.sum() / max(int(alive.sum()), 1))
    return out | {
        f"{prefix}_alive": int(alive.sum()),
        f"{prefix}_ultralow": int((t["status"] == "ultralow").sum()),
        f"{prefix}_dead": int((t["status"] == "dead").sum()),
        f"{prefix}_monosemantic": int(t["monosemantic"].sum()),
        f"{prefix}_monosemantic_share": float(t["monosemantic"].sum() / max(int(alive.sum()), 1)),
        f"{prefix}_median_score": float(t.loc[alive, "score"].median()) if alive.any() else float("nan"),
        f"{prefix}_ramp_explained": int((alive & (t["explanation_kind"] == "ramp")).sum()),
    }


def found_targets(ex: Explanations) -> dict:
    """Which pointer ramps / sign of a - b / core concepts an alive unit carries at score >= 0.8, with
    the best unit and score of each."""
    alive = (ex.table["status"] == "alive").to_numpy()

    def best(col_scores):
        s = np.where(alive, col_scores, -1.0)
        if not len(s) or s.max() < 0:
            return {"unit": None, "score": None}
        u = int(s.argmax())
        return {"unit": u, "score": round(float(s[u]), 4)}

    ramps = {name: best(ex.pointer_ramp_score[:, i]) for i, name in enumerate(pointer_ramp_names(ex.task))}
    ramps[SIGN_NAME] = best(ex.sign_f1)
    core = {name: best(ex.core_f1[:, i]) for i, name in enumerate(core_concepts(ex.task))}
    ok = lambda d: [k for k, v in d.items() if v["score"] is not None and v["score"] >= MONOSEMANTIC_SCORE]
    return {"ramps_found": ok(ramps), "ramps_best": ramps, "core_found": ok(core), "core_best": core}
