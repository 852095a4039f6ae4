"""The SAE's metrics, one implementation for every stage and report.

- FVU = sum ||h - h_hat||^2 / sum ||h - mean(h)||^2 (fraction of variance unexplained);
- L0 = mean number of active features (f > 0) per input;
- dead share = share of features never active on the evaluated inputs;
- density = each feature's firing frequency; `density_log10` reports log10 of it, with never-firing
  features set to DENSITY_FLOOR_LOG10 (-10) instead of -inf so the list is valid JSON;
- dense share = share of features firing on more than 10% of inputs;
- spliced exact-match / MSE = the MLP's scores when its hidden layer is replaced by the SAE's
  reconstruction before the (linear) head.

Everything is computed in chunks so that 1e6 x 2048 never materialises as one dense matrix.
"""
import math

import torch

from mlp.evaluate import regression_metrics
from sae.splice import iter_chunks

DENSITY_FLOOR_LOG10 = -10.0   # log10 density reported for features that never fire
DENSE_THRESHOLD = 0.10        # a feature firing on more than this share of inputs counts as dense
CHUNK = 16384


def fvu(h: torch.Tensor, h_hat: torch.Tensor) -> float:
    """Fraction of variance unexplained over a batch of activations [n, d_in]."""
    h, h_hat = h.double(), h_hat.double()
    return float(((h - h_hat) ** 2).sum() / ((h - h.mean(0)) ** 2).sum().clamp_min(1e-30))


def l0(f: torch.Tensor) -> float:
    """Mean number of active features (f > 0) per input, f [n, d_sae]."""
    return float((f > 0).sum(1).double().mean())


def density_log10(counts: torch.Tensor, n: int) -> list:
    """log10 of each feature's firing frequency, never-firing features at DENSITY_FLOOR_LOG10."""
    freq = counts.double() / max(n, 1)
    return [math.log10(p) if p > 0 else DENSITY_FLOOR_LOG10 for p in freq.tolist()]


@torch.no_grad()
def reconstruction_stats(sae, h: torch.Tensor, chunk: int = CHUNK) -> dict:
    """FVU, L0 and per-feature firing counts of `sae` on activations h [n, d_in], chunked."""
    device = next(sae.parameters()).device
    n = len(h)
    mean = sum(h[i:i + chunk].double().sum(0) for i in range(0, n, chunk)) / max(n, 1)   # [d_in]
    err = var = 0.0
    active = 0
    counts = torch.zeros(sae.cfg.d_sae, dtype=torch.long)
    for i in range(0, n, chunk):
        hc = h[i:i + chunk].to(device)                                     # [chunk, d_in]
        h_hat, f = sae(hc)                                                 # [chunk, d_in], [chunk, d_sae]
        fire = f > 0
        counts += fire.sum(0).cpu()
        active += int(fire.sum())
        err += float(((hc.double() - h_hat.double()) ** 2).sum())
        var += float(((h[i:i + chunk].double() - mean) ** 2).sum())
    return {"fvu": err / max(var, 1e-30), "l0": active / max(n, 1), "counts": counts, "n": n}


@torch.no_grad()
def evaluate_sae(sae, mlp, h: torch.Tensor, x: torch.Tensor, y: torch.Tensor, chunk: int = CHUNK) -> dict:
    """All SAE metrics on held-out data: activations h [n, d_in] of inputs x [n, 10] with targets y [n].

    Returns fvu, l0, dead_share, dead, dense_share, density_log10 (one value per feature; never-firing
    features at DENSITY_FLOOR_LOG10), spliced_exact_match, spliced_mse, mlp_exact_match, mlp_mse, n.
    """
    was_training = sae.training
    sae.eval()
    stats = reconstruction_stats(sae, h, chunk)
    spliced, own = [], []
    for c in iter_chunks(mlp, sae, x, chunk):
        spliced.append(c.spliced.cpu())
        own.append(c.mlp.cpu())
    spliced_m = regression_metrics(torch.cat(spliced), y)
    own_m = regression_metrics(torch.cat(own), y)
    counts, n = stats["counts"], stats["n"]
    sae.train(was_training)
    return {
        "fvu": stats["fvu"],
        "l0": stats["l0"],
        "dead": int((counts == 0).sum()),
        "dead_share": float((counts == 0).double().mean()),
        "dense_share": float((counts.double() / max(n, 1) > DENSE_THRESHOLD).double().mean()),
        "density_log10": density_log10(counts, n),
        "spliced_exact_match": spliced_m["exact_match"],
        "spliced_mse": spliced_m["mse"],
        "mlp_exact_match": own_m["exact_match"],
        "mlp_mse": own_m["mse"],
        "n": n,
    }


def metrics_table(m: dict) -> str:
    """The held-out metrics of one SAE as the stage prints them (train_sae.py, import_sae.py)."""
    rows = [("FVU (held-out)", f"{m['fvu']:.4f}"), ("L0", f"{m['l0']:.2f}"),
            ("dead features", f"{m['dead']} ({m['dead_share']:.1%})"),
            ("dense features (>10%)", f"{m['dense_share']:.1%}"),
            ("spliced exact-match", f"{m['spliced_exact_match']:.2%}  (MLP {m['mlp_exact_match']:.2%})"),
            ("spliced MSE", f"{m['spliced_mse']:.4f}  (MLP {m['mlp_mse']:.4f})")]
    if "steps" in m:                                                  # trained here (not import_sae.py's)
        rows += [("resampled", str(m["resampled"])),
                 ("training time", f"{m['train_seconds']:.1f} s, {m['steps']} steps on {m['n_train']:,} activations")]
    w = max(len(r[0]) for r in rows)
    return "\n".join(f"  {name:<{w}}  {value}" for name, value in rows)


def without_density(m: dict) -> dict:
    """The metrics as metrics.json keeps them: the per-feature density list left out (it is in the SAELens
    folder's sparsity file), its floor kept."""
    out = {k: v for k, v in m.items() if k != "density_log10"}
    out["density_floor_log10"] = DENSITY_FLOOR_LOG10
    return out
