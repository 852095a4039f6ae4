"""The end-of-pipeline summary: a run's key metrics as lines of text (printed by run_summary.py)."""
import math

from common.io import read_metrics
from common.paths import RunPaths


def _get(m: dict, *keys):
    """m[k1][k2]... or None where a level is missing or not a dict (a hand-edited metrics.json)."""
    for k in keys:
        if not isinstance(m, dict):
            return None
        m = m.get(k)
    return m


def number_at(m: dict, *keys):
    """The number at m[k1][k2]..., or None where it is missing, not a number or not finite."""
    v = _get(m, *keys)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def summary_lines(paths: RunPaths) -> list[str]:
    """One line per stage that has its section; a value that is missing or not a number is left out."""
    m = read_metrics(paths.metrics)
    lines = []
    test = [number_at(m, "mlp", "test", k) for k in ("exact_match", "mse", "n")]
    if None not in test:
        lines.append(f"MLP      test exact-match {test[0]:.2%}  MSE {test[1]:.4f}  (n={test[2]:.0f})")
    n, d = number_at(m, "harvest", "n"), number_at(m, "harvest", "d_hidden")
    if n is not None and d is not None:
        lines.append(f"Harvest  {n:,.0f} activations x {d:.0f}  ({_get(m, 'harvest', 'source')})")
    if "sae" in m:
        parts = [f"{k} {number_at(m, 'sae', k):.3g}" for k in ("fvu", "l0", "dead_share")
                 if number_at(m, "sae", k) is not None]
        if number_at(m, "sae", "spliced_exact_match") is not None:
            parts.append(f"spliced exact-match {number_at(m, 'sae', 'spliced_exact_match'):.2%}")
        lines.append("SAE      " + "  ".join(parts))
    f = number_at(m, "interpretability", "features_monosemantic_share")
    n = number_at(m, "interpretability", "neurons_monosemantic_share")
    if f is not None and n is not None:
        i = m["interpretability"]
        lines.append(f"Explained (score >= 0.8)  features {f:.1%} of {i.get('features_alive', '?')} alive  "
                     f"vs neurons {n:.1%} of {i.get('neurons_alive', '?')} alive")
    if paths.index_html.exists():
        lines.append(f"Reports  {paths.index_html.resolve()}")
    return lines
