"""Training an SAE on in-memory activations: losses, dead-feature handling, checkpoints.

No argument parsing and no printing here (`train_sae.py` does that): `train` reports progress
through an optional callback.

- Batches are drawn by index from one in-memory tensor, in an order fixed by a `torch.Generator`
  seeded from `TrainConfig.seed`; the generator's state, the optimizer's and the dead-feature
  counters travel in the checkpoint, so a run resumed after an interruption ends with the same
  weights as an uninterrupted one.
- Learning rate: linear warm-up over `warmup_steps`, constant, then linear decay to zero over
  the last `decay_fraction` of steps. `l1_coeff` (relu) / `l0_coeff` (jumprelu) warm up linearly
  over `sparsity_warmup_steps`.
- Dead features: a feature that has not fired on the last `dead_window` training inputs is dead;
  the architecture's loss sees which (TopK's AuxK uses them), and Anthropic-style resampling at the
  fractions of training in `resample_at` re-initialises them from inputs drawn with probability
  proportional to their squared reconstruction loss, Adam state reset.
- The settings whose best value differs between architectures (lr, batch_size, steps, dead_window,
  resample_at) default to None, "the architecture's RECIPE" (its module), filled in by
  `TrainConfig.for_architecture`. The loop never branches on the architecture's name.
"""
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from common.checkpoint import check_layout, load_checkpoint, load_optimizer_state_, save_checkpoint, set_generator_state_
from common.io import PipelineError
from sae.base import SAE, SAEConfig
from sae.registry import architecture_class, build_sae
from sae.sae_definition import sae_from_checkpoint
from sae.sources import TensorSource


RECIPE_FIELDS = ("lr", "batch_size", "steps", "dead_window", "resample_at", "sparsity_warmup_steps")


@dataclass
class TrainConfig:
    lr: float | None = None            # Adam learning rate after warm-up (None: the architecture's recipe)
    batch_size: int | None = None      # activations per step (recipe)
    steps: int | None = None           # optimizer steps; 0 -> epochs * ceil(n_train / batch_size) (recipe)
    epochs: float = 1.0                # passes over the training activations when steps == 0
    warmup_steps: int = 50             # linear lr warm-up
    decay_fraction: float = 0.2        # linear lr decay to 0 over this last share of steps
    sparsity_warmup_steps: int | None = None   # linear warm-up of l1_coeff / l0_coeff (0: none) (recipe)
    adam_betas: tuple = (0.9, 0.999)
    n_eval: int = 10000                # held-out activations (the last rows), never trained on
    dead_window: int | None = None     # inputs without firing after which a feature is dead (recipe)
    resample_at: tuple | None = None   # fractions of training at which dead features are resampled (recipe)
    resample_inputs: int = 16384       # inputs scored to pick resampling directions
    resample_enc_scale: float = 0.2    # new encoder column norm, relative to the mean alive one
    b_dec_init: str = "median"         # median (geometric) | mean | zero
    dec_init: str = "random"           # random (unit rows) | data (rows = centred training inputs), W_enc = W_dec^T
    # SAELens's choices, opt-in for comparison (no flags; benchmarks/bench_dictionaries.py --set topk:NAME=VALUE):
    dec_init_norm: float = 1.0         # the decoder rows' norm at start (W_enc tied, scaled alike); SAELens 0.1
    unit_norm_decoder: bool = True     # rows back to unit norm after each step, the gradient along them dropped
                                       # (False: rows free, as SAELens's, whose TopK ranks by them: rescale_acts_by_decoder_norm)
    checkpoint_every: int = 200        # steps between checkpoints (0: none; only with a checkpoint path)
    seed: int = 0

    def __post_init__(self):
        self.adam_betas = tuple(self.adam_betas)
        if self.resample_at is not None:
            self.resample_at = tuple(self.resample_at)

    def for_architecture(self, architecture: str) -> "TrainConfig":
        """A copy with every setting left at None taken from the architecture's RECIPE."""
        recipe = architecture_class(architecture).RECIPE
        return replace(self, **{k: recipe[k] for k in RECIPE_FIELDS if getattr(self, k) is None})


# --- initialisation and resampling ---------------------------------------------------------------

@torch.no_grad()
def geometric_median(x: torch.Tensor, iters: int = 30) -> torch.Tensor:
    """Weiszfeld's algorithm, started at the mean."""
    m = x.mean(0)
    for _ in range(iters):
        w = 1.0 / (x - m).norm(dim=1).clamp_min(1e-8)
        m_new = (w[:, None] * x).sum(0) / w.sum()
        if (m_new - m).norm() < 1e-6 * m.norm().clamp_min(1e-8):
            return m_new
        m = m_new
    return m


