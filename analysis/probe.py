"""Probing single inputs: what the MLP and the spliced MLP answer, and which features did it.

`probe(mlp, sae, labels, x)` returns one plain dict per input (JSON-ready): the ground truth, the
MLP's and the spliced MLP's outputs, the number of active features, the top features by activation
with their explanation, score and contribution to the prediction on this input, and, with edits, the
edited spliced output and each edited feature's own share of the change.

One sign convention (the reports' too): + raises the prediction. A feature's contribution is
f_u * (W_dec[u] . w_head); zeroing it moves the spliced prediction by minus that. Because the head is
linear, an edit's change is the sum of the per-feature changes (f_new_u - f_u) * (W_dec[u] . w_head).
"""
import torch

from analysis.causal import ablate, clamp, feature_output_weights
from analysis.labels_io import Labels
from dataset.task import task_of
from sae.splice import chunked_pass, spliced_forward


def _num(v, digits=4):
    """A float rounded for printing/JSON; None for None and NaN; anything non-numeric as it is."""
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return v
    return None if v != v else round(v, digits)


def edit_breakdown(f: torch.Tensor, w_out: torch.Tensor, ablated, clamped: dict) -> list:
    """Each edited feature's own change of the spliced prediction on one input (f [d_sae]): a clamp
    overrides an ablation of the same feature, as in the edited pass."""
    after = {int(u): 0.0 for u in ablated}
    after.update({int(u): float(v) for u, v in clamped.items()})
    out = []
    for u, new in after.items():
        old = float(f[u])
        out.append({"feature": u, "edit": "clamp" if u in clamped else "ablate", "activation": _num(old),
                    "new_activation": _num(new), "active": old > 0, "change": _num((new - old) * float(w_out[u]))})
    return out


@torch.no_grad()
def probe(mlp, sae, labels: Labels, x: torch.Tensor, top: int = 8, ablated=(), clamped=None) -> list:
    """One dict per input row of x [n, 10] (see module docstring); `ablated` feature ids are zeroed and
    `clamped` {id: value} set in an extra, edited spliced pass."""
    clamped = clamped or {}
    gt = task_of(x).ground_truth(x)
    acts = chunked_pass(mlp, sae, x)
    f, own, spliced = acts["features"], acts["mlp"], acts["spliced"]    # [n, d_sae], [n], [n]
    w_out = feature_output_weights(mlp, sae).cpu()                      # [d_sae]
    edits = ([ablate(ablated)] if ablated else []) + ([clamp(clamped)] if clamped else [])

    def combined(fe):
        for e in edits:
            fe = e(fe)
        return fe
    edited = spliced_forward(mlp, sae, x, combined).cpu() if edits else None
    table = labels.features.set_index("unit")
    out = []
    for i in range(len(x)):
        fi = f[i]
        active = torch.nonzero(fi > 0).flatten()
        order = active[fi[active].argsort(descending=True)][:top]
        feats = []
        for u in order.tolist():
            r = table.loc[u]
            feats.append({"feature": u, "activation": _num(fi[u]), "explanation": r["explanation"],
                          "explanation_kind": r["explanation_kind"], "score": _num(r["score"]),
                          "f1": _num(r["f1"]), "corr": _num(r["corr"]), "status": r["status"],
                          "contribution": _num(fi[u] * w_out[u])})
        rec = {"input": x[i].tolist(), "p1": int(gt["p1"][i]), "a": int(gt["a"][i]), "p2": int(gt["p2"][i]),
               "b": int(gt["b"][i]), "expected": int(gt["target"][i]), "mlp": _num(own[i]),
               "spliced": _num(spliced[i]), "active_features": int(len(active)), "top_features": feats}
        if edited is not None:
            rec["edited"] = {"ablate": list(ablated), "clamp": {str(k): v for k, v in clamped.items()},
                             "spliced": _num(edited[i]), "change": _num(edited[i] - spliced[i]),
                             "per_feature": edit_breakdown(fi, w_out, ablated, clamped)}
        out.append(rec)
    return out
