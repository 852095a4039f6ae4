"""Across L (issue 24, items 3-4): what the layer holds and what each dictionary recovers as the task
grows, run by hand. Nothing is trained here: it reads finished pipeline runs (one per L) and, for
several seeds and dictionaries, the rows `bench_dictionaries.py` measured on those runs:

    .venv/bin/python run_pipeline.py --slots 8 --run-dir runs/slots8          # one run per L, then
    PYTHONPATH=. .venv/bin/python benchmarks/bench_dictionaries.py --run-dir runs/slots8 \\
        --architectures topk --sizes 256,2048 --seeds 0,1,2 --n-inputs 32768 --no-synthetic --csv grid.csv
    PYTHONPATH=. .venv/bin/python benchmarks/bench_slots.py runs/default runs/slots8 --grid grid.csv \\
        [--csv out.csv] [--html across_slots.html] [--markdown]

Per run: L (from the MLP), the layer's capacity (principal components for 90% / 99% of its variance,
the share of its variance the (p1, p2, a, b) cell explains) and the neurons' alive count. Per
dictionary and L: alive latents, the explained share of the alive ones (held-out score >= 0.8)
beside random directions at the same densities (the control) and the neurons, full absorption, FVU
and spliced exact-match, as the mean (min-max) over the seeds measured; "target" counts the seeds
that meet issue 24's target (>= 2048 latents, >= 50% alive, >= 50% of those explained, >= 3x random,
>= 8x the neurons). A dictionary the grid did not measure at an L is the run's own labelled SAE (one seed); a
run not labelled yet gives its layer's capacity only (measured here as label_features.py does).
The cell share is measured on the labels' fresh inputs (32,768 by default): at L = 8 that is ~5
inputs per cell of 6,400, which inflates it; read it beside the component counts.
"""
import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the project root: `benchmarks.` as a script too

import torch  # noqa: E402

from analysis.capacity import layer_capacity  # noqa: E402
from analysis.labels import DEFAULT_N_INPUTS, fresh_inputs  # noqa: E402
from benchmarks.bench_dictionaries import RULE, control_ratio, meets_rule  # noqa: E402
from common.cli import run_main  # noqa: E402
from common.io import PipelineError, atomic_write_text, read_metrics  # noqa: E402
from common.paths import RunPaths  # noqa: E402
from mlp.mlp_definition import load_mlp  # noqa: E402
from viz.across_slots import across_slots_html  # noqa: E402
from viz.common import esc  # noqa: E402

# issue 24's target: bench_dictionaries.py's rule (a dictionary of >= 2048 latents, >= 50% alive, >= 50% of those
# explained, >= 3x the random directions) and this many times the neurons' explained share
NEURONS_RATIO = 8.0
NAMES = {"topk": "TopK", "relu": "L1", "balmatryoshka": "balance Matryoshka", "batchtopk": "BatchTopK",
         "matryoshka": "Matryoshka", "jumprelu": "JumpReLU", "gated": "Gated", "ortsae": "OrtSAE"}
COLUMNS = ["L", "dictionary", "architecture", "d_sae", "seeds", "alive", "alive_lo", "alive_hi", "explained",
           "explained_lo", "explained_hi", "random", "neurons", "vs_random", "vs_neurons", "absorption_full", "fvu",
           "spliced_exact_match", "target_met", "pcs_90", "pcs_99", "cell_share", "neurons_alive", "source"]


def _float(v):
    return None if v in (None, "", "inf") else float(v)


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def meets_target(d_sae, alive, explained, random, neurons) -> bool:
    """One seed's dictionary against issue 24's target: bench_dictionaries.py's rule, and the neurons."""
    vs_neurons = control_ratio(explained, neurons)
    return (meets_rule({"size": d_sae, "alive": alive, "explained_share": explained,
                        "ratio": control_ratio(explained, random)})
            and vs_neurons is not None and vs_neurons >= NEURONS_RATIO)


