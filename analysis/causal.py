"""Causal effects of SAE features on the MLP's prediction, inside the spliced forward pass.

The spliced model is `head(decode(encode(hidden(x))))`: the MLP with its hidden layer replaced by
the SAE's reconstruction (DESIGN.md). An *edit* changes the feature activations f [batch, d_sae]
between encode and decode: `ablate(ids)` zeroes features, `clamp({id: value})` sets them.

The SAE's error term (h - decode(encode(h))) is NOT added by default: the spliced model of the
probe and of the spliced exact-match metric is the SAE's reconstruction alone, and an edit should be
read against that model. `with_error=True` adds the (unedited) error term back, so that an unedited
call returns the MLP's own prediction. Because the MLP's head is one Linear layer directly on the
hidden layer and decode is linear in f, the *change* an edit makes is the same either way:
    edited - unedited = (f_edited - f) @ W_dec @ w_head.
`ablation_effects` uses that identity to get every feature's zero-ablation effect on every input at
the cost of one matrix product (tests check it against `spliced_predict`).

The interchange test (`interchange_test`) patches the activations of a group of features from a
*source* input into a *base* input and asks whether the prediction becomes the task's answer for
the source, where the source is the base with one variable (a, b, p1 or p2) changed and the group
is the features whose explanations depend on that variable.
"""
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from dataset.data_generator import COL1, COL2, P1, P2, target

Edit = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def spliced_predict(mlp, sae, x: torch.Tensor, edit: Edit | None = None, with_error: bool = False) -> torch.Tensor:
    """Prediction [batch] of the spliced MLP on x [batch, 10], with `edit(f) -> f` applied to the
    feature activations [batch, d_sae] before decode."""
    h = mlp.hidden(x)                                                   # [batch, d_in]
    f = sae.encode(h)                                                   # [batch, d_sae]
    f_edit = edit(f.clone()) if edit is not None else f
    h_hat = sae.decode(f_edit)                                          # [batch, d_in]
    if with_error:
        h_hat = h_hat + (h - sae.decode(f))
    return mlp.head(h_hat).squeeze(-1)


def ablate(ids) -> Edit:
    """Edit that zeroes the features `ids` (an int or a list of ints)."""
    ids = [int(ids)] if np.isscalar(ids) else [int(i) for i in ids]

    def edit(f: torch.Tensor) -> torch.Tensor:
        f[:, ids] = 0.0
        return f
    return edit


def clamp(values: dict) -> Edit:
    """Edit that sets each feature `id` to `value` on every input ({id: value})."""
    def edit(f: torch.Tensor) -> torch.Tensor:
        for i, v in values.items():
            f[:, int(i)] = float(v)
        return f
    return edit


def head_weight(mlp) -> torch.Tensor:
    if not isinstance(mlp.head, nn.Linear) or mlp.head.out_features != 1:
        raise TypeError("ablation_effects needs the MLP's head to be one Linear layer to a scalar")
    return mlp.head.weight.detach()[0]                                  # [d_in]


@torch.no_grad()
def feature_output_weights(mlp, sae) -> torch.Tensor:
    """How much one unit of each feature moves the spliced prediction: W_dec @ w_head, [d_sae]."""
    return sae.W_dec.detach() @ head_weight(mlp).to(sae.W_dec.device)


@torch.no_grad()
def ablation_effects(mlp, sae, f: torch.Tensor) -> torch.Tensor:
    """Change of the spliced prediction when each feature is zeroed, on each input: [batch, d_sae]
    (exact, see module docstring)."""
    return -f * feature_output_weights(mlp, sae).to(f.device)[None, :]


# the ground-truth variables whose value changes when each interchange variable does
DEPENDS_ON = {
    "a": ("a", "a-b", "target", "c1["),
    "b": ("b", "a-b", "target", "c2["),
    "p1": ("p1", "a", "a-b", "target"),
    "p2": ("p2", "b", "a-b", "target"),
}


