"""Benchmark of the pipeline's first half (issue 2 targets), run by hand:

    .venv/bin/python benchmarks/bench_foundation.py [--seeds 0,1,2] [--work-dir /tmp/bench_foundation]

For each seed: generates the default data, trains the default MLP (timed, through the stage
script), and scores it on the test split and on 20,000 fresh inputs from another seed stream.
Then harvests 1,000,000 fresh activations in a child process (timed, peak resident memory).
Prints this machine's fp32 matmul throughput measured in the same run.

Targets: test exact-match >= 99.5% and MSE <= 0.02 (also on the 20,000 fresh inputs); MLP
training <= 30 s; harvest of 1e6 <= 30 s and < 4 GiB peak.
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from _machine import machine_line  # this folder is sys.path[0] when the benchmark runs as a script
from common.io import read_metrics
from common.paths import RunPaths
from dataset.task import sample_inputs, stream_seed, target
from mlp.evaluate import evaluate
from mlp.mlp_definition import load_mlp

ROOT = Path(__file__).resolve().parents[1]


def run(*cmd) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *cmd], cwd=ROOT, check=True)
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0")
    p.add_argument("--work-dir", default="/tmp/bench_foundation")
    p.add_argument("--harvest-n", type=int, default=1_000_000)
    args = p.parse_args()
    print(machine_line())
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        paths = RunPaths(Path(args.work_dir) / f"seed{seed}")
        common = ["--run-dir", str(paths.root), "--seed", str(seed), "--quiet"]
        run("dataset/data_generator.py", *common)
        wall = run("train_mlp.py", *common)
        m = read_metrics(paths.metrics)["mlp"]
        x = sample_inputs(20_000, seed=stream_seed(seed, "benchmark"))
        fresh = evaluate(load_mlp(paths.mlp), x, target(x).float())
        rows.append({"seed": seed, "train_s": m["train_seconds"], "stage_wall_s": round(wall, 1),
                     "test_em": m["test"]["exact_match"], "test_mse": m["test"]["mse"],
                     "fresh_em": fresh["exact_match"], "fresh_mse": fresh["mse"]})
    print(f"\nMLP, default settings ({len(rows)} seed(s); targets: exact-match >= 99.5%, MSE <= 0.02, train <= 30 s)")
    print(f"{'seed':>4} {'train s':>8} {'stage s':>8} {'test EM':>8} {'test MSE':>9} {'20k EM':>8} {'20k MSE':>8}")
    for r in rows:
        print(f"{r['seed']:>4} {r['train_s']:>8.1f} {r['stage_wall_s']:>8.1f} {r['test_em']:>8.2%} "
              f"{r['test_mse']:>9.4f} {r['fresh_em']:>8.2%} {r['fresh_mse']:>8.4f}")

    paths = RunPaths(Path(args.work_dir) / f"seed{rows[0]['seed']}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    wall = run("harvest_activations.py", "--run-dir", str(paths.root), "--quiet", "--n-samples", str(args.harvest_n))
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    h = read_metrics(paths.metrics)["harvest"]
    note = "" if peak_kib > before else " (a child before it peaked higher: figure is an upper bound)"
    print(f"\nHarvest of {h['n']:,} fresh activations (targets: <= 30 s, < 4 GiB peak)")
    print(f"  forward passes {h['seconds']:.1f} s, whole stage {wall:.1f} s (incl. start-up and writing "
          f"{paths.activations.stat().st_size / 2**30:.2f} GiB), peak RSS {peak_kib / 2**20:.2f} GiB{note}")
    print(json.dumps({"mlp": rows, "harvest": {"seconds": h["seconds"], "stage_wall_s": round(wall, 1),
                                               "peak_rss_gib": round(peak_kib / 2**20, 2)}}))


if __name__ == "__main__":
    main()