def seed_rows_of_run(run_dir: Path) -> tuple[dict, list[dict]]:
    """(the run's layer: L, capacity, neurons alive; one seed row per labelled SAE of the run)."""
    paths = RunPaths(run_dir)
    for p in (paths.metrics, paths.mlp):
        if not p.is_file():
            raise PipelineError(f"{p}: missing; expected a finished pipeline run")
    metrics = read_metrics(paths.metrics)
    mlp = load_mlp(paths.mlp)
    slots = mlp.task.slots
    if "interpretability" in metrics:
        lab = metrics["interpretability"]
    else:    # not labelled (yet): the layer's capacity as label_features.py measures it (seed 0), no SAE rows
        x = fresh_inputs(0, DEFAULT_N_INPUTS, task=mlp.task)
        with torch.no_grad():
            lab = layer_capacity(mlp.hidden(x), x)
    layer = {"L": slots, "pcs_90": lab.get("hidden_pcs_for_90"), "pcs_99": lab.get("hidden_pcs_for_99"),
             "cell_share": lab.get("hidden_variance_explained_by_cell"), "neurons_alive": lab.get("neurons_alive")}
    rows = []
    for section in sorted(k for k in metrics if k == "interpretability" or k.startswith("interpretability:")):
        name = section.partition(":")[2] or "default"
        lab, sae = metrics[section], metrics.get("sae" + (f":{name}" if name != "default" else ""), {})
        cfg = sae.get("config", {})
        rows.append({"L": slots, "architecture": cfg.get("architecture"), "d_sae": cfg.get("d_sae"),
                     "alive": lab.get("features_alive"), "explained": lab.get("features_monosemantic_share"),
                     "random": lab.get("random_directions_monosemantic_share"),
                     "neurons": lab.get("neurons_monosemantic_share"), "absorption_full": lab.get("features_absorption_full"),
                     "fvu": sae.get("fvu"), "spliced_exact_match": lab.get("spliced_exact_match"), "source": f"run {run_dir}"})
    return layer, rows


def seed_rows_of_grid(path: Path) -> list[dict]:
    """bench_dictionaries.py's rows of real activations (one per dictionary and seed), which must say their L."""
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("kind") == "real"]
    out = []
    for i, r in enumerate(rows, start=2):
        if not r.get("slots"):
            raise PipelineError(f"--grid {path}: row {i}: no slots column; expected rows of bench_dictionaries.py, "
                                "which records the task's L")
        out.append({"L": int(r["slots"]), "architecture": r["architecture"], "d_sae": int(r["size"]),
                    "settings": r["settings"], "alive": int(r["alive"]), "explained": _float(r["explained_share"]),
                    "random": _float(r["control_share"]), "neurons": _float(r["neurons_share"]),
                    "absorption_full": _float(r["absorption_full"]), "fvu": _float(r["fvu"]),
                    "spliced_exact_match": _float(r["spliced_exact_match"]), "source": f"grid {path}"})
    return out


def dictionary_name(arch, d_sae, settings="") -> str:
    if arch is None:
        return "?"
    # bench_dictionaries.py writes "recipe" for a dictionary of the architecture's own settings
    return f"{NAMES.get(arch, arch)} {d_sae}" + (f" ({settings})" if settings not in ("", "-", "recipe") else "")


def summarize(layers: dict, seed_rows: list[dict]) -> list[dict]:
    """One row per (L, dictionary): mean and range over its seeds, the target's count, the layer's capacity.
    For a dictionary the grid measured at an L, its rows replace the run's own SAE of that name."""
    key = lambda r: (r["L"], dictionary_name(r["architecture"], r["d_sae"], r.get("settings", "")))
    in_grid = {key(r) for r in seed_rows if r["source"].startswith("grid")}
    groups = {}
    for r in seed_rows:
        if key(r) in in_grid and not r["source"].startswith("grid"):
            continue
        groups.setdefault(key(r), []).append(r)
    out = []
    for (L, name), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[1][0]["d_sae"] or 0, kv[0][1])):
        def col(k):
            return [r[k] for r in rs if r[k] is not None]
        explained, alive = col("explained"), col("alive")
        mean = {k: _mean(col(k)) for k in ("random", "neurons", "absorption_full", "fvu", "spliced_exact_match")}
        f = _mean(explained)
        met = sum(meets_target(r["d_sae"] or 0, r["alive"] or 0, r["explained"] or 0, r["random"] or 0,
                               r["neurons"] or 0) for r in rs)
        out.append({"L": L, "dictionary": name, "architecture": rs[0]["architecture"], "d_sae": rs[0]["d_sae"],
                    "seeds": len(rs), "alive": _mean(alive), "alive_lo": min(alive, default=None),
                    "alive_hi": max(alive, default=None), "explained": f, "explained_lo": min(explained, default=None),
                    "explained_hi": max(explained, default=None), **mean,
                    "vs_random": f / mean["random"] if f is not None and mean["random"] else None,
                    "vs_neurons": f / mean["neurons"] if f is not None and mean["neurons"] else None,
                    "target_met": met, **{k: v for k, v in layers.get(L, {}).items() if k != "L"},
                    "source": rs[0]["source"]})
    return out


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def span(r, key, spec, scale=1.0) -> str:
    if r[key] is None:
        return "-"
    if r["seeds"] < 2:
        return format(r[key] * scale, spec)
    return f"{format(r[key] * scale, spec)} ({format(r[key + '_lo'] * scale, spec)}-{format(r[key + '_hi'] * scale, spec)})"