def resample_variable(x: torch.Tensor, variable: str, generator: torch.Generator) -> torch.Tensor:
    """x [n, 10] with one variable moved to a different random value, everything else kept:
    "a"/"b" change the pointed digit (pointer kept), "p1"/"p2" the pointer (digits kept)."""
    x = x.clone()
    rows = torch.arange(len(x))
    if variable in ("a", "b"):
        col, p, n_values = (COL1, P1, 10) if variable == "a" else (COL2, P2, 10)
        pos = col.start + x[:, p]
    elif variable in ("p1", "p2"):
        pos = torch.full((len(x),), P1 if variable == "p1" else P2)
        n_values = 4
    else:
        raise ValueError(f"variable {variable!r}: expected a, b, p1 or p2")
    shift = torch.randint(1, n_values, (len(x),), generator=generator)    # never the same value
    x[rows, pos] = (x[rows, pos] + shift) % n_values
    return x


@torch.no_grad()
def interchange_test(mlp, sae, features, x_base: torch.Tensor, x_source: torch.Tensor) -> dict:
    """Patch the activations of `features` from each source input into its base input; success where
    the patched spliced prediction rounds to the source's target.

    With `x_source = resample_variable(x_base, V)` the source is the counterfactual "base with V
    changed", and `features` should be the ones whose explanation depends on V: if the explanations
    are right, those features carry all of V's effect and the prediction moves to the
    counterfactual's answer, while patching the other features leaves it where it was.

    Returns {"n_features", "n", "success" (share), "n_spliced_right" and "success_spliced_right" (the
    same on the pairs whose base and source the unpatched spliced model itself gets right, so that
    the SAE's reconstruction errors are not counted against the features), "unpatched" (share of
    bases whose own spliced prediction already gives the source's target: the chance level),
    "base_target" (share where the patched prediction still gives the base's target)}. Pairs whose two targets are equal are dropped:
    they cannot tell a moved prediction from an unmoved one.
    """
    y_src, y_base = target(x_source), target(x_base)
    keep = y_src != y_base
    x_base, x_source, y_src, y_base = x_base[keep], x_source[keep], y_src[keep].float(), y_base[keep].float()
    ids = torch.as_tensor(list(features), dtype=torch.long)
    f_src = sae.encode(mlp.hidden(x_source))                            # [n, d_sae]

    def patch(f: torch.Tensor) -> torch.Tensor:
        if len(ids):
            f[:, ids] = f_src[:, ids]
        return f

    pred = spliced_predict(mlp, sae, x_base, patch).round()
    plain = spliced_predict(mlp, sae, x_base).round()
    right = (plain == y_base) & (spliced_predict(mlp, sae, x_source).round() == y_src)
    n, n_right = int(len(y_src)), int(right.sum())
    rate = lambda ok: float(ok.float().mean()) if len(ok) else float("nan")
    return {"n_features": int(len(ids)), "n": n, "success": rate(pred == y_src),
            "n_spliced_right": n_right, "success_spliced_right": rate((pred == y_src)[right]),
            "unpatched": rate(plain == y_src), "base_target": rate(pred == y_base)}


def explanation_mentions(explanation: str, prefixes) -> bool:
    """Whether an explanation text (`p1 = 2 & a >= 5`, `ramp a - b | p2 = 1`) uses a variable whose
    name starts with one of `prefixes` (ground-truth names; "a-b" matches the text "a - b")."""
    text = explanation.replace("ramp ", "").replace("|", "&").replace("-(", "").replace(")", "")
    text = text.replace("a - b", "a-b")
    variables = set()
    for part in text.split("&"):
        tok = part.strip().split(" ")[0].lstrip("-")
        if tok:
            variables.add(tok)
    return any(v.startswith(pfx) if pfx.endswith("[") else v == pfx for v in variables for pfx in prefixes)
