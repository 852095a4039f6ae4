"""What an SAE's ultralow features fire on: are they single (p1, p2, a, b) cells?

A feature that fires on one cell of the task (1/1600 = 0.06% of inputs) is ultralow by the 0.1% line
and never counted alive. This measures, for every ultralow feature of a labelled SAE, on the labels'
fresh inputs: how many firings, over how many cells, the share of its firings in its top cell, and
the share of that cell's inputs it fires on (a clean one-cell feature has both near 1).

    .venv/bin/python benchmarks/ultralow_cells.py --run-dir runs/default --sae paper
"""
import argparse

import pandas as pd
import torch

from analysis.concepts import cell_index
from analysis.labels_io import read_labels
from analysis.run import load_run_models
from common.cli import run_main
from common.paths import RunPaths
from dataset.task import ground_truth
from sae.splice import chunked_pass

CLEAN = 0.9


def main(args) -> None:
    torch.set_num_threads(1)
    paths = RunPaths(args.run_dir).for_sae(args.sae) if args.sae else RunPaths(args.run_dir)
    labels = read_labels(paths)
    mlp, sae = load_run_models(paths)
    x = labels.inputs
    f = chunked_pass(mlp, sae, x)["features"]
    cells = cell_index(ground_truth(x))
    per_cell = torch.bincount(cells, minlength=mlp.task.n_cells)
    t = labels.features.set_index("unit")
    rows = []
    for u in t.index[t["status"] == "ultralow"]:
        counts = torch.bincount(cells[f[:, u] > 0], minlength=mlp.task.n_cells)
        n, top = int(counts.sum()), int(counts.argmax())
        rows.append({"unit": u, "firings": n, "cells": int((counts > 0).sum()),
                     "share_in_top_cell": counts[top].item() / max(n, 1),
                     "share_of_top_cell": counts[top].item() / max(per_cell[top].item(), 1),
                     "score": t.loc[u, "score"], "split_score": t.loc[u, "split_score"]})
    d = pd.DataFrame(rows)
    print(f"{paths.sae}: {len(d)} ultralow features on {len(x):,} fresh inputs")
    if len(d):
        print(d.drop(columns="unit").describe().round(3).to_string())
        one = d["share_in_top_cell"] >= CLEAN
        print(f"{int(one.sum())} fire >= {CLEAN:.0%} in one cell; {int((one & (d['share_of_top_cell'] >= CLEAN)).sum())} "
              f"of them also on >= {CLEAN:.0%} of that cell's inputs (clean one-cell features)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", required=True)
    p.add_argument("--sae", default=None, help="a named SAE of the run (default: the run's own)")
    run_main(main, p.parse_args())
