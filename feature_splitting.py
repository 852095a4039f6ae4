"""Feature splitting: which features of a larger dictionary descend from which features of a smaller
one, over every labelled SAE of the run.

Reads  the run's SAEs (<run-dir>/sae/sae_model.pth and every named one, <run-dir>/sae/NAME/) and
       their labels (label_features.py --sae all), and metrics.json.
Writes <run-dir>/reports/splitting.csv (one row per SAE: analysis.compare's comparison, the neurons
       and the random-direction control included), reports/splitting_links.csv (each feature's closest
       decoder direction in the next smaller dictionary of the same architecture and settings), and
       the "feature_splitting" section of metrics.json.

    python train_sae.py --architecture topk --k 16 --sweep d_sae=64,128,256,512,1024,2048
    python label_features.py --sae all
    python feature_splitting.py
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
import argparse

import pandas as pd

from analysis.compare import comparison
from analysis.labels_io import read_labels, write_table
from analysis.splitting import splitting_links, splitting_summary
from common.cli import ArgumentParser, add_common_args, run_main, run_paths
from common.io import PipelineError, update_metrics
from sae.sae_definition import load_sae


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    return p.parse_args(argv)


def size_chains(rows: list) -> list[list[str]]:
    """Names of the SAEs that differ only in d_sae, grouped and in size order (2+ per group)."""
    groups = {}
    for r in rows:
        groups.setdefault((r["architecture"], r["settings"]), []).append(r)
    return [[r["sae"] for r in sorted(g, key=lambda r: r["d_sae"])] for g in groups.values() if len(g) > 1]


def main(args) -> dict:
    paths = run_paths(args)
    c = comparison(paths)
    rows = [r for r in c["saes"] if r["labelled"]]
    if not rows:
        raise PipelineError(f"{paths.root}: no labelled SAEs to compare; run train_sae.py (e.g. --sweep "
                            f"d_sae=64,128,256) and label_features.py --run-dir {args.run_dir} --sae all first")
    saes, tables = {}, {}
    for r in rows:
        p = paths.for_sae(r["sae"])
        tables[r["sae"]] = read_labels(p).features
        saes[r["sae"]] = load_sae(p.sae)
    links = [splitting_links(a, saes[a], tables[a], b, saes[b], tables[b])
             for chain in size_chains(rows) for a, b in zip(chain, chain[1:])]
    table = pd.DataFrame([*rows, c["neurons"]])
    links_df = pd.concat(links, ignore_index=True) if links else pd.DataFrame()
    write_table(paths.splitting_csv, table)
    write_table(paths.splitting_links_csv, links_df)
    result = {"rows": table.to_dict(orient="records"), "splits": [splitting_summary(l_) for l_ in links]}
    update_metrics(paths.metrics, "feature_splitting", result)
    if not args.quiet:
        for sp in result["splits"]:
            print(f"{sp['child_sae']} <- {sp['parent_sae']}: {sp['share_with_close_parent']:.0%} of alive children have a "
                  f"parent at cos >= 0.9 (median cos {sp['median_cos']:.2f}), child beats parent's score "
                  f"{sp['child_better_than_parent']:.0%}")
        print(f"wrote {paths.splitting_csv}, {paths.splitting_links_csv}")
    return result


if __name__ == "__main__":
    run_main(main, parse_args())