@torch.no_grad()
def init_b_dec_(sae: SAE, h: torch.Tensor, how: str) -> None:
    if how == "median":
        sae.b_dec.copy_(geometric_median(h))
    elif how == "mean":
        sae.b_dec.copy_(h.mean(0))
    elif how != "zero":
        raise ValueError(f"b_dec_init {how!r}: expected median, mean or zero")


@torch.no_grad()
def init_dec_from_data_(sae: SAE, h: torch.Tensor) -> None:
    """Decoder rows = directions of d_sae training inputs (centred on b_dec), encoder tied to them:
    every feature starts out firing on the inputs near its own."""
    d = h - sae.b_dec                                                 # [d_sae, d_in]
    d = d / d.norm(dim=1, keepdim=True).clamp_min(1e-8)
    sae.W_dec.copy_(d)
    sae.W_enc.copy_(d.t())


@torch.no_grad()
def scale_decoder_init_(sae: SAE, norm: float) -> None:
    """Decoder rows (unit at build) to `norm`, W_enc with them (SAELens's "heuristic" init, Anthropic's April
    2024 update: it initialises at 0.1); with unit_norm_decoder the first step puts the rows back at 1."""
    if not (math.isfinite(norm) and norm > 0):
        raise ValueError(f"dec_init_norm {norm!r}: expected a positive number")
    sae.W_dec.mul_(norm)
    sae.W_enc.mul_(norm)


@torch.no_grad()
def resample_dead_(sae: SAE, optimizer: torch.optim.Optimizer, h: torch.Tensor, dead: torch.Tensor,
                   generator: torch.Generator, enc_scale: float = 0.2) -> int:
    """Anthropic-style resampling: give each dead feature the direction of an input the SAE
    reconstructs badly (drawn with probability ~ squared loss), reset its Adam state.
    h: [n, d_in] scoring inputs. Returns the number of features resampled."""
    idx = dead.nonzero().squeeze(1)
    if len(idx) == 0:
        return 0
    h_hat, _ = sae(h)
    loss = ((h - h_hat) ** 2).sum(1)                                  # [n]
    if float(loss.sum()) <= 0:
        return 0
    pick = torch.multinomial((loss ** 2).cpu().double(), len(idx), replacement=len(idx) > len(h),
                             generator=generator).to(h.device)
    directions = h[pick] - sae.b_dec                                  # [n_dead, d_in]
    directions = directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-8)
    alive = ~dead
    enc_norm = sae.W_enc[:, alive].norm(dim=0).mean() if alive.any() else torch.tensor(1.0)
    sae.W_dec[idx] = directions
    sae.W_enc[:, idx] = directions.t() * enc_norm * enc_scale
    sae.b_enc[idx] = 0.0
    sae.reset_features_(idx)
    for p, rows in ((sae.W_dec, (idx,)), (sae.W_enc, (slice(None), idx)), (sae.b_enc, (idx,))):
        state = optimizer.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][rows] = 0.0
    return len(idx)


# --- the loop -------------------------------------------------------------------------------------

def make_optimizer(sae: SAE, tc: TrainConfig) -> torch.optim.Optimizer:
    # fused Adam: one kernel for all parameters; the per-tensor loop costs as much as a matmul here
    return torch.optim.Adam(sae.parameters(), lr=tc.lr, betas=tc.adam_betas, fused=True)


