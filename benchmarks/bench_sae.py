"""Benchmark of the SAE stage: speed, memory and the quality targets of issue 3, with this machine's
own fp32 matmul throughput measured in the same run.

    .venv/bin/python benchmarks/bench_sae.py --run-dir runs/default      # after workflow.sh
    .venv/bin/python benchmarks/bench_sae.py --run-dir D --skip-memory   # faster, no 1e6 x 2048 check

Needs a run directory with the MLP and its harvested activations (the default workflow's). Prints:
1. the machine line (fp32 matmul GFLOP/s of an SAE-shaped product);
2. the recipes of train_sae.py (no flags = the default run, TopK 64; relu and topk with 2048) on that
   run's activations: training time and the held-out quality targets (FVU, L0, dead share,
   spliced exact-match vs the MLP's);
3. steady-state training throughput of a 512 -> 2048 SAE at the default batch size: samples/s
   and achieved GFLOP/s for `relu` (5 matmuls of batch x 512 x 2048 per step, as % of the matmul
   yardstick; on random activations, where its features stay dense), and samples/s of `topk`
   (sparse encoder gradient and decode; AuxK idle, i.e. no dead latents) against `relu`;
   then the relu step's samples/s on its sparse and its dense path, back to back, at feature
   densities from the paper's final one (L0 ~15 of 2048) to 20% (where the kernel's switch lies);
4. peak memory (max RSS of a child process) of training and evaluating a 2048-feature SAE on
   1,000,000 activations.
Timings are wall-clock on a shared machine: run it when nothing else is running.
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks._machine import machine_line, matmul_gflops  # noqa: E402

TARGETS = {"fvu": 0.03, "l0": 16, "dead_share": 0.05, "spliced_gap_points": 1.0, "seconds": 45.0,
           "relu_matmul_share": 0.70, "topk_speedup": 2.0, "peak_gib": 8.0}


def throughput(architecture: str, steps: int, batch_size: int, d_in=512, d_sae=2048, k=16) -> float:
    """Training samples/s of the SAE's real training step on random non-negative activations."""
    from sae.registry import config_fields, sae_config
    from sae.training import TrainConfig, train
    acts = torch.rand((steps + 10) * batch_size + 1, d_in).relu_()
    cfg = sae_config(architecture, d_in=d_in, d_sae=d_sae, **({"k": k} if "k" in config_fields(architecture) else {}))
    times = []

    def on_step(step, total, stats):
        times.append(time.perf_counter())
    train(cfg, acts, TrainConfig(batch_size=batch_size, steps=steps + 10, n_eval=1, resample_at=()), on_step=on_step)
    return steps * batch_size / (times[-1] - times[9])               # skip 10 warm-up steps


PAPER_DENSITY = 14.58 / 2048     # the paper's SAE at the end of training (L0 14.58 of 2048, the default run)
RELU_DENSITIES = (PAPER_DENSITY, 0.02, 0.05, 0.10, 0.20)   # the sweep that places RELU_SPARSE_MAX_DENSITY


def relu_paths(density: float, steps: int, batch_size: int = 512, d_in=512, d_sae=2048) -> tuple[float, float]:
    """(sparse, dense) training samples/s of the relu SAE's step (fused loss, backward, decoder-norm
    projections, fused Adam) on batches whose features are active at `density` (b_enc set to the
    per-feature quantile; lr 0 keeps it there), each path forced, measured alternately in this
    process so that the machine's load falls on both alike."""
    from sae import kernels
    from sae.registry import build_sae, sae_config
    from sae.training import TrainConfig, make_optimizer
    g = torch.Generator().manual_seed(0)
    batches = [torch.rand(batch_size, d_in, generator=g) for _ in range(4)]
    sae = build_sae(sae_config("relu", d_in=d_in, d_sae=d_sae), generator=g)
    with torch.no_grad():
        sae.b_enc.copy_(-((torch.cat(batches) - sae.b_dec) @ sae.W_enc).quantile(1 - density, dim=0))
    optimizer = make_optimizer(sae, TrainConfig(lr=0.0))
    limit, seconds = kernels.RELU_SPARSE_MAX_DENSITY, {1.0: 0.0, -1.0: 0.0}   # 1: always sparse, -1: always dense
    try:
        for i in range(steps + 2):
            for forced in seconds:
                kernels.RELU_SPARSE_MAX_DENSITY = forced
                t0 = time.perf_counter()
                loss, _, _ = sae.loss(batches[i % 4], 1.0, None)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                sae.remove_parallel_grad_()
                optimizer.step()
                sae.unit_norm_decoder_()
                if i >= 2:                                            # two warm-up steps each
                    seconds[forced] += time.perf_counter() - t0
    finally:
        kernels.RELU_SPARSE_MAX_DENSITY = limit
    return steps * batch_size / seconds[1.0], steps * batch_size / seconds[-1.0]


# the recipes measured: the default run (no flags), and the 2048-feature dictionaries one flag away
CONFIGS = {"default": [], "relu-2048": ["--architecture", "relu", "--d-sae", "2048"],
           "topk-2048": ["--architecture", "topk", "--d-sae", "2048"]}


def default_run(run_dir: Path, config: str) -> dict:
    import train_sae
    args = train_sae.parse_args(["--run-dir", str(run_dir), "--quiet", *CONFIGS[config]])
    data, mlp = train_sae.load_inputs(args)
    from common.cli import pick_device
    _, m = train_sae.train_and_evaluate(args, data, mlp, pick_device(args.device))
    return m


