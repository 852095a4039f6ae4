"""Benchmark of SAE training beyond one process (issue 15), run by hand:

    .venv/bin/python benchmarks/bench_distributed.py --run-dir runs/default [--steps 300] [--stream-samples 10000000]

Needs a run with an MLP and harvested activations (./workflow.sh). Prints this machine's fp32
matmul throughput, then:
1. samples/s of train_sae.py (default architecture, default batch) on the harvested file in 1
   process and under `torchrun --nproc_per_node 2` (gloo), same global batch and steps; each
   process gets cores / processes threads, so the comparison is at equal hardware;
2. peak resident memory of `train_sae.py --stream` at two sample counts (default 1,000,000 and
   10,000,000): streamed training must not grow with the number of samples.
Each measurement is a fresh run folder copied from --run-dir (only the MLP and the activations).
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from _machine import machine_line  # this folder is sys.path[0] when the benchmark runs as a script
from common.io import read_metrics
from common.paths import RunPaths

ROOT = Path(__file__).resolve().parents[1]


def fresh_run(src: RunPaths, dst: Path, activations: bool = True) -> RunPaths:
    shutil.rmtree(dst, ignore_errors=True)
    (dst / "mlp").mkdir(parents=True)
    shutil.copy(src.mlp, dst / "mlp" / src.mlp.name)
    if activations:
        shutil.copy(src.activations, dst / src.activations.name)
    return RunPaths(dst)


# runs a command in a fresh parent and prints the peak RSS (KiB) of its children alone
_PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def timed(cmd: list, threads: int) -> tuple[float, float]:
    """(wall seconds, peak RSS in GiB of the largest process of this command alone)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _PEAK, *cmd], cwd=ROOT, env=env, check=True,
                         stdout=subprocess.PIPE, text=True)
    return time.perf_counter() - t0, int(out.stdout.split()[-1]) / 2**20


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", default="runs/default")
    p.add_argument("--work-dir", default="/tmp/bench_distributed")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--stream-samples", default="1000000,10000000")
    args = p.parse_args()
    src = RunPaths(args.run_dir)
    work = Path(args.work_dir)
    cores = os.cpu_count() or 1
    print(machine_line())

    common = ["--quiet", "--steps", str(args.steps), "--checkpoint-every", "0"]
    print(f"\n1. samples/s, {args.steps} steps of the default SAE on the harvested file (global batch the recipe's)")
    for n in (1, 2):
        run = fresh_run(src, work / f"proc{n}")
        launcher = [sys.executable] if n == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                    "--nproc_per_node", str(n)]
        seconds, _ = timed([*launcher, "train_sae.py", "--run-dir", str(run.root), *common], max(1, cores // n))
        m = read_metrics(run.metrics)["sae"]
        samples = m["steps"] * m["train_config"]["batch_size"]
        print(f"  {n} process{'es' if n > 1 else ''}: training loop {m['loop_seconds']:.1f} s = "
              f"{samples / m['loop_seconds']:,.0f} samples/s (whole command {seconds:.1f} s); FVU {m['fvu']:.4f}")

    print("\n2. peak memory of a streamed run (no activations file; the MLP makes every batch)")
    for n_samples in [int(v) for v in args.stream_samples.split(",")]:
        run = fresh_run(src, work / f"stream{n_samples}", activations=False)
        seconds, peak = timed([sys.executable, "train_sae.py", "--run-dir", str(run.root), "--stream",
                               "--n-samples", str(n_samples), "--quiet", "--checkpoint-every", "0"], cores)
        m = read_metrics(run.metrics)["sae"]
        print(f"  {n_samples:>11,} samples: {seconds:6.1f} s, peak RSS {peak:.2f} GiB, "
              f"{n_samples / m['loop_seconds']:,.0f} samples/s, FVU {m['fvu']:.4f} (held-out {m['n_eval']:,})")
        del m
    print(f"\n(peak RSS: the largest process of that command; torch {torch.__version__})")


if __name__ == "__main__":
    main()