def split_activations(acts: torch.Tensor, n_eval: int):
    """(train rows, held-out rows): the last n_eval rows are held out (capped at a fifth of the data)."""
    n_eval = min(n_eval, len(acts) // 5)
    if len(acts) - n_eval < 1:
        raise PipelineError(f"only {len(acts)} activations: too few to train an SAE; harvest more")
    return slice(0, len(acts) - n_eval), slice(len(acts) - n_eval, len(acts))


def total_steps(tc: TrainConfig, n_train: int | None) -> int:
    if tc.steps > 0:
        return tc.steps
    if n_train is None:
        raise ValueError("steps = 0 (train by epochs) needs a finite training set; give steps for a stream")
    return max(1, math.ceil(tc.epochs * math.ceil(n_train / tc.batch_size)))


def lr_factor(step: int, total: int, tc: TrainConfig) -> float:
    warm = min(1.0, (step + 1) / tc.warmup_steps) if tc.warmup_steps > 0 else 1.0
    decay_steps = int(total * tc.decay_fraction)
    decay = min(1.0, (total - step) / decay_steps) if decay_steps > 0 else 1.0
    return min(warm, decay)


class _Loss(nn.Module):
    """The SAE's training loss as a module's forward, so DistributedDataParallel can wrap it."""

    def __init__(self, sae: SAE):
        super().__init__()
        self.sae = sae

    def forward(self, h, var, dead, scale):
        return self.sae.loss(h, var, dead, scale)


def world() -> tuple[int, int]:
    """(rank, world size): (0, 1) without torch.distributed, else this process's place under torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


HISTORY_POINTS = 200   # training-history entries kept per run (every steps // 200 steps; batch statistics)
CHECKPOINT_KEYS = ["state_dict", "optimizer", "generator", "step", "source", "since_fired", "resampled"]
CHECKPOINT_REMEDY = "delete it and re-run train_sae.py"


def train(sae_cfg: SAEConfig, acts, tc: TrainConfig, device="cpu",
          checkpoint_path: Path | None = None, resume: bool = False,
          on_step: Callable | None = None, made_from: dict | None = None) -> tuple:
    """Train an SAE on `acts`: activations [N, d_in] (rows in random order; the last ones held out,
    see `split_activations`) or a source of them (`sae.sources.StreamSource`).

    Returns (sae in eval mode, info dict with steps, seconds, resampled, n_train, n_eval).
    `on_step(step, total, stats)` is called after every step (stats: loss, mse (batch FVU), l0, ...).
    With `resume`, training continues from `checkpoint_path` when it exists (its SAE config and
    training settings must match, and the data it was made from must be `made_from`: {role:
    provenance entry} of the activations / MLP now; the checkpoints written record it). Under torchrun
    (torch.distributed initialised) each process trains on its slice of every global batch of
    `tc.batch_size` rows with DistributedDataParallel; only rank 0 writes the checkpoint."""
    device = torch.device(device)
    tc = tc.for_architecture(sae_cfg.architecture)
    rank, n_ranks = world()
    if tc.batch_size % n_ranks:
        raise PipelineError(f"--batch-size {tc.batch_size}: must divide among the {n_ranks} processes")
    generator = torch.Generator().manual_seed(tc.seed)
    torch.manual_seed(tc.seed)
    if torch.is_tensor(acts):
        train_rows, _ = split_activations(acts, tc.n_eval)
        source, n_eval = TensorSource(acts[train_rows].to(device), generator), len(acts) - (train_rows.stop - train_rows.start)
    else:
        source, n_eval = acts, len(acts.eval_inputs)
    steps = total_steps(tc, source.n_train)
    sae = build_sae(sae_cfg, generator=generator).to(device)
    var = source.variance()                                           # normalises the MSE term
    init_b_dec_(sae, source.sample(20000 if source.n_train is None else min(20000, source.n_train)), tc.b_dec_init)
    if tc.dec_init == "data":
        init_dec_from_data_(sae, source.draw(sae_cfg.d_sae))
    elif tc.dec_init != "random":
        raise ValueError(f"dec_init {tc.dec_init!r}: expected random or data")
    if tc.dec_init_norm != 1.0:
        scale_decoder_init_(sae, tc.dec_init_norm)
    optimizer = make_optimizer(sae, tc)
    step, resampled, seconds_before, history = 0, 0, 0.0, []
    source.start()
    since_fired = torch.zeros(sae_cfg.d_sae, dtype=torch.long)        # inputs since each feature last fired

    if resume and checkpoint_path is not None and Path(checkpoint_path).exists():
        ck = load_checkpoint(checkpoint_path, config=sae_cfg.to_dict(), train_config=asdict(tc), made_from=made_from or {},
                             required=CHECKPOINT_KEYS, remedy=CHECKPOINT_REMEDY, what="SAE training checkpoint")
        sae = sae_from_checkpoint(ck, checkpoint_path).to(device)
        optimizer = make_optimizer(sae, tc)
        try:                            # every entry checked before it is used: a bad one is one line
            load_optimizer_state_(optimizer, ck["optimizer"])
            set_generator_state_(generator, ck["generator"])
            source.load_state_dict(ck["source"])
            check_layout(0, ck["step"], "step")
            check_layout(since_fired, ck["since_fired"], "since_fired")
            check_layout(0, ck["resampled"], "resampled")
            check_layout(0.0, ck.get("seconds", 0.0), "seconds")
            if not (isinstance(ck["step"], int) and 0 <= ck["step"] <= steps and isinstance(ck["resampled"], int)
                    and ck["resampled"] >= 0 and bool((ck["since_fired"] >= 0).all())):
                raise ValueError(f"step {ck['step']!r} of {steps}, resampled {ck['resampled']!r}: out of range")
            if not isinstance(ck.get("history", []), list):
                raise ValueError("history: expected a list")
        except ValueError as e:
            raise PipelineError(f"{checkpoint_path}: not a usable SAE training checkpoint ({e}); {CHECKPOINT_REMEDY}") from None
        step, since_fired, resampled = ck["step"], ck["since_fired"], ck["resampled"]
        seconds_before, history = ck.get("seconds", 0.0), list(ck.get("history", []))

    resample_steps = {int(f * steps) for f in tc.resample_at if 0 < f < 1}
    history_every = max(1, steps // HISTORY_POINTS)
    since_fired = since_fired.to(device)
    sae.train()
    loss_fn = _Loss(sae)
    if n_ranks > 1:
        loss_fn = DistributedDataParallel(loss_fn, device_ids=[device.index] if device.type == "cuda" else None)
    t0 = time.perf_counter()
    while step < steps:
        h = source.next_batch(tc.batch_size, rank, n_ranks)           # [batch / n_ranks, d_in]
        for g in optimizer.param_groups:
            g["lr"] = tc.lr * lr_factor(step, steps, tc)
        scale = min(1.0, (step + 1) / tc.sparsity_warmup_steps) if tc.sparsity_warmup_steps > 0 else 1.0
        dead = since_fired >= tc.dead_window
        loss, fired, stats = loss_fn(h, var, dead, scale)
        if not math.isfinite(float(loss.detach())):
            raise PipelineError(f"SAE training diverged at step {step + 1} of {steps} (loss {float(loss.detach())}); "
                                f"lower --lr (now {tc.lr:g}) and re-run; nothing was written")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()                                               # (DDP averages the ranks' gradients here)
        if tc.unit_norm_decoder:
            sae.remove_parallel_grad_()
        optimizer.step()
        if tc.unit_norm_decoder:
            sae.unit_norm_decoder_()
        if n_ranks > 1:                                               # a feature fired if it fired on any rank
            fired = fired.to(torch.uint8)
            dist.all_reduce(fired, op=dist.ReduceOp.MAX)
            fired = fired.bool()
        since_fired += tc.batch_size
        since_fired[fired] = 0
        step += 1
        if step in resample_steps:
            dead = since_fired >= min(tc.dead_window, step * tc.batch_size)
            n_score = tc.resample_inputs if source.n_train is None else min(tc.resample_inputs, source.n_train)
            n = resample_dead_(sae, optimizer, source.draw(n_score), dead, generator, tc.resample_enc_scale)
            since_fired[dead] = 0
            resampled += n
        if step % history_every == 0 or step == steps:
            history.append({"step": step, "loss": float(loss.detach()), "fvu": stats["mse"], "l0": stats["l0"],
                            "dead_share": float((since_fired >= tc.dead_window).float().mean())})
        if on_step is not None:
            on_step(step, steps, {"loss": float(loss.detach()), **stats})
        if (checkpoint_path is not None and rank == 0 and tc.checkpoint_every > 0 and step % tc.checkpoint_every == 0
                and step < steps):
            save_checkpoint(checkpoint_path, config=sae.cfg.to_dict(), train_config=asdict(tc), made_from=made_from or {},
                            state={
                "state_dict": {k: v.detach().cpu() for k, v in sae.state_dict().items()},
                "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                "source": source.state_dict(), "step": step, "since_fired": since_fired.cpu(),
                "resampled": resampled, "seconds": seconds_before + time.perf_counter() - t0, "var": var,
                "history": history})
    bad = [name for name, p in sae.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise PipelineError(f"SAE training ended with non-finite {', '.join(bad)}; lower --lr (now {tc.lr:g}) and re-run; "
                            "nothing was written")
    info = {"steps": steps, "seconds": seconds_before + time.perf_counter() - t0, "resampled": resampled,
            "n_train": source.n_train if source.n_train is not None else steps * tc.batch_size, "n_eval": n_eval,
            "dead_at_end_of_training": int((since_fired >= tc.dead_window).sum()), "processes": n_ranks,
            "history": history}
    return sae.eval(), info
