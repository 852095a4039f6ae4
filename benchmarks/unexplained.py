"""Benchmark: every unexplained alive feature of a labelled run, sorted into kinds (issue 21, item 4).

A feature is *unexplained* when it is alive and its held-out score (features.csv) is below 0.8 (or it has
no explanation). Each is given the first kind, in this order, whose rule it meets. Every choice (which
concept, which absorbers, which extra condition) is made on the labels' "explain" stream and every score
is measured on their "analysis" stream, as `label_features.py` does; `score` is the two-sided score of
`analysis.explain` (min of the F1 where it fires and the F1 where it is silent), the bar is 0.8.

1. **absorption hole**: for the feature's explanation (a ramp's: its support), or else its best concept,
   the features that fill its hole (`analysis.absorption.absorbed_by`, chosen on "explain": precise for
   the concept, covering >= 10% of the inputs where it holds and the feature is silent); counting the
   inputs where one of them fires and the concept holds as the feature's own lifts the score to >= 0.8
   (a ramp: and its |r| as labelled is >= 0.8).
2. **mixture with digits**: a union `P OR D` of a pointer concept P (a concept of the grammar with a
   pointer equality, `p1 = k` or `p2 = k`) and a raw digit condition D (`c1[0] = 3`, `c2[1] >= 5`) scores
   >= 0.8. Searched greedily on "explain": P the best-F1 pointer concept, then the D that makes the best
   union; and D the best-F1 digit condition, then the best P; the better pair is kept.
3. **fragment of a ramp**: a support S of the grammar (as `analysis.explain`'s ramps) and a magnitude m
   (a, b, a - b, target), chosen on "explain" as the largest |r| of activation with m over the active
   inputs inside S among the supports with precision P(S | fires) >= 0.8 and >= 20 active inputs
   inside; on "analysis" precision >= 0.8 and |r| >= 0.8 but recall P(fires | S) < 0.5: a piece of a ramp.
4. **conjunction beyond the grammar**: the split-aware explanation (a pointer pair and one value
   condition; a ramp's: its support) AND one more single condition (any condition on p1, p2, a, b, a - b,
   target or a digit), chosen on "explain", scores >= 0.8.
5. **polysemantic / none of the above**.

    python benchmarks/unexplained.py [--run-dir runs/default] [--sae NAME] [--threads 1]
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
import torch

from analysis.absorption import absorbed_by
from analysis.concepts import MAGNITUDES, cell_index, concept_set, display_name
from analysis.explain import MIN_RAMP_SUPPORT, MONOSEMANTIC_SCORE, ramp_supports
from analysis.labels import fresh_inputs
from analysis.labels_io import read_labels
from analysis.run import load_run_models
from analysis.concepts import explanation_truth
from benchmarks._machine import machine_line
from common import validate
from common.cli import ArgumentParser, add_sae_arg, run_main, selected_saes
from common.paths import DEFAULT_RUN_DIR
from dataset.task import ground_truth, task_of
from sae.splice import chunked_pass

KINDS = ("absorption hole", "mixture with digits", "fragment of a ramp", "conjunction beyond the grammar",
         "polysemantic")
FRAGMENT_RECALL = 0.5     # a fragment covers less than this share of its support


def two_sided(active: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """[K]: min(F1 where the unit fires, F1 where it is silent) of active [n] against truth [n, K]
    (`analysis.explain`'s concept score)."""
    a, t = active.float(), truth.float()
    n = float(len(a))
    tp = a @ t
    n_a, n_t = a.sum(), t.sum(0)
    f1 = 2 * tp / (n_a + n_t).clamp_min(1)
    tn = n - n_a - n_t + tp
    f1_off = 2 * tn / ((n - n_a) + (n - n_t)).clamp_min(1)
    return torch.minimum(f1, f1_off)


class Grammar:
    """The truth of the grammar's pieces on one stream of inputs x [n, 2L+2]."""

    def __init__(self, x: torch.Tensor):
        cs = concept_set(task_of(x))
        self.gt = ground_truth(x)
        self.cells = cell_index(self.gt)
        self.cell_truth = cs.cell_truth[self.cells]                                   # [n, n_cell] bool
        self.digit = cs.digit_truth(self.gt)                                          # [n, n_digit] bool
        self.names = cs.names
        self.n_cell = cs.n_cell
        self.pointer = np.array([any(c.var in ("p1", "p2") and c.op == "=" for c in k.conditions)
                                 for k in cs.cell_concepts])
        self.single = np.flatnonzero(cs.is_single[:cs.n_cell])
        self.supports = ramp_supports(cs)
        self.mags = torch.stack([self.gt[m].double() for m in MAGNITUDES], dim=1)     # [n, n_mag]

    def pointer_truth(self):
        return self.cell_truth[:, self.pointer]

    def pointer_names(self):
        return [self.names[j] for j in np.flatnonzero(self.pointer)]

    def digit_names(self):
        return self.names[self.n_cell:]

    def extra_truth(self):
        """One more condition for rule 4: every single condition, digits included."""
        return torch.cat([self.cell_truth[:, self.single], self.digit], dim=1)

    def extra_names(self):
        return [self.names[j] for j in self.single] + self.digit_names()


def _union_pick(active, P, D):
    """(i, j): a pointer concept and a digit condition whose union fits `active` best (greedy both ways)."""
    best = (-1.0, 0, 0)
    for first, other, swap in ((P, D, False), (D, P, True)):
        i = int(two_sided(active, first).argmax())
        union = first[:, i:i + 1] | other                                            # [n, K_other]
        s = two_sided(active, union)
        j = int(s.argmax())
        if float(s[j]) > best[0]:
            best = (float(s[j]), j, i) if swap else (float(s[j]), i, j)
    return best[1], best[2]


def _ramp_stats(acts: torch.Tensor, S: torch.Tensor, mags: torch.Tensor):
    """Per support (columns of S [n, K]) and magnitude: precision, recall, r and the active inputs inside."""
    on = acts > 0
    a = acts[on].double()
    T = S[on].double()                                                                # [n_a, K]
    M = mags[on]                                                                      # [n_a, n_mag]
    n_in = T.sum(0)                                                                   # [K]
    c = n_in.clamp_min(1)
    ma, mm = (T.T @ a) / c, (T.T @ M) / c[:, None]                                    # [K], [K, n_mag]
    va = (T.T @ a ** 2) / c - ma ** 2
    vm = (T.T @ M ** 2) / c[:, None] - mm ** 2
    cov = (T.T @ (a[:, None] * M)) / c[:, None] - ma[:, None] * mm
    ok = (n_in[:, None] >= MIN_RAMP_SUPPORT) & (va[:, None] > 1e-9) & (vm > 1e-9)
    r = torch.where(ok, cov / (va[:, None] * vm).clamp_min(1e-30).sqrt(), torch.zeros_like(cov)).clamp(-1, 1)
    precision = n_in / max(int(on.sum()), 1)
    recall = n_in / S.double().sum(0).clamp_min(1)
    return precision, recall, r, n_in


def classify(f_c: torch.Tensor, x_c: torch.Tensor, f: torch.Tensor, x: torch.Tensor, table: pd.DataFrame) -> pd.DataFrame:
    """One row per unexplained alive unit of `table` (features.csv's columns status, score, explanation,
    concept_explanation, split_explanation, corr; activations f_c on the "explain" inputs x_c, f on the
    "analysis" inputs x): unit, kind (KINDS: the first rule met), explanation, score (as labelled), found
    (what that rule found), found_score (its held-out score), and `meets <kind>` for every rule (all are
    checked, so the counts show what the order decides), and `best <kind>` for every rule: the held-out
    score its search reached (rule 3: min(precision, |r|) where the recall is below FRAGMENT_RECALL, else 0;
    NaN where the rule had nothing to test), which says how far a polysemantic unit is from each kind."""
    alive = (table["status"] == "alive").to_numpy()
    score = table["score"].to_numpy(dtype=float)
    todo = np.flatnonzero(alive & ~(score >= MONOSEMANTIC_SCORE))
    fires = np.flatnonzero(table["status"].isin(["alive", "ultralow"]).to_numpy())
    g_c, g = Grammar(x_c), Grammar(x)
    A_c, A = f_c > 0, f > 0
    # rule 1's absorbers, for the explanation and for the best concept, chosen on "explain"
    absorbers = {}
    for col in ("explanation", "concept_explanation"):
        names = table[col].to_numpy()[fires].tolist()
        t_c = explanation_truth(names, x_c)
        holes = absorbed_by(f_c[:, fires], f_c[:, fires], t_c, t_c, ids=fires)
        absorbers[col] = dict(zip(fires.tolist(), holes["absorbed_by"]))
    rows = []
    for u in todo.tolist():
        row = {"unit": u, "explanation": table.at[u, "explanation"], "score": score[u], "kind": KINDS[-1],
               "found": "", "found_score": np.nan, **{f"meets {k}": False for k in KINDS[:-1]},
               **{f"best {k}": np.nan for k in KINDS[:-1]}}

        def best(kind, s):
            row[f"best {kind}"] = np.nanmax([row[f"best {kind}"], s])

        def met(kind, found, s):
            row[f"meets {kind}"] = True
            if row["kind"] == KINDS[-1]:
                row.update(kind=kind, found=found, found_score=s)
        a_c, a = A_c[:, u], A[:, u]
        # 1. absorption hole
        for col in ("explanation", "concept_explanation"):
            name, listed = table.at[u, col], absorbers[col].get(u, "")
            if not name or not listed:
                continue
            ids = [int(s.split(":")[0]) for s in listed.split()]
            truth = explanation_truth([name], x)[:, 0]
            filled = a | (truth & A[:, ids].any(1))
            s = float(two_sided(filled, truth[:, None])[0])
            if name.startswith("ramp "):
                s = min(s, abs(float(table.at[u, "corr"])) if pd.notna(table.at[u, "corr"]) else 0.0)
            best(KINDS[0], s)
            if s >= MONOSEMANTIC_SCORE:
                met(KINDS[0], f"{name} with its hole filled by {listed}", s)
                break
        # 2. mixture: pointer concept OR digit condition
        i, j = _union_pick(a_c, g_c.pointer_truth(), g_c.digit)
        union = g.pointer_truth()[:, i] | g.digit[:, j]
        s = float(two_sided(a, union[:, None])[0])
        best(KINDS[1], s)
        if s >= MONOSEMANTIC_SCORE:
            met(KINDS[1], f"{g.pointer_names()[i]} OR {g.digit_names()[j]}", s)
        # 3. fragment of a ramp
        prec_c, _, r_c, _ = _ramp_stats(f_c[:, u], g_c.cell_truth[:, g_c.supports], g_c.mags)
        cand = torch.where((prec_c >= MONOSEMANTIC_SCORE)[:, None], r_c.abs(), torch.zeros_like(r_c))
        if float(cand.max()) > 0:
            k, m = divmod(int(cand.argmax()), len(MAGNITUDES))
            prec, rec, r, _ = _ramp_stats(f[:, u], g.cell_truth[:, g.supports[k]:g.supports[k] + 1], g.mags)
            p_, q_, r_ = float(prec[0]), float(rec[0]), float(r[0, m])
            best(KINDS[2], min(p_, abs(r_)) if q_ < FRAGMENT_RECALL else 0.0)
            if p_ >= MONOSEMANTIC_SCORE and abs(r_) >= MONOSEMANTIC_SCORE and q_ < FRAGMENT_RECALL:
                met(KINDS[2], f"{display_name(MAGNITUDES[m])} (r {r_:+.2f}) inside "
                              f"{g.names[g.supports[k]]}: precision {p_:.2f}, recall {q_:.2f}", abs(r_))
        # 4. conjunction: split-aware explanation AND one more condition
        base = table.at[u, "split_explanation"]
        if base:
            b_c, b = explanation_truth([base], x_c)[:, 0], explanation_truth([base], x)[:, 0]
            j = int(two_sided(a_c, b_c[:, None] & g_c.extra_truth()).argmax())
            s = float(two_sided(a, (b & g.extra_truth()[:, j])[:, None])[0])
            best(KINDS[3], s)
            if s >= MONOSEMANTIC_SCORE:
                met(KINDS[3], f"{base.split(' | ')[-1]} & {g.extra_names()[j]}", s)
        rows.append(row)
    return pd.DataFrame(rows, columns=["unit", "kind", "explanation", "score", "found", "found_score",
                                       *(f"meets {k}" for k in KINDS[:-1]), *(f"best {k}" for k in KINDS[:-1])])


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", default=str(DEFAULT_RUN_DIR), help="a labelled run (label_features.py)")
    add_sae_arg(p)
    p.add_argument("--threads", type=validate.int_range(1, 256), default=1, help="torch threads (default: 1)")
    return p.parse_args(argv)


def main(args) -> None:
    torch.set_num_threads(args.threads)
    print(machine_line(), flush=True)
    paths = selected_saes(args)[0]
    models = load_run_models(paths)
    labels = read_labels(paths, models=models)
    mlp, sae = models
    seed, n = labels.summary["seed"], len(labels.inputs)
    t0 = time.perf_counter()
    x, x_c = labels.inputs, fresh_inputs(seed, n, "explain")
    f, f_c = chunked_pass(mlp, sae, x)["features"], chunked_pass(mlp, sae, x_c)["features"]
    out = classify(f_c, x_c, f, x, labels.features)
    n_alive = int((labels.features["status"] == "alive").sum())
    print(f"{paths.sae}: {n_alive} alive features, {len(out)} unexplained (score < {MONOSEMANTIC_SCORE}); "
          f"labels seed {seed}, {n} inputs per stream; {time.perf_counter() - t0:.1f} s")
    for kind in KINDS:
        part = out[out["kind"] == kind]
        also = f" (meet the rule in any order: {int(out[f'meets {kind}'].sum())})" if kind != KINDS[-1] else ""
        print(f"  {kind}: {len(part)}{also}")
    poly = out[out["kind"] == KINDS[-1]]
    if len(poly):
        print(f"  the {len(poly)} polysemantic ones, the best each rule reached (median; within 0.1 of the bar):")
        for kind in KINDS[:-1]:
            v = poly[f"best {kind}"]
            print(f"    {kind}: {v.median():.3f}; {int((v >= MONOSEMANTIC_SCORE - 0.1).sum())}")
    for kind in KINDS:
        part = out[out["kind"] == kind]
        if len(part):
            e = part.iloc[0]
            found = f"; rule found: {e['found']} (held-out score {e['found_score']:.3f})" if e["found"] else ""
            print(f"  e.g. {kind}: feature {e['unit']}, explanation {e['explanation'] or '(none)'!r} "
                  f"score {e['score']:.3f}{found}")


if __name__ == "__main__":
    run_main(main, parse_args())
