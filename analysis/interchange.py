"""The interchange test: do the features whose explanation uses a variable carry all of its effect?

`interchange_test` patches the activations of a group of features from a *source* input into a
*base* input and asks whether the spliced prediction becomes the task's answer for the source,
where the source is the base with one variable (a, b, p1 or p2) changed (`resample_variable`) and
the group is the features whose explanation uses a variable that changes with it (`depends_on`,
matched against the `variables` column of the explanation table). `interchange_suite` runs it for
the four variables, with the complement group as the control.
"""
import pandas as pd
import torch

from dataset.task import N_DIGITS, Task, stream_seed, target, task_of
from sae.splice import chunked_pass, spliced_forward

INTERCHANGE_PAIRS = 2000         # base inputs per interchange variable


def depends_on(task: Task) -> dict:
    """The ground-truth variables whose value changes when each interchange variable does."""
    return {
        "a": ("a", "a-b", "target") + tuple(d for d in task.digit_variables if d.startswith("c1[")),
        "b": ("b", "a-b", "target") + tuple(d for d in task.digit_variables if d.startswith("c2[")),
        "p1": ("p1", "a", "a-b", "target"),
        "p2": ("p2", "b", "a-b", "target"),
    }


def resample_variable(x: torch.Tensor, variable: str, generator: torch.Generator) -> torch.Tensor:
    """x [n, 2L+2] with one variable moved to a different random value, everything else kept:
    "a"/"b" change the pointed digit (pointer kept), "p1"/"p2" the pointer (digits kept)."""
    task = task_of(x)
    x = x.clone()
    rows = torch.arange(len(x))
    if variable in ("a", "b"):
        col, p, n_values = (task.col1, task.p1, N_DIGITS) if variable == "a" else (task.col2, task.p2, N_DIGITS)
        pos = col.start + x[:, p]
    elif variable in ("p1", "p2"):
        pos = torch.full((len(x),), task.p1 if variable == "p1" else task.p2)
        n_values = task.slots
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
    "base_target" (share where the patched prediction still gives the base's target)}. Pairs whose
    two targets are equal are dropped: they cannot tell a moved prediction from an unmoved one.
    """
    y_src, y_base = target(x_source), target(x_base)
    keep = y_src != y_base
    x_base, x_source, y_src, y_base = x_base[keep], x_source[keep], y_src[keep].float(), y_base[keep].float()
    ids = torch.as_tensor(list(features), dtype=torch.long)
    src = chunked_pass(mlp, sae, x_source)                              # features [n, d_sae], spliced [n]
    f_src = src["features"]

    def patch(f: torch.Tensor) -> torch.Tensor:
        if len(ids):
            f[:, ids] = f_src[:, ids].to(f.device)
        return f

    pred = spliced_forward(mlp, sae, x_base, patch).round()
    plain = spliced_forward(mlp, sae, x_base).round()
    right = (plain == y_base) & (src["spliced"].round() == y_src)
    n, n_right = int(len(y_src)), int(right.sum())
    rate = lambda ok: float(ok.float().mean()) if len(ok) else float("nan")
    return {"n_features": int(len(ids)), "n": n, "success": rate(pred == y_src),
            "n_spliced_right": n_right, "success_spliced_right": rate((pred == y_src)[right]),
            "unpatched": rate(plain == y_src), "base_target": rate(pred == y_base)}


def uses_any(variables: str, names) -> bool:
    """Whether a `variables` cell of an explanation table (';'-joined names) holds one of `names`."""
    return bool(set(variables.split(";")) & set(names)) if variables else False


def interchange_suite(mlp, sae, features: pd.DataFrame, seed: int, n_pairs: int = INTERCHANGE_PAIRS) -> dict:
    """For each variable V of (a, b, p1, p2): bases = fresh inputs (analysis stream, offset seed), sources =
    the bases with V changed, patched group = the non-dead features whose explanation uses a variable of
    `depends_on(task)[V]` (the MLP's task). Also the complement (every other feature patched), which should NOT move the
    prediction. `interchange_success` pools the four variables over the pairs whose base and source the
    unpatched spliced model gets right; `interchange_success_all_pairs` over all."""
    g = torch.Generator().manual_seed(stream_seed(seed, "analysis") + 7)
    x_base = mlp.task.sample_inputs(n_pairs, seed=stream_seed(seed, "analysis") + 1)
    mlp, sae = mlp.cpu(), sae.cpu()
    live = features[features["status"] != "dead"]
    out, total_ok, total_n, right_ok, right_n = {}, 0.0, 0, 0.0, 0
    for var, deps in depends_on(mlp.task).items():
        group = [int(u) for u, v in zip(live["unit"], live["variables"]) if uses_any(v, deps)]
        rest = sorted(set(range(sae.cfg.d_sae)) - set(group))
        x_src = resample_variable(x_base, var, g)
        res = interchange_test(mlp, sae, group, x_base, x_src)
        res["complement_success"] = interchange_test(mlp, sae, rest, x_base, x_src)["success"]
        out[var] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}
        if res["n"]:
            total_ok += res["success"] * res["n"]
            total_n += res["n"]
        if res["n_spliced_right"]:
            right_ok += res["success_spliced_right"] * res["n_spliced_right"]
            right_n += res["n_spliced_right"]
    return {"interchange_success": round(right_ok / right_n, 4) if right_n else None,
            "interchange_pairs": int(right_n), "interchange_pairs_all": int(total_n),
            "interchange_success_all_pairs": round(total_ok / max(total_n, 1), 4), "interchange": out}
