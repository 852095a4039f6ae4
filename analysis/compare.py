"""Every SAE of a run side by side, beside the neurons and random directions: the comparison the
paper's question needs ("are the features monosemantic, and compared with what?").

One row per labelled SAE, from metrics.json alone (its `sae[:NAME]` and `interpretability[:NAME]`
sections): dictionary, explained share of alive features with the random-direction control at the
same densities, the same two shares under the split-aware grammar (a pointer pair and one value
condition), the share if ultralow units counted, alive/dead/ultralow, FVU, L0, spliced exact-match,
interchange success, absorption (full and partial, `analysis.absorption`; the random directions' full
absorption beside it), pointer ramps and core concepts found; then one row for the MLP's neurons. The comparison page, the end-of-run
summary and feature_splitting.py all read it from here.
"""
from common.io import read_metrics
from common.summary import number_at
from common.paths import RunPaths
from common.provenance import KEY, whole_sae_names



def _ratio(a, b):
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0 else None


def _found(section: dict, key: str, kind: str):
    """How many units `section[key][kind]` lists (ramps or core concepts found), None when not a list."""
    found = section.get(key)
    units = found.get(kind) if isinstance(found, dict) else None
    return len(units) if isinstance(units, list) else None


def origin_text(sae: dict) -> str:
    """Where an SAE of the run comes from: "trained here", or the library (version), its architecture
    there and the first characters of its weights file's SHA-256 (import_sae.py)."""
    o = sae.get("origin")
    if not isinstance(o, dict):
        return "trained here" if sae else ""
    version = f" {o['version']}" if o.get("version") else ""
    hashes = o.get("files") or {}
    weights = next((f"{n} {h[:12]}" for n, h in hashes.items() if not n.endswith(".json")), "")
    return f"{o.get('library', '?')}{version} {o.get('architecture', '?')}" + (f" ({weights})" if weights else "")


def sae_row(name: str, sae: dict, interp: dict) -> dict:
    """One SAE's row; a value of the wrong type (a hand-edited metrics.json) is shown as missing."""
    cfg = sae.get("config") if isinstance(sae.get("config"), dict) else {}
    settings = {k: v for k, v in cfg.items() if k not in ("architecture", "d_in", "d_sae")}
    n = lambda d, key: number_at(d, key)                              # noqa: E731
    feat, rand = n(interp, "features_monosemantic_share"), n(interp, "random_directions_monosemantic_share")
    arch = cfg.get("architecture", interp.get("architecture"))
    return {
        "sae": name, "kind": "sae", "architecture": arch if isinstance(arch, str) else None,
        "origin": origin_text(sae),
        "d_sae": n(cfg, "d_sae") if "d_sae" in cfg else n(interp, "d_sae"),
        "settings": ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in settings.items()),
        "explained_share": feat, "random_share": rand, "x_random": _ratio(feat, rand),
        "neurons_share": n(interp, "neurons_monosemantic_share"),
        "split_share": n(interp, "features_split_monosemantic_share"),
        "random_split_share": n(interp, "random_directions_split_monosemantic_share"),
        "with_ultralow_share": n(interp, "features_monosemantic_share_with_ultralow"),
        "alive": n(interp, "features_alive"), "dead": n(interp, "features_dead"),
        "ultralow": n(interp, "features_ultralow"),
        "fvu": n(sae, "fvu"), "l0": n(sae, "l0"), "spliced_exact_match": n(sae, "spliced_exact_match"),
        "interchange_success": n(interp, "interchange_success"),
        "labels_digest": (interp.get(KEY) or {}).get("digest") if isinstance(interp.get(KEY), dict) else None,
        "absorption_full": n(interp, "features_absorption_full"),
        "absorption_partial": n(interp, "features_absorption_partial"),
        "random_absorption_full": n(interp, "random_directions_absorption_full"),
        "ramps_found": _found(interp, "ramps_found", "features") if interp else None,
        "core_found": _found(interp, "core_concepts_found", "features") if interp else None,
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
    n = lambda key: number_at(ref, key)                               # noqa: E731
    neurons = {"sae": "neurons", "kind": "neurons", "architecture": "the MLP's hidden layer",
               "d_sae": sum(n(k) or 0 for k in ("neurons_alive", "neurons_dead", "neurons_ultralow")) or None,
               "explained_share": n("neurons_monosemantic_share"), "alive": n("neurons_alive"),
               "split_share": n("neurons_split_monosemantic_share"),
               "with_ultralow_share": n("neurons_monosemantic_share_with_ultralow"),
               "dead": n("neurons_dead"), "ultralow": n("neurons_ultralow"),
               "absorption_full": n("neurons_absorption_full"), "absorption_partial": n("neurons_absorption_partial"),
               "ramps_found": _found(ref, "ramps_found", "neurons") if ref else None,
               "core_found": _found(ref, "core_concepts_found", "neurons") if ref else None}
    capacity = {k: n(k) for k in ("hidden_pcs_for_90", "hidden_pcs_for_99", "hidden_variance_explained_by_cell")}
    return {"saes": rows, "neurons": neurons, "mlp_exact_match": n("mlp_exact_match"),
            "n_inputs": n("n_inputs"), "capacity": capacity}


