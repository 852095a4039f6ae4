"""What each unit (SAE feature or neuron) means: its best concept or ramp, and how well it fits.

A unit is *active* on an input where its activation exceeds its threshold (SAE features: > 0;
neurons: see `NEURON_THRESHOLD_FRACTION`). Units active on no input are *dead*, on fewer than
`ULTRALOW_DENSITY` (0.1%) of inputs *ultralow* (Bricken et al.'s term; reported apart, never
counted as alive), the rest *alive*.

Two kinds of explanation, scored on one scale in [0, 1]:

- a **concept** C (see `analysis.concepts`) explains where the unit is active; score = F1 of
  "active" against "C holds" (precision = P(C | active), recall = P(active | C)).
- a **ramp** `ramp m | S` says the unit fires where the support condition S holds and grows with the
  ground-truth magnitude m (`a`, `b`, `a - b`, `target`; written `-a`, `-(a - b)` when it shrinks
  with m) there.
  score = min(F1 of S, |r|), r = Pearson correlation of the activation with m over the inputs
  where S holds and the unit is active: a ramp claims two things (where it fires, and that its size
  follows m there) and is only as good as the weaker claim. (Correlating over all of S, silent
  inputs included, would let a step-shaped unit such as `p2 = 1 & b >= 5` pass as a ramp in b.)
  Supports are the single conditions and the conjunctions that contain a pointer equality
  (`p1 = k`, `p2 = k`), the forms a pointer-gated value takes.

A ramp's score never exceeds the F1 of its support, so it never makes a unit look *more*
monosemantic than its best concept does; it says more about it (what the size of the activation
means). A unit is explained by its ramp when the ramp scores within RAMP_TOLERANCE (0.05) of its
best concept, unless that would drop it below 0.8 while the concept reaches it; otherwise by its
concept. So `score >= 0.8` holds exactly when the better of the two reaches 0.8, and both
candidates are kept in the table
(`concept_explanation`/`concept_f1`, `ramp_explanation`/`ramp_score`).

Everything is counted per *cell* (the 1600 joint values of p1, p2, a, b; see `analysis.concepts`),
so scoring U units against C concepts costs one [U, 1600] @ [1600, C] product, whatever the number
of inputs.
"""
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from analysis.concepts import (MAGNITUDES, N_CELLS, Condition, ConceptSet, cell_ground_truth, cell_index,
                               concept_set, display_name)
from dataset.data_generator import N_SLOTS, ground_truth

MONOSEMANTIC_SCORE = 0.8       # the bar for "this unit has an explanation"
ULTRALOW_DENSITY = 1e-3        # units firing on fewer than 0.1% of inputs are ultralow
# Neurons are post-ReLU and positive on about half of all inputs, so "> 0" makes every neuron look
# like a broad half-space. A neuron counts as active above this fraction of its own maximum on the
# evaluated inputs (same rule for every neuron). Chosen by measurement (README, "Explanations"):
# of 0, 0.1, 0.2, 0.3, 0.5 it gives the neurons their highest share of units scoring >= 0.8.
NEURON_THRESHOLD_FRACTION = 0.2
# a ramp is preferred to a concept scoring up to this much more: it also says what the size of the
# activation means (a step-shaped unit gets a ramp score ~0.2 below its concept's F1, so stays a concept)
RAMP_TOLERANCE = 0.05
MIN_RAMP_SUPPORT = 20          # active inputs inside a ramp's support needed for its correlation to count
CHUNK_UNITS = 512

# the pointer-to-value ramps the MLP must hold to solve the task, and the sign of a - b
POINTER_RAMPS = tuple([("a", Condition("p1", "=", k)) for k in range(N_SLOTS)]
                      + [("b", Condition("p2", "=", k)) for k in range(N_SLOTS)])
