"""Feature splitting: which fine features split from which coarse ones, over every labelled SAE of the
run: across dictionary sizes, and within each Matryoshka dictionary across its prefixes.

Reads  the run's MLP and SAEs (<run-dir>/sae/sae_model.pth and every named one, <run-dir>/sae/NAME/),
       their labels (label_features.py --sae all), and metrics.json.
Writes <run-dir>/reports/splitting.csv (one row per SAE: analysis.compare's comparison, the neurons
       and the random-direction control included), reports/splitting_links.csv (each feature's
       parent, analysis.splitting: decoder cosine, co-firing, whether its explanation refines the
       parent's), reports/splitting.html (the same as a page), all or none, and the
       "feature_splitting" section of metrics.json.

    python train_sae.py --architecture topk --k 16 --sweep d_sae=64,128,256,512,1024,2048
    python train_sae.py --name mat --architecture matryoshka --d-sae 2048 --prefixes 64,256,1024,2048
    python label_features.py --sae all
    python feature_splitting.py
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
import argparse

import pandas as pd

from analysis.compare import comparison
from analysis.labels_io import FLOAT_FORMAT, read_labels
from analysis.run import load_run_models
from analysis.splitting import Dictionary, prefix_levels, prefix_links, size_links, splitting_summary
from common.cli import ArgumentParser, add_common_args, run_main, run_paths
from common.io import PipelineError, atomic_group, update_metrics
from mlp.mlp_definition import load_mlp
from sae.splice import chunked_pass
from viz.common import write_plotly_js
from viz.splitting import splitting_html


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    return p.parse_args(argv)


def size_chains(rows: list) -> list[list[str]]:
    """Names of the SAEs that differ only in d_sae, grouped and in size order (2+ per group); of two of
    the same size, the first in the run's order (the default first) is linked."""
    groups = {}
    for r in rows:
        groups.setdefault((r["architecture"], r["settings"]), {}).setdefault(r["d_sae"], r["sae"])
    return [[g[size] for size in sorted(g)] for g in groups.values() if len(g) > 1]


def main(args) -> dict:
    paths = run_paths(args)
    c = comparison(paths)
    rows = [r for r in c["saes"] if r["labelled"]]
    if not rows:
        raise PipelineError(f"{paths.root}: no labelled SAEs to compare; run train_sae.py (e.g. --sweep "
                            f"d_sae=64,128,256) and label_features.py --run-dir {args.run_dir} --sae all first")
    mlp = load_mlp(paths.mlp)
    dictionaries, prefixes, x = {}, {}, None
    for r in rows:
        p = paths.for_sae(r["sae"])
        _, sae = load_run_models(p)      # the SAE, checked against the run's MLP
        labels = read_labels(p, models=(mlp, sae))
        x = labels.inputs if x is None else x          # every dictionary on the same fresh inputs
        prefixes[r["sae"]] = tuple(getattr(sae.cfg, "prefixes", ()))
        dictionaries[r["sae"]] = Dictionary(r["sae"], sae.W_dec.detach().cpu(), chunked_pass(mlp, sae, x)["features"],
                                            labels.features, prefix_levels(sae.cfg.d_sae, prefixes[r["sae"]]))
    links = [size_links(dictionaries[a], dictionaries[b], x)
             for chain in size_chains(rows) for a, b in zip(chain, chain[1:])]
    links += [prefix_links(dictionaries[name], pre, x) for name, pre in prefixes.items() if len(pre) > 1]
    table = pd.DataFrame([*rows, c["neurons"]])
    links_df = pd.concat(links, ignore_index=True) if links else pd.DataFrame()
    summaries = [splitting_summary(l_) for l_ in links]
    write_plotly_js(paths)
    page = splitting_html(paths, links_df, summaries)
    files = [paths.splitting_csv, paths.splitting_links_csv, paths.splitting_html]
    with atomic_group(files) as (t_csv, t_links, t_html):
        table.to_csv(t_csv, index=False, float_format=FLOAT_FORMAT)
        links_df.to_csv(t_links, index=False, float_format=FLOAT_FORMAT)
        t_html.write_text(page, encoding="utf-8")
    result = {"rows": table.to_dict(orient="records"), "splits": summaries}
    update_metrics(paths.metrics, "feature_splitting", result)
    if not args.quiet:
        for sp in summaries:
            pct = lambda v: "-" if v is None else f"{v:.0%}"
            print(f"{sp['child_sae']} <- {sp['parent_sae']} ({sp['link']}): {sp['alive_children']} alive children; "
                  f"closest decoder parent: median cos {sp['median_cos'] or 0:.2f}, "
                  f"{pct(sp['share_with_close_parent'])} at cos >= 0.9, {pct(sp['decoder_share_refining'])} of "
                  f"{sp['decoder_explained_pairs']} explained pairs refine it; co-firing parent: "
                  f"{pct(sp['cofiring_share_firing_inside'])} fire inside it, {pct(sp['cofiring_share_refining'])} of "
                  f"{sp['cofiring_explained_pairs']} explained pairs refine it")
        print(f"wrote {paths.splitting_csv}, {paths.splitting_links_csv.name}, {paths.splitting_html.name}")
    return result


if __name__ == "__main__":
    run_main(main, parse_args())