MEMORY_CHILD = r"""
import sys, time, torch
sys.path.insert(0, {root!r})
from mlp.activations import harvest
from dataset.task import sample_inputs, stream_seed, target
from mlp.mlp_definition import load_mlp
from sae.metrics import evaluate_sae
from sae.registry import sae_config
from sae.training import TrainConfig, train
mlp = load_mlp({mlp!r})
x = sample_inputs(1_000_000, seed=stream_seed(0, "benchmark"))
acts = harvest(mlp, x)                                          # [1e6, 512]
sae, info = train(sae_config(d_in=acts.shape[1], d_sae=2048), acts, TrainConfig(steps=100, n_eval=100_000))
m = evaluate_sae(sae, mlp, acts, x, target(x).float())         # all 1e6 rows
print(len(acts), m["fvu"])
"""


def peak_memory_gib(run_dir: Path) -> float:
    from common.paths import RunPaths
    code = MEMORY_CHILD.format(root=str(ROOT), mlp=str(RunPaths(run_dir).mlp))
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20   # KiB -> GiB


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", default="runs/default", help="a run with MLP and activations (default: runs/default)")
    p.add_argument("--steps", type=int, default=40, help="timed steps per throughput measurement (default: 40)")
    p.add_argument("--skip-memory", action="store_true", help="skip the 1e6 x 2048 peak-memory check")
    p.add_argument("--skip-default", action="store_true", help="skip training the default recipes")
    p.add_argument("--configs", default=",".join(CONFIGS),
                   help="recipes of train_sae.py to run on the run's activations (default: default,relu-2048,topk-2048)")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    out = {}
    print(machine_line())
    gflops = matmul_gflops()
    out["matmul_gflops"] = gflops

    for config in ([] if args.skip_default else args.configs.split(",")):
        m = default_run(Path(args.run_dir), config)
        gap = 100 * (m["mlp_exact_match"] - m["spliced_exact_match"])
        out[f"recipe_{config}"] = {k: v for k, v in m.items() if k != "density_log10"}
        print(f"train_sae.py {' '.join(CONFIGS[config]) or '(default run)'} ({m['config']['architecture']}, d_sae={m['config']['d_sae']}, {m['steps']} steps on {m['n_train']:,} "
              f"activations from {m['source']}):")
        print(f"  training time      {m['train_seconds']:6.1f} s   (target <= {TARGETS['seconds']:.0f} s)  "
              f"{'MET' if m['train_seconds'] <= TARGETS['seconds'] else 'MISSED'}")
        print(f"  FVU / L0           {m['fvu']:.4f} at L0 {m['l0']:.2f}   (target <= {TARGETS['fvu']} at L0 <= "
              f"{TARGETS['l0']})  {'MET' if m['fvu'] <= TARGETS['fvu'] and m['l0'] <= TARGETS['l0'] else 'MISSED'}")
        print(f"  dead features      {m['dead_share']:.1%} ({m['dead']} of {m['config']['d_sae']})   (target <= 5%)  "
              f"{'MET' if m['dead_share'] <= TARGETS['dead_share'] else 'MISSED'}")
        print(f"  spliced exact-match {m['spliced_exact_match']:.2%} vs MLP {m['mlp_exact_match']:.2%}: gap {gap:.2f} pt "
              f"(target <= 1 pt)  {'MET' if gap <= TARGETS['spliced_gap_points'] else 'MISSED'}")
        print(f"  dense (>10%) share {m['dense_share']:.1%}, resampled {m['resampled']}, held-out n={m['n_eval']:,}")

    batch = 1024
    relu = throughput("relu", args.steps, batch)
    topk = throughput("topk", args.steps, batch)      # steady state: no dead latents, AuxK idle
    flop_per_sample = 5 * 2 * 512 * 2048
    achieved = relu * flop_per_sample / 1e9
    out.update(relu_samples_per_s=relu, topk_samples_per_s=topk, relu_gflops=achieved,
               relu_matmul_share=achieved / gflops, topk_speedup=topk / relu)
    print(f"training throughput, 512 -> 2048, batch {batch}:")
    print(f"  relu  {relu:9,.0f} samples/s = {achieved:.0f} GFLOP/s = {achieved / gflops:.0%} of matmul "
          f"(target >= 70%)  {'MET' if achieved / gflops >= TARGETS['relu_matmul_share'] else 'MISSED'}")
    print(f"  topk  {topk:9,.0f} samples/s (k=16, AuxK idle) = {topk / relu:.2f}x relu (target >= 2x)  "
          f"{'MET' if topk / relu >= TARGETS['topk_speedup'] else 'MISSED'}")

    from sae.kernels import RELU_SPARSE_MAX_DENSITY
    print(f"relu 512 -> 2048, batch 512, the two paths of sae.kernels.ReluSAELoss forced, alternating "
          f"(it switches at density {RELU_SPARSE_MAX_DENSITY:.1%}):")
    for density in RELU_DENSITIES:
        sparse, dense = relu_paths(density, args.steps)
        out[f"relu_density_{density:.4f}"] = {"sparse_samples_per_s": sparse, "dense_samples_per_s": dense}
        note = " (the paper's SAE at the end of training)" if density == PAPER_DENSITY else ""
        print(f"  density {density:6.2%}: sparse {sparse:9,.0f} samples/s, dense {dense:9,.0f} samples/s, "
              f"sparse/dense {sparse / dense:.2f}x{note}")

    if not args.skip_memory:
        gib = peak_memory_gib(Path(args.run_dir))
        out["peak_gib_1e6x2048"] = gib
        print(f"peak memory, harvest + train + evaluate on 1,000,000 x 2048: {gib:.2f} GiB (target < 8 GiB)  "
              f"{'MET' if gib < TARGETS['peak_gib'] else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
    return out


if __name__ == "__main__":
    main()