POINTER_RAMP_NAMES = tuple(f"ramp {m} | {c}" for m, c in POINTER_RAMPS)
SIGN_CONCEPTS = ("a - b >= 1", "a - b <= -1", "a - b >= 0", "a - b <= 0")
SIGN_NAME = "sign of a - b"


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
    core_f1: np.ndarray                      # [U, 38] F1 against the core concepts
    pointer_ramp_score: np.ndarray           # [U, 8] best ramp score of each unit for each pointer ramp
    sign_f1: np.ndarray                      # [U] best F1 against a sign-of-(a - b) concept
    truth_col: np.ndarray                    # [U] column of the explanation's concept / ramp support (-1: none)
    extras: dict = field(default_factory=dict)


def _ramp_supports(cs: ConceptSet) -> np.ndarray:
    cols = []
    for j, c in enumerate(cs.cell_concepts):
        if len(c.conditions) == 1 or any(k.var in ("p1", "p2") and k.op == "=" for k in c.conditions):
            cols.append(j)
    return np.array(cols)


@torch.no_grad()
def explain_units(acts: torch.Tensor, x: torch.Tensor, active: torch.Tensor | None = None,
                  kind: str = "feature", concepts: ConceptSet | None = None,
                  chunk: int = CHUNK_UNITS) -> Explanations:
    """Score every unit of `acts` [N, U] (activations on inputs `x` [N, 10]) against the grammar.

    `active` [N, U] bool says where each unit counts as firing (default: acts > 0).
    Table columns: unit, kind, status, density, mean_act, max_act, explanation, explanation_kind
    ("concept" | "ramp" | "none" for dead units), score, precision, recall, f1, corr (ramps; NaN for
    concepts), monosemantic, concept_explanation, concept_f1, ramp_explanation, ramp_score.
    """
    from analysis.concepts import CORE_CONCEPTS

    cs = concepts or concept_set()
    acts = acts.float()
    if active is None:
        active = acts > 0
    n, n_units = acts.shape
    gt = ground_truth(x)
    cells = cell_index(gt)                                                      # [N]
    cell_count = torch.bincount(cells, minlength=N_CELLS).double()              # [1600]
    Tc = cs.cell_truth.float()                                                  # [1600, n_cell]
    Td = cs.digit_truth(gt).float()                                             # [N, n_digit]
    n_true = torch.cat([cell_count.float() @ Tc, Td.sum(0)])                    # [C]

    sup = _ramp_supports(cs)                                                    # [R]
    TS = cs.cell_truth[:, sup].double()                                         # [1600, R]
    cgt = cell_ground_truth()
    mag = {m: cgt[m].double() for m in MAGNITUDES}

    heat_cols = [j for j in range(cs.n_cell) if cs.is_single[j]]
    core_cols = [cs.column(c) for c in CORE_CONCEPTS]
    sign_cols = [cs.column(c) for c in SIGN_CONCEPTS]
    sup_pos = {j: i for i, j in enumerate(sup)}
    pr_cols = []                                                                # per pointer ramp: (support idx, magnitude idx)
    for m, cond in POINTER_RAMPS:
        idx = [sup_pos[j] for j in sup if cond in cs.cell_concepts[j].conditions]
        pr_cols.append((np.array(idx), MAGNITUDES.index(m)))

    out = {k: np.zeros(n_units) for k in ("n_active", "concept_f1", "concept_prec", "concept_rec",
                                           "ramp_score", "ramp_f1", "ramp_prec", "ramp_rec", "ramp_r")}
    concept_col = np.zeros(n_units, int)
    ramp_sup = np.zeros(n_units, int)
    ramp_mag = np.zeros(n_units, int)
    heat, core, pr_score, sign = [], [], [], []
    for u0 in range(0, n_units, chunk):
        A = active[:, u0:u0 + chunk].float()                                    # [N, Uc]
        uc = A.shape[1]
        K = torch.zeros(N_CELLS, uc).index_add_(0, cells, A)                    # [1600, Uc] active counts per cell
        TP = torch.cat([K.T @ Tc, A.T @ Td], dim=1)                             # [Uc, C]
        n_act = A.sum(0)                                                        # [Uc]
        F1 = 2 * TP / (n_act[:, None] + n_true[None, :]).clamp_min(1)           # [Uc, C]
        best_f1, best = F1.max(1)
        sl = slice(u0, u0 + uc)
        out["n_active"][sl] = n_act.numpy()
        out["concept_f1"][sl] = best_f1.numpy()
        tp_best = TP.gather(1, best[:, None]).squeeze(1)
        out["concept_prec"][sl] = (tp_best / n_act.clamp_min(1)).numpy()
        out["concept_rec"][sl] = (tp_best / n_true[best].clamp_min(1)).numpy()
        concept_col[sl] = best.numpy()
        heat.append(F1[:, heat_cols].numpy())
        core.append(F1[:, core_cols].numpy())
        sign.append(F1[:, sign_cols].max(1).values.numpy())

        # ramps: correlation of the activation with each magnitude over the inputs where the support
        # holds and the unit is active (sums per cell, then summed over the support's cells)
        a = torch.where(active[:, u0:u0 + uc], acts[:, u0:u0 + uc], torch.zeros(())).double()   # [N, Uc]
        S1 = torch.zeros(N_CELLS, uc, dtype=torch.float64).index_add_(0, cells, a)
        S2 = torch.zeros(N_CELLS, uc, dtype=torch.float64).index_add_(0, cells, a * a)
        Kd = K.double()
        nA = Kd.T @ TS                                                          # [Uc, R] active inputs in S
        nAc = nA.clamp_min(1)
        mean_a = (S1.T @ TS) / nAc
        var_a = (S2.T @ TS) / nAc - mean_a ** 2
        F1S = F1[:, sup].double()                                               # [Uc, R]
        enough = nA >= MIN_RAMP_SUPPORT
        scores, rs = [], []
        for m in MAGNITUDES:
            M = mag[m][:, None]
            mean_M = ((Kd * M).T @ TS) / nAc
            var_M = ((Kd * M * M).T @ TS) / nAc - mean_M ** 2
            cov = ((S1 * M).T @ TS) / nAc - mean_a * mean_M
            denom = (var_a.clamp_min(0) * var_M.clamp_min(0)).sqrt()
            ok = enough & (var_a > 1e-10) & (var_M > 1e-10)
            r = torch.where(ok, cov / denom.clamp_min(1e-30), torch.zeros_like(cov)).clamp(-1, 1)
            rs.append(r)
            scores.append(torch.minimum(F1S, r.abs()))
        score = torch.stack(scores, dim=2)                                      # [Uc, R, n_mag]
        r_all = torch.stack(rs, dim=2)
        flat = score.reshape(uc, -1)
        best_score, best_idx = flat.max(1)
        s_idx, m_idx = best_idx // len(MAGNITUDES), best_idx % len(MAGNITUDES)
        out["ramp_score"][sl] = best_score.numpy()
        out["ramp_r"][sl] = r_all.reshape(uc, -1).gather(1, best_idx[:, None]).squeeze(1).numpy()
        sup_col = torch.as_tensor(sup)[s_idx]
        tp_r = TP.gather(1, sup_col[:, None]).squeeze(1)
        out["ramp_f1"][sl] = F1.gather(1, sup_col[:, None]).squeeze(1).numpy()
        out["ramp_prec"][sl] = (tp_r / n_act.clamp_min(1)).numpy()
        out["ramp_rec"][sl] = (tp_r / n_true[sup_col].clamp_min(1)).numpy()
        ramp_sup[sl] = sup_col.numpy()
        ramp_mag[sl] = m_idx.numpy()
        pr_score.append(np.stack([score[:, idx, mi].max(1).values.numpy() for idx, mi in pr_cols], axis=1))

    # activation statistics
    act_pos = torch.where(active, acts, torch.zeros_like(acts))
    n_act = out["n_active"]
    density = n_act / max(n, 1)
    mean_act = np.where(n_act > 0, act_pos.sum(0).double().numpy() / np.maximum(n_act, 1), np.nan)
    max_act = acts.max(0).values.numpy() if n else np.full(n_units, np.nan)
    status = np.where(n_act == 0, "dead", np.where(density < ULTRALOW_DENSITY, "ultralow", "alive"))

    concept_names = [cs.names[j] for j in concept_col]
    ramp_names = [f"ramp {_signed(display_name(MAGNITUDES[mi]), r)} | {cs.names[s]}"
                  for r, mi, s in zip(out["ramp_r"], ramp_mag, ramp_sup)]
    rs, cf = out["ramp_score"], out["concept_f1"]
    use_ramp = ((rs > 0) & (rs >= cf - RAMP_TOLERANCE)
                & ((rs >= MONOSEMANTIC_SCORE) | (cf < MONOSEMANTIC_SCORE)))
    dead = status == "dead"
    table = pd.DataFrame({
        "unit": np.arange(n_units),
        "kind": kind,
        "status": status,
        "density": density,
        "mean_act": mean_act,
        "max_act": max_act,
        "explanation": np.where(dead, "", np.where(use_ramp, ramp_names, concept_names)),
        "explanation_kind": np.where(dead, "none", np.where(use_ramp, "ramp", "concept")),
        "score": np.where(dead, np.nan, np.where(use_ramp, out["ramp_score"], out["concept_f1"])),
        "precision": np.where(dead, np.nan, np.where(use_ramp, out["ramp_prec"], out["concept_prec"])),
        "recall": np.where(dead, np.nan, np.where(use_ramp, out["ramp_rec"], out["concept_rec"])),
        "f1": np.where(dead, np.nan, np.where(use_ramp, out["ramp_f1"], out["concept_f1"])),
        "corr": np.where(use_ramp & ~dead, out["ramp_r"], np.nan),
    })
    table["monosemantic"] = (table["status"] == "alive") & (table["score"] >= MONOSEMANTIC_SCORE)
    table["concept_explanation"] = np.where(dead, "", concept_names)
    table["concept_f1"] = np.where(dead, np.nan, out["concept_f1"])
    table["ramp_explanation"] = np.where(dead | (out["ramp_score"] <= 0), "", ramp_names)
    table["ramp_score"] = np.where(dead, np.nan, out["ramp_score"])
    truth_col = np.where(dead, -1, np.where(use_ramp, ramp_sup, concept_col))
    return Explanations(
        table=table,
        heatmap_f1=np.concatenate(heat) if heat else np.zeros((0, len(heat_cols))),
        heatmap_concepts=[cs.names[j] for j in heat_cols],
        core_f1=np.concatenate(core) if core else np.zeros((0, len(core_cols))),
        pointer_ramp_score=np.concatenate(pr_score) if pr_score else np.zeros((0, len(POINTER_RAMPS))),
        sign_f1=np.concatenate(sign) if sign else np.zeros(0),
        truth_col=truth_col,
    )


def summarize(ex: Explanations, prefix: str) -> dict:
    """Counts, monosemantic share and median score of the alive units, as `<prefix>_...` keys."""
    t = ex.table
    alive = t["status"] == "alive"
    return {
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
    from analysis.concepts import CORE_CONCEPTS

    alive = (ex.table["status"] == "alive").to_numpy()

    def best(col_scores):
        s = np.where(alive, col_scores, -1.0)
        if not len(s) or s.max() < 0:
            return {"unit": None, "score": None}
        u = int(s.argmax())
        return {"unit": u, "score": round(float(s[u]), 4)}

    ramps = {name: best(ex.pointer_ramp_score[:, i]) for i, name in enumerate(POINTER_RAMP_NAMES)}
    ramps[SIGN_NAME] = best(ex.sign_f1)
    core = {name: best(ex.core_f1[:, i]) for i, name in enumerate(CORE_CONCEPTS)}
    ok = lambda d: [k for k, v in d.items() if v["score"] is not None and v["score"] >= MONOSEMANTIC_SCORE]
    return {"ramps_found": ok(ramps), "ramps_best": ramps, "core_found": ok(core), "core_best": core}
