"""Side by side with SAELens (issue 22, item 7): the same SAEs trained by this project's trainer and by
SAELens's own, on the same activations, the same held-out rows and the same budget, in one run.

The project does not depend on sae-lens; run this with a venv that has it (torch pinned, as
benchmarks/check_saelens.py says):

    /tmp/saelens_venv/bin/python benchmarks/bench_saelens.py --run-dir runs/default
    /tmp/saelens_venv/bin/python benchmarks/bench_saelens.py --run-dir runs/default --quick   # 100 steps

Reads the run's harvested activations (only read). For each SAE of CASES, ours (`sae.training.train`,
the recipe train_sae.py uses) then SAELens's (its `SAETrainer` fed an iterator of batches of the same
training rows, its TrainingSAE classes with their own defaults beyond the settings matched below):

- budget: the recipe's steps x batch size, its lr, Adam betas, 50 warm-up steps and a linear decay
  over the last 20% (SAELens's "constant" scheduler with lr_warm_up_steps / lr_decay_steps);
- TopK: `TopKTrainingSAE` with the same k (its own init, AuxK and dead window: what item 5 compares);
- ReLU/L1: `StandardTrainingSAE`, l1_coefficient = our l1_coeff x the data's variance (our MSE term is
  divided by it, SAELens's is not: the same objective up to a constant factor), the same L1 warm-up;
  SAELens has no resampling, ours resamples at the recipe's fractions;
- b_dec: SAELens's from zero (its own), or with --saelens-b-dec median from the geometric median, as ours.

Wall clock is each trainer's whole call (initialisation included; ours also gives its loop alone);
FVU, L0 and the dead share (never active on the held-out rows) are measured on the file's last
--n-eval rows by `sae.metrics.reconstruction_stats`, SAELens's SAE through its own encode / decode.
The machine's fp32 matmul rate is measured at the start and the end of the same run.
"""
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")          # SAELens's progress bar; the table is the output
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this venv has sae-lens, not the project

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from benchmarks._machine import machine_line  # noqa: E402
from common import validate  # noqa: E402
from common.cli import ArgumentParser, run_main, seed_everything  # noqa: E402
from common.io import PipelineError  # noqa: E402
from common.paths import RunPaths  # noqa: E402
from mlp.activations import load_activations  # noqa: E402
from sae.metrics import reconstruction_stats  # noqa: E402
from sae.registry import sae_config  # noqa: E402
from sae.sources import TensorSource  # noqa: E402
from sae.training import TrainConfig, geometric_median, split_activations, train  # noqa: E402

# name: (label, architecture, d_sae): the three SAEs, each with its architecture's recipe
CASES = {"topk256": ("TopK 256, k 16 (the default)", "topk", 256),
         "topk2048": ("TopK 2048, k 16", "topk", 2048),
         "relu2048": ("ReLU/L1 2048 (the paper's)", "relu", 2048)}
QUICK_STEPS = 100


class SAELensAdapter(nn.Module):
    """SAELens's SAE as reconstruction_stats expects one: (h_hat, f) = sae(h), with cfg.d_sae."""

    def __init__(self, sae):
        super().__init__()
        self.inner, self.cfg = sae, sae.cfg

    def forward(self, h):
        f = self.inner.encode(h)
        return self.inner.decode(f), f


def held_out_stats(sae, h_eval: torch.Tensor) -> dict:
    s = reconstruction_stats(sae, h_eval)
    return {"fvu": s["fvu"], "l0": s["l0"], "dead_share": float((s["counts"] == 0).double().mean())}


def batches(train_rows: torch.Tensor, batch_size: int, seed: int):
    """SAELens's data provider: batches of the training rows, in an order of its own (a permutation per epoch)."""
    source = TensorSource(train_rows, torch.Generator().manual_seed(seed))
    source.start()
    while True:
        yield source.next_batch(batch_size)


def train_ours(arch: str, d_sae: int, acts: torch.Tensor, tc: TrainConfig):
    cfg = sae_config(arch, d_in=acts.shape[1], d_sae=d_sae)
    seed_everything(tc.seed)
    t0 = time.perf_counter()
    sae, info = train(cfg, acts, tc)
    return sae, time.perf_counter() - t0, info["seconds"]


def train_theirs(arch: str, d_sae: int, train_rows: torch.Tensor, tc: TrainConfig, ours_cfg, var: float,
                 b_dec: str = "zero"):
    """SAELens's own SAE and trainer at the nearest settings; (SAE, seconds). b_dec "median": its b_dec
    started at the geometric median of 20,000 training rows, as ours starts (SAELens starts it at zero)."""
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer
    d_in = train_rows.shape[1]
    seed_everything(tc.seed)
    t0 = time.perf_counter()
    if arch == "topk":
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=ours_cfg.k, device="cpu"))
    elif arch == "relu":
        sae = StandardTrainingSAE(StandardTrainingSAEConfig(
            d_in=d_in, d_sae=d_sae, device="cpu", l1_coefficient=ours_cfg.l1_coeff * var,
            l1_warm_up_steps=tc.sparsity_warmup_steps))
    else:
        raise ValueError(f"no SAELens counterpart set up for {arch!r}")
    if b_dec == "median":
        sample = train_rows[torch.randperm(len(train_rows), generator=torch.Generator().manual_seed(tc.seed))[:20000]]
        with torch.no_grad():
            sae.b_dec.copy_(geometric_median(sample))
    cfg = SAETrainerConfig(
        total_training_samples=tc.steps * tc.batch_size, train_batch_size_samples=tc.batch_size, lr=tc.lr, lr_end=tc.lr,
        lr_scheduler_name="constant", lr_warm_up_steps=tc.warmup_steps, lr_decay_steps=int(tc.steps * tc.decay_fraction),
        adam_beta1=tc.adam_betas[0], adam_beta2=tc.adam_betas[1], device="cpu",
        logger=LoggingConfig(log_to_wandb=False))
    SAETrainer(cfg, sae, batches(train_rows, tc.batch_size, tc.seed)).fit()
    return sae.eval(), time.perf_counter() - t0


