"""The MLP's recipe at L slots per column (issue 24, item 2), run by hand:

    .venv/bin/python benchmarks/bench_mlp_slots.py --slots 8 [--n-train 32000] [--epochs 100] [--d-mlp 256]
        [--seed 0] [--work-dir /tmp/bench_mlp_slots]

Generates the data at L (--n-train: the generator's default, 500 x L^2, when not given) and trains
the MLP through the stage scripts' main(), then scores it on the test split and on 50,000 fresh
inputs of the "benchmark" seed stream (never trained on). Target: >= 99% exact-match on the fresh
inputs. Prints one JSON line.
"""
import argparse
import json
import time
from pathlib import Path

import torch

import train_mlp
from _machine import machine_line  # this folder is sys.path[0] when the benchmark runs as a script
from common.paths import RunPaths
from dataset import data_generator
from dataset.task import stream_seed, target
from mlp.evaluate import evaluate
from mlp.mlp_definition import load_mlp

N_FRESH = 50_000


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--slots", type=int, default=8)
    p.add_argument("--n-train", type=int, default=None, help="default: the generator's, 500 x L^2")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--d-mlp", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", default="/tmp/bench_mlp_slots")
    args = p.parse_args()
    print(machine_line())
    paths = RunPaths(Path(args.work_dir) / f"L{args.slots}-n{args.n_train}-e{args.epochs}-w{args.d_mlp}-s{args.seed}")
    common = ["--run-dir", str(paths.root), "--quiet", "--seed", str(args.seed)]
    data_generator.main(data_generator.parse_args(
        common + ["--slots", str(args.slots)] + (["--n-train", str(args.n_train)] if args.n_train else [])))
    t0 = time.time()
    m = train_mlp.main(train_mlp.parse_args(common + ["--epochs", str(args.epochs), "--d-mlp", str(args.d_mlp)]))
    seconds = time.time() - t0
    mlp = load_mlp(paths.mlp)
    x = mlp.task.sample_inputs(N_FRESH, seed=stream_seed(args.seed, "benchmark"))
    with torch.no_grad():
        fresh = evaluate(mlp, x, target(x).float())
    print(json.dumps({"slots": args.slots, "n_train": m["train"]["n"], "epochs": args.epochs, "d_mlp": args.d_mlp,
                      "seed": args.seed, "best_epoch": m["best_epoch"], "test_exact_match": m["test"]["exact_match"],
                      "fresh_exact_match": fresh["exact_match"], "fresh_mse": round(fresh["mse"], 5),
                      "train_seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
