"""Stage 5: label every SAE feature and every neuron against the task's ground truth.

Reads  <run-dir>/mlp/perfect_mlp.pth (stage 2) and <run-dir>/sae/sae_model.pth (stage 4).
Writes <run-dir>/reports/features.csv and neurons.csv (one row per unit: explanation, the
       variables it uses, score, F1, causal effects), reports/labels.pt (the fresh inputs and every
       unit's F1 against every single condition) and the "interpretability" section of metrics.json.
Every later stage (feature_probe.py, feature_reports.py, feature_splitting.py) reads these and
refuses them when they are missing or older than the MLP or SAE file.

The labels are computed on fresh inputs of the task's "analysis" seed stream, never the training
rows (analysis.labels).

    python label_features.py [--run-dir runs/default] [--seed 0] [--n-inputs 32768] [--quiet]
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
import argparse

import torch

from analysis.labels import DEFAULT_N_INPUTS, build_labels
from common.cli import add_common_args, pick_device, run_main, run_paths, seed_everything


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    add_common_args(p)
    p.add_argument("--n-inputs", type=int, default=DEFAULT_N_INPUTS,
                   help=f"fresh inputs the labels are computed on (default: {DEFAULT_N_INPUTS})")
    return p.parse_args(argv)


def main(args) -> dict:
    paths = run_paths(args)
    seed_everything(args.seed)
    labels = build_labels(paths, seed=args.seed, n_inputs=args.n_inputs, device=pick_device(args.device))
    s = labels.summary
    if not args.quiet:
        ic = s.get("interchange_success")
        print(f"labels: {s['features_alive']} alive features, {s['features_monosemantic_share']:.0%} explained at "
              f"score >= 0.8 (neurons {s['neurons_monosemantic_share']:.0%} of {s['neurons_alive']}), "
              f"interchange {'-' if ic is None else f'{ic:.1%}'}, {s['n_inputs']} fresh inputs, {s['seconds']:.1f} s")
        print(f"wrote {paths.features_csv}, {paths.neurons_csv.name}, {paths.labels_cache.name}")
    return s


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    run_main(main, parse_args())
