"""The end-of-pipeline summary: a run's key metrics as lines of text (printed by run_summary.py)."""
from common.io import read_metrics
from common.paths import RunPaths


def summary_lines(paths: RunPaths) -> list[str]:
    m = read_metrics(paths.metrics)
    lines = []
    if "mlp" in m:
        t = m["mlp"]["test"]
        lines.append(f"MLP      test exact-match {t['exact_match']:.2%}  MSE {t['mse']:.4f}  (n={t['n']})")
    if "harvest" in m:
        lines.append(f"Harvest  {m['harvest']['n']:,} activations x {m['harvest']['d_hidden']}  ({m['harvest']['source']})")
    if "sae" in m:
        s = m["sae"]
        parts = [f"{k} {s[k]:.3g}" for k in ("fvu", "l0", "dead_share") if isinstance(s.get(k), (int, float))]
        if isinstance(s.get("spliced_exact_match"), (int, float)):
            parts.append(f"spliced exact-match {s['spliced_exact_match']:.2%}")
        lines.append("SAE      " + "  ".join(parts))
    if "interpretability" in m:
        i = m["interpretability"]
        f, n = i.get("features_monosemantic_share"), i.get("neurons_monosemantic_share")
        if isinstance(f, (int, float)) and isinstance(n, (int, float)):
            lines.append(f"Explained (score >= 0.8)  features {f:.1%} of {i.get('features_alive', '?')} alive  "
                         f"vs neurons {n:.1%} of {i.get('neurons_alive', '?')} alive")
    if paths.index_html.exists():
        lines.append(f"Reports  {paths.index_html.resolve()}")
    return lines
