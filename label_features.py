"""Stage 5: label every SAE feature and every neuron against the task's ground truth.

Reads  <run-dir>/mlp/perfect_mlp.pth (stage 2) and <run-dir>/sae/sae_model.pth (stage 4), or with
       --sae NAME the named SAE <run-dir>/sae/NAME/ (--sae all: every SAE of the run, one by one).
Writes <run-dir>/reports/features.csv and neurons.csv (one row per unit: explanation, the
       variables it uses, score, F1, causal effects, the hole of its explanation and the features
       filling it), reports/absorption.csv (each hierarchy's parent and children, for the features,
       neurons and random directions: analysis.absorption), reports/labels.pt (the fresh inputs and
       every unit's F1 against every single condition) and the "interpretability" section of
       metrics.json (with the random-direction control and absorption); for a named SAE, in reports/NAME/ and section
       "interpretability:NAME".
With --sae all every SAE is labelled before anything is written, then all labels are written as one
group. Every later stage (feature_probe.py, feature_reports.py, feature_splitting.py) reads these and
refuses them when they are missing or were made from another MLP or SAE file (their provenance).

Explanations are chosen on fresh inputs of the task's "explain" seed stream and scored on fresh
inputs of its "analysis" stream, never the training rows (analysis.labels).

    python label_features.py [--run-dir runs/default] [--sae NAME|all] [--seed 0] [--n-inputs 32768] [--quiet]
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
import argparse

import torch

from analysis.absorption import absorption_line
from analysis.labels import DEFAULT_N_INPUTS, MIN_N_INPUTS, build_labels
from analysis.labels_io import write_labelings
from common.cli import (ArgumentParser, add_common_args, add_sae_arg, pick_device, run_main, run_paths, seed_everything,
                        selected_saes)
from common.validate import int_range

# the labels hold the hidden layer and the SAE's features on every input: the cap of
# harvest_activations.py --n-samples (4e6 x 512 float32 = 8 GiB)
MAX_N_INPUTS = 4_000_000


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    add_common_args(p)
    add_sae_arg(p, allow_all=True)
    p.add_argument("--n-inputs", type=int_range(MIN_N_INPUTS, MAX_N_INPUTS), default=DEFAULT_N_INPUTS,
                   help=f"fresh inputs the labels are computed on, {MIN_N_INPUTS:,}..{MAX_N_INPUTS:,} "
                        f"(default: {DEFAULT_N_INPUTS})")
    return p.parse_args(argv)


@torch.no_grad()  # nothing here trains: no autograd graph (run alone or in run_pipeline.py's process)
def main(args) -> dict:
    """The labels' summary (with --sae all: {name: summary})."""
    targets = selected_saes(args)
    device = pick_device(args.device)
    done, neurons = [], {}     # the neurons' labels, scored once for every SAE of the run
    for paths in targets:      # every SAE labelled before any labels are written
        seed_everything(args.seed)
        done.append((paths, build_labels(paths, seed=args.seed, n_inputs=args.n_inputs, device=device, write=False,
                                         neuron_cache=neurons)))
    write_labelings(run_paths(args), done)
    out = {}
    for paths, labels in done:
        s = labels.summary
        out[paths.sae_name] = s
        if not args.quiet:
            ic = s.get("interchange_success")
            name = "" if paths.is_default_sae else f" [{paths.sae_name}]"
            print(f"labels{name}: {s['features_alive']} alive features, {s['features_monosemantic_share']:.1%} explained "
                  f"at score >= 0.8 (random directions {s['random_directions_monosemantic_share']:.1%}, neurons "
                  f"{s['neurons_monosemantic_share']:.1%} of {s['neurons_alive']}); split-aware grammar "
                  f"{s['features_split_monosemantic_share']:.1%} (random {s['random_directions_split_monosemantic_share']:.1%}, "
                  f"neurons {s['neurons_split_monosemantic_share']:.1%}), interchange "
                  f"{'-' if ic is None else f'{ic:.1%}'}, {s['n_inputs']} fresh inputs, {s['seconds']:.1f} s")
            print(f"  absorption, full/partial share of the parents' inputs (parents represented): "
                  f"{absorption_line(s)}, {s['absorption_seconds']:.1f} s")
            print(f"wrote {paths.features_csv}, {paths.neurons_csv.name}, {paths.absorption_csv.name}, {paths.labels_cache.name}")
    return out if args.sae == "all" else out[targets[0].sae_name]


if __name__ == "__main__":
    run_main(main, parse_args())
