"""Feature splitting: how monosemantic the features of SAEs of different sizes/configs are, and which
large-dictionary features descend from which small ones.

Reads  <run-dir>/mlp/perfect_mlp.pth (stage 2) and SAE files: every <run-dir>/sae/sweep/d_sae=N/
       sae_model.pth of a dictionary-size sweep (`train_sae.py --sweep d_sae=64,128,...,2048`), the
       run's own <run-dir>/sae/sae_model.pth when present ("default", with the run's labels from
       label_features.py, which must be current and made with the same --seed / --n-inputs), and any
       `--sae NAME=PATH`. The other SAEs are labelled here, in memory, the way label_features.py does.
Writes <run-dir>/reports/splitting.csv (one row per SAE: alive/ultralow/dead, share of alive features
       scoring >= 0.8, median score, pointer ramps + sign of a - b found, core concepts found,
       interchange success, spliced exact-match on fresh inputs, FVU and L0 from the SAE file, and
       the same share for random directions of matched density), reports/splitting_links.csv (each
       feature's closest decoder direction in the next smaller dictionary of the sweep), and the
       "feature_splitting" section of metrics.json.

    python train_sae.py --architecture topk --k 16 --sweep d_sae=64,128,256,512,1024,2048
    python feature_splitting.py
    python feature_splitting.py --sae relu2048=runs/other/sae/sae_model.pth
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
import argparse
import re
from pathlib import Path

import pandas as pd

from analysis.explain import MONOSEMANTIC_SCORE, POINTER_RAMP_NAMES, SIGN_NAME
from analysis.labels import DEFAULT_N_INPUTS, label_models
from analysis.labels_io import read_labels, write_table
from analysis.run import load_run_models
from analysis.splitting import random_direction_control, splitting_links, splitting_summary
from common.cli import add_common_args, pick_device, run_main, run_paths
from common.io import PipelineError, require_inputs, update_metrics
from mlp.mlp_definition import load_mlp
from sae.sae_definition import load_sae, sae_metrics_of
from sae.splice import chunked_pass


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--sae", action="append", default=[], metavar="NAME=PATH", help="also score this SAE file (repeatable)")
    p.add_argument("--n-inputs", type=int, default=DEFAULT_N_INPUTS,
                   help=f"fresh inputs every SAE is scored on (default: {DEFAULT_N_INPUTS})")
    p.add_argument("--no-control", action="store_true", help="skip the random-direction control")
    p.add_argument("--no-interchange", action="store_true", help="skip the interchange test")
    return p.parse_args(argv)


def sae_files(args, paths) -> list:
    """[(name, path)]: the d_sae sweep in size order, then the run's SAE, then --sae."""
    found = []
    if paths.sweep_dir.exists():
        for d in paths.sweep_dir.iterdir():
            m = re.fullmatch(r"d_sae=(\d+)", d.name)
            if m and (d / "sae_model.pth").exists():
                found.append((int(m.group(1)), f"d_sae={m.group(1)}", d / "sae_model.pth"))
    files = [(name, path) for _, name, path in sorted(found)]
    if paths.sae.exists():
        files.append(("default", paths.sae))
    for spec in args.sae:
        if "=" not in spec:
            raise PipelineError(f"--sae {spec!r}: expected NAME=PATH to an SAE file")
        name, path = spec.split("=", 1)
        if not Path(path).exists():
            raise PipelineError(f"--sae {spec!r}: {path} not found")
        files.append((name, Path(path)))
    return files


def run_labels(args, paths, mlp):
    """The run's own labels (read, never rebuilt here), with the hidden layer on their inputs when the
    random-direction control needs it."""
    labels = read_labels(paths, seed=args.seed, n_inputs=args.n_inputs)
    if not args.no_control:
        labels.extras["hidden"] = chunked_pass(mlp, None, labels.inputs)["hidden"]   # [n, d_hidden]
    return labels


