"""Stage 7: the reports a person opens in a browser, offline.

Reads  <run-dir>/mlp/perfect_mlp.pth (stage 2), <run-dir>/sae/sae_model.pth (stage 4; with --sae NAME the
       named SAE <run-dir>/sae/NAME/, whose pages go to <run-dir>/reports/NAME/), the three
       Excel splits (stage 1), and the labels label_features.py wrote (stage 5: reports/features.csv,
       neurons.csv, labels.pt; refused when missing or made from other models)
Writes <run-dir>/reports/: index.html (metrics, links, feature dashboard), logic_circuit_map.html,
       circuit_bell_curves.html, uhd_bold_sankey.html, probe.html (the models in the browser),
       training.html (the MLP's and the SAE's training curves, from their files), plotly.min.js (the
       one copy of plotly the pages load), circuit_trace_detailed.xlsx; reports/compare.html (every SAE
       of the run beside the neurons and random directions, analysis.compare); and the "reports" section
       of metrics.json ("reports:NAME" for a named SAE; whose
       file list names the labels' CSVs too: they are part of the folder; and the provenance of what the
       pages were made from, also each page's footer). Every page of every selected SAE is rendered
       before any is written, then all are committed as one group. Prints the path of index.html last.

    python feature_reports.py [--run-dir runs/default] [--seed 0] [--device auto] [--quiet]
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
import argparse
import time

import torch
from tqdm import tqdm

from analysis.compare import comparison
from common import validate
from common.cli import ArgumentParser, add_common_args, add_sae_arg, pick_device, run_main, run_paths, seed_everything, selected_saes
from common import provenance
from common.io import atomic_group_with_metrics, require_inputs
from viz.build import STEPS, gather, report_files, write_reports
from viz.common import plotly_js_missing
from viz.compare import compare_html


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    add_common_args(p)
    add_sae_arg(p, allow_all=True)
    p.add_argument("--n-inputs", type=validate.int_range(1000, 4_000_000), default=None,
                   help="refuse labels made on another number of fresh inputs (default: whatever label_features.py used)")
    return p.parse_args(argv)


@torch.no_grad()  # nothing here trains: no autograd graph (run alone or in run_pipeline.py's process)
def main(args) -> dict:
    """The "reports" section of the (last) SAE reported. Every selected SAE's inputs are read and checked
    first (nothing is written when one is refused); then its pages and compare.html are rendered into
    temporaries and committed with their metrics sections as one group: all or none."""
    selected = selected_saes(args)
    root = run_paths(args)
    gathered = [(paths, *gather_one(args, paths)) for paths in selected]
    # the library the pages load, where it is not there yet (a member of the group: no page without it)
    texts = {p.plotly_js: js for p in [root, *selected] if (js := plotly_js_missing(p)) is not None}
    files = [f for paths in selected for f in report_files(paths)] + [root.compare_html, *texts]
    sections = {}
    with atomic_group_with_metrics(files, root.metrics, sections) as temps:
        temp_of = dict(zip(files, temps))
        for path, text in texts.items():
            temp_of[path].write_text(text, encoding="utf-8")
        for paths, rd, seconds in gathered:
            stats = report_one(args, paths, rd, seconds, temp_of)
            sections[paths.section("reports")] = stats
        temp_of[root.compare_html].write_text(compare_html(root, comparison(root)), encoding="utf-8")
    if not args.quiet:
        print(f"wrote {root.compare_html}")
    print(paths.index_html)
    return stats


def gather_one(args, paths):
    """(what one SAE's pages draw, seconds taken): every input read and checked, nothing written."""
    # every input up front (the trace reads all three splits last)
    require_inputs(paths, "train_xlsx", "val_xlsx", "test_xlsx", "mlp", "sae")
    seed_everything(args.seed)
    t0 = time.time()
    with tqdm(total=STEPS.index("sankey_data") + 1, desc="reading", disable=args.quiet, leave=False) as bar:
        rd = gather(paths, seed=args.seed, device=pick_device(args.device), n_inputs=args.n_inputs,
                    on_step=lambda _: bar.update())
    return rd, time.time() - t0


def report_one(args, paths, rd, seconds: float, temp_of: dict) -> dict:
    """One SAE's pages, written into their temporaries (`temp_of`); its "reports" section."""
    t0 = time.time()
    steps = STEPS[STEPS.index("sankey_data") + 1:]
    bar = tqdm(total=len(steps), desc="reports", disable=args.quiet, postfix=steps[0])

    def step(name):   # called when `name` is done: show the part now running
        i = steps.index(name) + 1
        bar.set_postfix_str(steps[i] if i < len(steps) else "done", refresh=False)
        bar.update()
    try:
        written = write_reports(paths, rd, temp_of, on_step=step)
    finally:
        bar.close()
    seconds += time.time() - t0
    files = sorted(written) + [paths.features_csv.name, paths.neurons_csv.name, paths.plotly_js.name]
    stats = {"files": files, "plots": {k: v for k, v in written.items() if k.endswith(".html")},
             "trace_rows": written[paths.trace_xlsx.name], "alive_feature_cards": int((rd.features["status"] == "alive").sum()),
             "n_inputs": rd.n_fresh, "seconds": round(seconds, 2), "timings": {k: round(v, 2) for k, v in rd.timings.items()},
             "dir": str(paths.reports_dir), provenance.KEY: {"made_from": rd.made_from}}
    if not args.quiet:
        t = stats["timings"]
        print(f"reports: {len(files)} files in {seconds:.1f} s (labels {t.get('labels', 0):.1f} s, "
              f"trace {stats['trace_rows']:,} rows {t.get('trace', 0):.1f} s), "
              f"{stats['alive_feature_cards']} feature cards")
    return stats


if __name__ == "__main__":
    run_main(main, parse_args())