def capacity_line(c: dict) -> str | None:
    """How much there is to find in the hidden layer (analysis.capacity), as a sentence."""
    k = c.get("capacity") or {}
    if None in (k.get("hidden_pcs_for_90"), k.get("hidden_pcs_for_99"), k.get("hidden_variance_explained_by_cell")):
        return None
    return (f"The hidden layer: {k['hidden_pcs_for_90']} principal components hold 90% of its variance, "
            f"{k['hidden_pcs_for_99']} hold 99%; the (p1, p2, a, b) cell alone explains "
            f"{k['hidden_variance_explained_by_cell']:.1%} of it.")


def _pct(v):
    return "-" if v is None else f"{v:.1%}"


def _num(v, fmt):
    return "-" if v is None else format(round(v) if fmt == "d" else v, fmt)


NAME_WIDTH = 28       # the SAE column of the text table; longer names are cut with an ellipsis


def fit(text: str, width: int) -> str:
    """`text` in `width` characters, cut visibly ("...") when longer, padded when shorter."""
    text = str(text)
    return f"{text[:width - 3]}..." if len(text) > width else f"{text:<{width}}"


def comparison_lines(c: dict) -> list[str]:
    """The comparison as a plain-text table (the end-of-run summary prints it). The SAE column is as wide
    as the longest name up to NAME_WIDTH, and one space always separates the columns."""
    w = max(14, min(NAME_WIDTH, max([len(r["sae"]) for r in c["saes"]], default=0)) + 2)
    head = (f"{'SAE':<{w}}{'dictionary':<22}{'explained':>10}{'random':>8}{'split':>7}{'random':>8}{'alive':>7}{'dead':>6}"
            f"{'FVU':>8}{'L0':>7}{'spliced':>9}{'interch.':>9}{'absorb.':>8}{'random':>7}{'ramps':>7}")
    lines = [head]
    for r in c["saes"]:
        dictionary = f"{r['architecture']} {r['d_sae']}"
        lines.append(f"{fit(r['sae'], w - 2)}  {fit(dictionary, 21)} {_pct(r['explained_share']):>10}{_pct(r['random_share']):>8}"
                     f"{_pct(r.get('split_share')):>7}{_pct(r.get('random_split_share')):>8}"
                     f"{_num(r['alive'], 'd'):>7}{_num(r['dead'], 'd'):>6}{_num(r['fvu'], '.4f'):>8}"
                     f"{_num(r['l0'], '.1f'):>7}{_pct(r['spliced_exact_match']):>9}"
                     f"{_pct(r['interchange_success']):>9}{_num(r.get('absorption_full'), '.3f'):>8}"
                     f"{_num(r.get('random_absorption_full'), '.3f'):>7}"
                     f"{_num(r['ramps_found'], 'd') + '/9' if r['labelled'] else '-':>7}")
    n = c["neurons"]
    lines.append(f"{'neurons':<{w}}{'the MLP hidden layer':<22}{_pct(n['explained_share']):>10}{'':>8}"
                 f"{_pct(n.get('split_share')):>7}{'':>8}"
                 f"{_num(n['alive'], 'd'):>7}{_num(n['dead'], 'd'):>6}{'':>8}{'':>7}{'':>9}{'':>9}"
                 f"{_num(n.get('absorption_full'), '.3f'):>8}{'':>7}"
                 f"{_num(n['ramps_found'], 'd') + '/9' if n['ramps_found'] is not None else '-':>7}")
    if capacity_line(c):
        lines.append(capacity_line(c))
    return lines
