"""circuit_trace_detailed.xlsx: every sample of train, val and test, traced through the circuit.

Sheet "trace": one row per sample (labelled by split): the inputs, ground truth, the MLP's
prediction, its error and exact match (the project's `regression_metrics` rule: round(pred) ==
target), the spliced prediction, then the top-10 neurons and top-10 features with their
activations, and each feature's explanation. Sheet "features": one row per feature (the same
table as features.csv). Sheet "about": what the columns mean.
"""
import numpy as np
import torch

from dataset.task import ground_truth
from viz.xlsx import DECIMAL_STYLE, LEFT_STYLE, Sheet, write_xlsx

TOP = 10
FEATURE_COLUMNS = ("unit", "status", "density", "mean_act", "max_act", "explanation", "explanation_kind", "score",
                   "precision", "recall", "f1", "corr", "monosemantic", "effect_where_true", "effect_where_false",
                   "effect_mean_abs", "direct_effect_per_unit")


def _r(a, digits=4) -> list:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def trace_sheet(splits: list, x: torch.Tensor, y: torch.Tensor, pred: torch.Tensor, spliced: torch.Tensor,
                h: torch.Tensor, f: torch.Tensor, explanation: list) -> Sheet:
    """splits: a split name per row; x [n, 2L+2]; y, pred, spliced [n]; h [n, d_hidden]; f [n, d_sae] dense."""
    gt = ground_truth(x)
    n_val, n_idx = h.topk(min(TOP, h.shape[1]), dim=1)                                  # [n, 10]
    f_val, f_idx = f.topk(min(TOP, f.shape[1]), dim=1)                                  # [n, 10]
    err = pred - y
    header = ["split", "row", "input_list", "p1", "p2", "a", "b", "a - b", "target", "prediction", "error",
              "exact_match", "spliced_prediction", "active_features"]
    cols = [splits, list(range(1, len(x) + 1)),
            ["[" + ", ".join(map(str, r)) + "]" for r in x.tolist()],
            gt["p1"].tolist(), gt["p2"].tolist(), gt["a"].tolist(), gt["b"].tolist(), gt["a-b"].tolist(),
            y.long().tolist(), _r(pred), _r(err), (pred.round() == y.round()).tolist(), _r(spliced),
            (f > 0).sum(1).tolist()]
    widths = [7, 7, max(29, 3 * x.shape[1] - 1), 5, 5, 5, 5, 6, 7, 10, 9, 8, 10, 9]
    styles = [0, 0, 0, 0, 0, 0, 0, 0, 0, DECIMAL_STYLE, DECIMAL_STYLE, 0, DECIMAL_STYLE, 0]
    n_active = (f > 0).sum(1)
    for k in range(n_idx.shape[1]):
        header += [f"neuron_{k + 1}", f"neuron_{k + 1}_act"]
        cols += [n_idx[:, k].tolist(), _r(n_val[:, k])]
        widths += [9, 10]
        styles += [0, DECIMAL_STYLE]
    expl = np.asarray(explanation, dtype=object)
    for k in range(f_idx.shape[1]):
        active = (n_active > k).numpy()                   # an input with fewer than k+1 active features has blanks
        idx = f_idx[:, k].numpy()
        header += [f"feature_{k + 1}", f"feature_{k + 1}_act", f"feature_{k + 1}_explanation"]
        cols += [np.where(active, idx, -1).tolist(), _r(f_val[:, k]), np.where(active, expl[idx], "").tolist()]
        cols[-3] = [v if v >= 0 else None for v in cols[-3]]
        cols[-2] = [v if a else None for v, a in zip(cols[-2], active)]
        widths += [9, 10, 30]
        styles += [0, DECIMAL_STYLE, LEFT_STYLE]
    return Sheet("trace", header, cols, widths, styles)


def features_sheet(features) -> Sheet:
    cols = [c for c in FEATURE_COLUMNS if c in features.columns]
    values = []
    for c in cols:
        v = features[c]
        if v.dtype.kind == "f":
            values.append([None if np.isnan(t) else round(float(t), 5) for t in v.to_numpy()])
        elif v.dtype.kind == "b":
            values.append([bool(t) for t in v.to_numpy()])
        elif v.dtype.kind in "iu":
            values.append([int(t) for t in v.to_numpy()])
        else:
            values.append([str(t) for t in v.to_numpy()])
    widths = [max(9, min(46, len(c) + 3)) if c != "explanation" else 40 for c in cols]
    styles = [LEFT_STYLE if c == "explanation" else DECIMAL_STYLE if features[c].dtype.kind == "f" else 0 for c in cols]
    return Sheet("features", cols, values, widths, styles)


ABOUT = [
    ("trace", "one row per sample of the train, val and test Excel files (column split)"),
    ("prediction", "the MLP's output; error = prediction - target; exact_match = round(prediction) == target"),
    ("spliced_prediction", "the output when the hidden layer is replaced by the SAE's reconstruction"),
    ("neuron_k / neuron_k_act", "the k-th most active neuron of the 512-d hidden layer and its activation"),
    ("feature_k / _act / _explanation", "the k-th most active SAE feature, its activation and its explanation "
                                        "(blank when fewer than k features fire)"),
    ("features", "one row per SAE feature: status (alive / ultralow / dead), density on fresh inputs, explanation "
                 "with its score, precision, recall, F1 (and corr for ramps), causal effects, and "
                 "direct_effect_per_unit = W_dec[i] @ w_head"),
]


def about_sheet(made_from: dict | None = None) -> Sheet:
    """What each column means, then what the workbook was made from (role, file, digest: common.provenance)."""
    rows = ABOUT + [(f"made from: {role}", f"{e['file']}  {e['digest']}") for role, e in (made_from or {}).items()]
    return Sheet("about", ["column", "meaning"], [[a for a, _ in rows], [b for _, b in rows]], [30, 110],
                 [LEFT_STYLE, LEFT_STYLE])


def write_trace(path, splits, x, y, pred, spliced, h, f, explanation, features, made_from: dict | None = None) -> None:
    write_xlsx(path, [trace_sheet(splits, x, y, pred, spliced, h, f, explanation), features_sheet(features),
                      about_sheet(made_from)])
