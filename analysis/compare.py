"""Every SAE of a run side by side, beside the neurons and random directions: the comparison the
paper's question needs ("are the features monosemantic, and compared with what?").

One row per labelled SAE, from metrics.json alone (its `sae[:NAME]` and `interpretability[:NAME]`
sections): dictionary, explained share of alive features with the random-direction control at the
same densities, the same two shares under the split-aware grammar (a pointer pair and one value
condition), the share if ultralow units counted, alive/dead/ultralow, FVU, L0, spliced exact-match,
interchange success, pointer ramps and core concepts found; then one row for the MLP's neurons. The comparison page, the end-of-run
summary and feature_splitting.py all read it from here.
"""
from common.io import read_metrics
from common.paths import RunPaths
from common.provenance import KEY, whole_sae_names

N_RAMPS = 9            # 8 pointer ramps + the sign of a - b
N_CORE = 38            # the core concepts (analysis.concepts.CORE_CONCEPTS)


def _ratio(a, b):
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0 else None


def sae_row(name: str, sae: dict, interp: dict) -> dict:
    cfg = sae.get("config", {})
    settings = {k: v for k, v in cfg.items() if k not in ("architecture", "d_in", "d_sae")}
    feat, rand = interp.get("features_monosemantic_share"), interp.get("random_directions_monosemantic_share")
    return {
        "sae": name, "kind": "sae", "architecture": cfg.get("architecture", interp.get("architecture")),
        "d_sae": cfg.get("d_sae", interp.get("d_sae")),
        "settings": ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in settings.items()),
        "explained_share": feat, "random_share": rand, "x_random": _ratio(feat, rand),
        "neurons_share": interp.get("neurons_monosemantic_share"),
        "split_share": interp.get("features_split_monosemantic_share"),
        "random_split_share": interp.get("random_directions_split_monosemantic_share"),
        "with_ultralow_share": interp.get("features_monosemantic_share_with_ultralow"),
        "alive": interp.get("features_alive"), "dead": interp.get("features_dead"),
        "ultralow": interp.get("features_ultralow"),
        "fvu": sae.get("fvu"), "l0": sae.get("l0"), "spliced_exact_match": sae.get("spliced_exact_match"),
        "interchange_success": interp.get("interchange_success"),
        "labels_digest": (interp.get(KEY) or {}).get("digest"),      # what the row's figures were read from
        "ramps_found": len(interp.get("ramps_found", {}).get("features", [])) if interp else None,
        "core_found": len(interp.get("core_concepts_found", {}).get("features", [])) if interp else None,
        "labelled": bool(interp),
    }


def comparison(paths: RunPaths) -> dict:
    """{"saes": [row per SAE of the run, default first], "neurons": row, "mlp_exact_match"}."""
    m = read_metrics(paths.metrics)
    rows = []
    for name in whole_sae_names(paths):
        p = paths.for_sae(name)
        rows.append(sae_row(name, m.get(p.section("sae"), {}), m.get(p.section("interpretability"), {})))
    labelled = [m[paths.for_sae(r["sae"]).section("interpretability")] for r in rows if r["labelled"]]
    ref = labelled[0] if labelled else {}
    neurons = {"sae": "neurons", "kind": "neurons", "architecture": "the MLP's hidden layer",
               "d_sae": (ref.get("neurons_alive", 0) + ref.get("neurons_dead", 0) + ref.get("neurons_ultralow", 0)) or None,
               "explained_share": ref.get("neurons_monosemantic_share"), "alive": ref.get("neurons_alive"),
               "split_share": ref.get("neurons_split_monosemantic_share"),
               "with_ultralow_share": ref.get("neurons_monosemantic_share_with_ultralow"),
               "dead": ref.get("neurons_dead"), "ultralow": ref.get("neurons_ultralow"),
               "ramps_found": len(ref.get("ramps_found", {}).get("neurons", [])) if ref else None,
               "core_found": len(ref.get("core_concepts_found", {}).get("neurons", [])) if ref else None}
    capacity = {k: ref.get(k) for k in ("hidden_pcs_for_90", "hidden_pcs_for_99", "hidden_variance_explained_by_cell")}
    return {"saes": rows, "neurons": neurons, "mlp_exact_match": ref.get("mlp_exact_match"),
            "n_inputs": ref.get("n_inputs"), "capacity": capacity}


def capacity_line(c: dict) -> str | None:
    """How much there is to find in the hidden layer (analysis.capacity), as a sentence."""
    k = c.get("capacity") or {}
    if k.get("hidden_pcs_for_90") is None:
        return None
    return (f"The hidden layer: {k['hidden_pcs_for_90']} principal components hold 90% of its variance, "
            f"{k['hidden_pcs_for_99']} hold 99%; the (p1, p2, a, b) cell alone explains "
            f"{k['hidden_variance_explained_by_cell']:.1%} of it.")


def _pct(v):
    return "-" if v is None else f"{v:.1%}"


def _num(v, fmt):
    return "-" if v is None else format(v, fmt)


def comparison_lines(c: dict) -> list[str]:
    """The comparison as a plain-text table (the end-of-run summary prints it)."""
    head = (f"{'SAE':<14}{'dictionary':<22}{'explained':>10}{'random':>8}{'split':>7}{'random':>8}{'alive':>7}{'dead':>6}"
            f"{'FVU':>8}{'L0':>7}{'spliced':>9}{'interch.':>9}{'ramps':>7}")
    lines = [head]
    for r in c["saes"]:
        dictionary = f"{r['architecture']} {r['d_sae']}"
        lines.append(f"{r['sae']:<14.14}{dictionary:<22.22}{_pct(r['explained_share']):>10}{_pct(r['random_share']):>8}"
                     f"{_pct(r.get('split_share')):>7}{_pct(r.get('random_split_share')):>8}"
                     f"{_num(r['alive'], 'd'):>7}{_num(r['dead'], 'd'):>6}{_num(r['fvu'], '.4f'):>8}"
                     f"{_num(r['l0'], '.1f'):>7}{_pct(r['spliced_exact_match']):>9}"
                     f"{_pct(r['interchange_success']):>9}{_num(r['ramps_found'], 'd') + '/9' if r['labelled'] else '-':>7}")
    n = c["neurons"]
    lines.append(f"{'neurons':<14}{'the MLP hidden layer':<22}{_pct(n['explained_share']):>10}{'':>8}"
                 f"{_pct(n.get('split_share')):>7}{'':>8}"
                 f"{_num(n['alive'], 'd'):>7}{_num(n['dead'], 'd'):>6}{'':>8}{'':>7}{'':>9}{'':>9}"
                 f"{_num(n['ramps_found'], 'd') + '/9' if n['ramps_found'] is not None else '-':>7}")
    if capacity_line(c):
        lines.append(capacity_line(c))
    return lines