def main(args) -> dict:
    paths = run_paths(args)
    require_inputs(paths, "mlp")
    files = sae_files(args, paths)
    if not files:
        raise PipelineError(f"{paths.sweep_dir}: no SAEs to compare; run train_sae.py --run-dir {args.run_dir} "
                            f"--architecture topk --k 16 --sweep d_sae=64,128,256,512,1024,2048 first")
    device = pick_device(args.device)
    mlp = load_mlp(paths.mlp, device=device)
    rows, tables, saes, neuron_share = [], {}, {}, None
    for i, (name, path) in enumerate(files):
        if name == "default" and path == paths.sae:
            _, sae = load_run_models(paths, device)        # refuses an SAE of another MLP
            labels = run_labels(args, paths, mlp)
        else:
            sae = load_sae(path, device=device)
            labels = label_models(mlp, sae, seed=args.seed, n_inputs=args.n_inputs, neurons=(i == 0),
                                  interchange=not args.no_interchange, keep_activations=not args.no_control)
        s = labels.summary
        if i == 0:
            neuron_share = s["neurons_monosemantic_share"]
        m = sae_metrics_of(path)
        cfg = sae.cfg
        row = {"name": name, "architecture": cfg.architecture, "d_sae": cfg.d_sae,
               "k": cfg.k if cfg.architecture == "topk" else None,
               "l1_coeff": cfg.l1_coeff if cfg.architecture == "relu" else None,
               "alive": s["features_alive"], "ultralow": s["features_ultralow"], "dead": s["features_dead"],
               "monosemantic": s["features_monosemantic"], "share_ge_0.8": round(s["features_monosemantic_share"], 4),
               "median_score": round(s["features_median_score"], 4) if s["features_alive"] else None,
               "ramps_found": len(s["ramps_found"]["features"]),
               "ramps": ";".join(s["ramps_found"]["features"]),
               "core_found": len(s["core_concepts_found"]["features"]),
               "interchange_success": s["interchange_success"],
               "spliced_exact_match": round(s["spliced_exact_match"], 4),
               "fvu": m.get("fvu"), "l0": m.get("l0"), "path": str(path)}
        if not args.no_control:
            alive = labels.features["status"] == "alive"
            ctrl = random_direction_control(labels.extras["hidden"], labels.inputs,
                                            labels.features.loc[alive, "density"].to_numpy(), seed=args.seed)
            t = ctrl.table
            ok = t["status"] == "alive"
            row["random_share_ge_0.8"] = round(float((ok & (t["score"] >= MONOSEMANTIC_SCORE)).sum() / max(ok.sum(), 1)), 4)
            row["random_median_score"] = round(float(t.loc[ok, "score"].median()), 4) if ok.any() else None
        rows.append(row)
        tables[name], saes[name] = labels.features, sae.cpu()
        if not args.quiet:
            print(f"{name}: {row['alive']} alive, {row['share_ge_0.8']:.1%} >= 0.8 "
                  f"(random {row.get('random_share_ge_0.8', float('nan')):.1%}), ramps {row['ramps_found']}/9, "
                  f"spliced {row['spliced_exact_match']:.1%}, FVU {row['fvu'] if row['fvu'] is None else round(row['fvu'], 4)}")
    table = pd.DataFrame(rows)
    table.insert(table.columns.get_loc("share_ge_0.8") + 1, "neurons_share_ge_0.8", round(neuron_share, 4))
    sweep = [n for n, _ in files if n.startswith("d_sae=")]
    links = [splitting_links(a, saes[a], tables[a], b, saes[b], tables[b]) for a, b in zip(sweep, sweep[1:])]
    links_df = pd.concat(links, ignore_index=True) if links else pd.DataFrame()
    write_table(paths.splitting_csv, table)
    write_table(paths.splitting_links_csv, links_df)
    result = {"rows": table.to_dict(orient="records"), "splits": [splitting_summary(l_) for l_ in links],
              "neurons_share_ge_0.8": neuron_share, "n_inputs": args.n_inputs, "seed": args.seed,
              "ramp_names": list(POINTER_RAMP_NAMES) + [SIGN_NAME]}
    update_metrics(paths.metrics, "feature_splitting", result)
    if not args.quiet:
        cols = ["name", "alive", "share_ge_0.8", "neurons_share_ge_0.8", "random_share_ge_0.8", "ramps_found",
                "core_found", "interchange_success", "spliced_exact_match", "fvu"]
        print(table[[c for c in cols if c in table]].to_string(index=False))
        for sp in result["splits"]:
            print(f"{sp['child_sae']} <- {sp['parent_sae']}: {sp['share_with_close_parent']:.0%} of alive children have a "
                  f"parent at cos >= 0.9 (median cos {sp['median_cos']:.2f}), child beats parent's score "
                  f"{sp['child_better_than_parent']:.0%}")
        print(f"wrote {paths.splitting_csv}, {paths.splitting_links_csv}")
    return result


if __name__ == "__main__":
    run_main(main, parse_args())