def table_cells(r: dict) -> list[str]:
    return [str(r["L"]), r["dictionary"], str(r["seeds"]), span(r, "alive", ".0f"), span(r, "explained", ".1f", 100),
            fmt(r["random"] and 100 * r["random"], ".1f"), fmt(r["neurons"] and 100 * r["neurons"], ".1f"),
            fmt(r["vs_random"], ".1f"), fmt(r["vs_neurons"], ".2f"), fmt(r["absorption_full"], ".3f"),
            fmt(r["fvu"], ".4f"), fmt(r["spliced_exact_match"] and 100 * r["spliced_exact_match"], ".1f"),
            f"{r['target_met']}/{r['seeds']}" if (r["d_sae"] or 0) >= RULE["d_sae"] else "-",
            f"{fmt(r.get('pcs_90'), 'd')}/{fmt(r.get('pcs_99'), 'd')}", fmt(r.get("cell_share"), ".0%")]


HEADERS = ["L", "dictionary", "seeds", "alive", "explained %", "random %", "neurons %", "x random", "x neurons",
           "full absorption", "FVU", "spliced %", "target", "PCs 90/99", "cell share"]


def chart_series(rows: list[dict]) -> dict:
    """The neurons (their explained share: the mean over the dictionaries' seeds at each L) and each
    dictionary size, as viz.across_slots draws them."""
    series = {}
    for L in sorted({r["L"] for r in rows}):
        at = [r for r in rows if r["L"] == L and r["neurons"] is not None]
        if at and at[0].get("neurons_alive") is not None:
            n = _mean([r["neurons"] for r in at])
            series.setdefault("neurons (512)", []).append(
                {"L": L, "seeds": max(r["seeds"] for r in at), "explained": (n, n, n), "random": None,
                 "alive": (at[0]["neurons_alive"],) * 3, "size": 512})
    for r in rows:
        series.setdefault(r["dictionary"], []).append(
            {"L": r["L"], "seeds": r["seeds"], "explained": (r["explained"], r["explained_lo"], r["explained_hi"]),
             "random": r["random"], "alive": (r["alive"], r["alive_lo"], r["alive_hi"]), "size": r["d_sae"]})
    return series


def table_html(rows: list[dict]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in table_cells(r)) + "</tr>" for r in rows)
    return f'<table class="metrics"><tr>{head}</tr>{body}</table>'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dirs", nargs="+", help="finished pipeline runs, one per L")
    p.add_argument("--grid", nargs="+", default=[], metavar="CSV",
                   help="bench_dictionaries.py rows measured on those runs (several seeds and dictionaries)")
    p.add_argument("--csv", default=None, help="also write the summary rows to this CSV file")
    p.add_argument("--html", default=None, help="also write the chart and table as one offline page")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown (the README's)")
    return p.parse_args(argv)


def main(args) -> list[dict]:
    layers, seed_rows = {}, []
    for d in args.run_dirs:
        layer, rows = seed_rows_of_run(Path(d))
        if layer["L"] in layers:
            raise PipelineError(f"{d}: a second run at L = {layer['L']}; expected one run per L")
        layers[layer["L"]] = layer
        seed_rows += rows
    for path in args.grid:
        if not Path(path).is_file():
            raise PipelineError(f"--grid {path}: no such file")
        grid = seed_rows_of_grid(Path(path))
        stray = sorted({r["L"] for r in grid} - set(layers))
        if stray:
            raise PipelineError(f"--grid {path}: rows at L = {stray} but no run given at that L")
        seed_rows += grid
    rows = summarize(layers, seed_rows)
    if args.markdown:
        print("| " + " | ".join(HEADERS) + " |")
        print("|" + "---|" * len(HEADERS))
        for r in rows:
            print("| " + " | ".join(table_cells(r)) + " |")
    else:
        widths = [max(len(h), *(len(table_cells(r)[i]) for r in rows)) for i, h in enumerate(HEADERS)]
        print("  ".join(h.rjust(w) for h, w in zip(HEADERS, widths)))
        for r in rows:
            print("  ".join(c.rjust(w) for c, w in zip(table_cells(r), widths)))
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    if args.html:
        sources = sorted({r["source"] for r in rows})
        atomic_write_text(Path(args.html), across_slots_html(
            chart_series(rows), table_html(rows), "Across L: where an overcomplete dictionary pays",
            footer="made from: " + "; ".join(sources)))
        print(f"wrote {args.html}")
    return rows


if __name__ == "__main__":
    run_main(main, parse_args())
