"""Across L (issue 24, item 3): what the layer holds and what each dictionary recovers, one finished
pipeline run per L, read from the runs' metrics.json (nothing is trained here), run by hand:

    .venv/bin/python run_pipeline.py --slots 8 --run-dir runs/slots8      # one run per L, then
    .venv/bin/python benchmarks/bench_slots.py runs/default runs/slots8 [--csv out.csv]

Per run: L (from the MLP), the layer's capacity (principal components for 90% / 99% of its variance,
the share of its variance the (p1, p2, a, b) cell explains), the neurons' explained share; and per
labelled SAE of the run (the default TopK 256, the paper's L1 2048, and any other `sae/NAME` labelled
with `label_features.py --sae all`, e.g. a TopK 2048 trained with `train_sae.py --name topk2048
--d-sae 2048`): alive latents, explained share of the alive ones (held-out score >= 0.8) beside random
directions at the same densities (the control) and the neurons, full absorption, FVU and spliced
exact-match. The cell share is measured on the labels' fresh inputs (32,768 by default): at L = 8
that is ~5 inputs per cell of 6,400, which inflates it; read it beside the component counts.
"""
import argparse
import csv
import sys
from pathlib import Path

from common.io import read_metrics
from common.paths import RunPaths
from mlp.mlp_definition import load_mlp

COLUMNS = ["L", "sae", "architecture", "d_sae", "alive", "explained", "random", "neurons", "vs_random", "vs_neurons",
           "absorption_full", "fvu", "spliced_exact_match", "pcs_90", "pcs_99", "cell_share", "mlp_exact_match"]


def rows_of(run_dir: Path) -> list[dict]:
    paths = RunPaths(run_dir)
    metrics = read_metrics(paths.metrics)
    slots = load_mlp(paths.mlp).task.slots
    out = []
    for section in sorted(k for k in metrics if k == "interpretability" or k.startswith("interpretability:")):
        name = section.partition(":")[2] or "default"
        lab, sae = metrics[section], metrics.get("sae" + (f":{name}" if name != "default" else ""), {})
        cfg = sae.get("config", {})
        f, r, n = (lab.get(f"{p}_monosemantic_share") for p in ("features", "random_directions", "neurons"))
        out.append({"L": slots, "sae": name, "architecture": cfg.get("architecture"), "d_sae": cfg.get("d_sae"),
                    "alive": lab.get("features_alive"), "explained": f, "random": r, "neurons": n,
                    "vs_random": f / r if f is not None and r else None, "vs_neurons": f / n if f is not None and n else None,
                    "absorption_full": lab.get("features_absorption_full"), "fvu": sae.get("fvu"),
                    "spliced_exact_match": lab.get("spliced_exact_match"), "pcs_90": lab.get("hidden_pcs_for_90"),
                    "pcs_99": lab.get("hidden_pcs_for_99"), "cell_share": lab.get("hidden_variance_explained_by_cell"),
                    "mlp_exact_match": lab.get("mlp_exact_match")})
    return out


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dirs", nargs="+", help="finished pipeline runs, one per L")
    p.add_argument("--csv", default=None, help="also write the rows to this CSV file")
    args = p.parse_args(argv)
    rows = [r for d in args.run_dirs for r in rows_of(Path(d))]
    rows.sort(key=lambda r: (r["L"], r["d_sae"] or 0, r["sae"]))
    print(f"{'L':>2} {'sae':<8} {'arch':<5} {'d_sae':>5} {'alive':>5} {'explained':>9} {'random':>6} {'neurons':>7} "
          f"{'x rand':>6} {'x neur':>6} {'absorb':>6} {'FVU':>6} {'spliced':>7} {'PCs 90/99':>9} {'cell':>5}")
    for r in rows:
        print(f"{r['L']:>2} {r['sae']:<8} {r['architecture'] or '-':<5} {fmt(r['d_sae'], 'd'):>5} {fmt(r['alive'], 'd'):>5} "
              f"{fmt(r['explained'], '.1%'):>9} {fmt(r['random'], '.1%'):>6} {fmt(r['neurons'], '.1%'):>7} "
              f"{fmt(r['vs_random'], '.1f'):>6} {fmt(r['vs_neurons'], '.2f'):>6} {fmt(r['absorption_full'], '.3f'):>6} "
              f"{fmt(r['fvu'], '.4f'):>6} {fmt(r['spliced_exact_match'], '.1%'):>7} "
              f"{fmt(r['pcs_90'], 'd'):>4}/{fmt(r['pcs_99'], 'd'):<4} {fmt(r['cell_share'], '.0%'):>5}")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, COLUMNS)
            w.writeheader()
            w.writerows(rows)
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