def run(args, cases: list[str]):
    """Ours then SAELens's for each case; yields one row (dict) per case as soon as both are measured."""
    acts = load_activations(RunPaths(Path(args.run_dir)).activations)["activations"].float()   # [N, d_in]
    for name in cases:
        label, arch, d_sae = CASES[name]
        tc = TrainConfig(seed=args.seed, n_eval=args.n_eval, **({"steps": QUICK_STEPS} if args.quick else {}))
        tc = tc.for_architecture(arch)
        train_slice, eval_slice = split_activations(acts, tc.n_eval)
        train_rows, h_eval = acts[train_slice], acts[eval_slice]
        ours, ours_s, ours_loop = train_ours(arch, d_sae, acts, tc)
        row = {"label": label, "steps": tc.steps, "batch_size": tc.batch_size, "ours_s": ours_s, "ours_loop_s": ours_loop,
               **{f"ours_{k}": v for k, v in held_out_stats(ours, h_eval).items()}}
        print(f"  {label}: ours {ours_s:.1f} s", file=sys.stderr, flush=True)
        var = TensorSource(train_rows, torch.Generator()).variance()
        theirs, theirs_s = train_theirs(arch, d_sae, train_rows, tc, ours.cfg, var, args.saelens_b_dec)
        row |= {"theirs_s": theirs_s, **{f"theirs_{k}": v for k, v in held_out_stats(SAELensAdapter(theirs), h_eval).items()}}
        print(f"  {label}: SAELens {theirs_s:.1f} s", file=sys.stderr, flush=True)
        if args.save_dir:
            theirs.save_inference_model(Path(args.save_dir) / name)
        yield row


TABLE_HEADER = ("| SAE | budget | this project | SAELens | speed-up (SAELens s / ours s) | ours FVU / L0 / dead | "
                "SAELens FVU / L0 / dead |\n|---|---|---|---|---|---|---|")


def table_row(r: dict) -> str:
    return (f"| {r['label']} | {r['batch_size']} x {r['steps']} | {r['ours_s']:.1f} s (loop {r['ours_loop_s']:.1f} s) | "
            f"{r['theirs_s']:.1f} s | {r['theirs_s'] / r['ours_s']:.2f}x | "
            f"{r['ours_fvu']:.4f} / {r['ours_l0']:.1f} / {r['ours_dead_share']:.0%} | "
            f"{r['theirs_fvu']:.4f} / {r['theirs_l0']:.1f} / {r['theirs_dead_share']:.0%} |")


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", default="runs/default", help="a run with harvested activations (only read)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps per SAE instead of the recipe's")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)} (default: all)")
    p.add_argument("--seed", type=validate.nonnegative_int, default=0)
    p.add_argument("--n-eval", type=validate.positive_int, default=TrainConfig.n_eval, help="held-out rows: the file's last ones")
    p.add_argument("--threads", type=validate.nonnegative_int, default=0, help="torch threads (default 0: torch's own choice)")
    p.add_argument("--saelens-b-dec", choices=["zero", "median"], default="zero",
                   help="SAELens's b_dec at start: zero (its own init) or the geometric median of the training rows "
                        "(as this project starts it; what keeps SAELens's TopK alive on this layer) (default: zero)")
    p.add_argument("--save-dir", help="also write SAELens's SAEs here in its layout (import_sae.py adopts them)")
    return p.parse_args(argv)


def main(args) -> None:
    try:
        import sae_lens
    except ImportError:
        raise PipelineError("sae_lens: not importable; run this with a venv that has sae-lens "
                            "(see the docstring of benchmarks/check_saelens.py)") from None
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown or not cases:
        raise PipelineError(f"--cases {args.cases!r}: expected some of {', '.join(CASES)}")
    activations = RunPaths(Path(args.run_dir)).activations
    if not activations.exists():
        raise PipelineError(f"{activations}: missing; --run-dir must be a run with harvested activations")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"SAELens {sae_lens.__version__}; {machine_line()}", flush=True)
    print(f"held-out rows: the last {args.n_eval:,} of {args.run_dir}; SAELens's b_dec from {args.saelens_b_dec}; "
          "rows printed as measured", flush=True)
    print(TABLE_HEADER, flush=True)
    for row in run(args, cases):
        print(table_row(row), flush=True)
    print(f"at the end: {machine_line()}", flush=True)


if __name__ == "__main__":
    run_main(main, parse_args())
