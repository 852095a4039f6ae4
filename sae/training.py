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
- Dead features: a feature that has not fired on the last `dead_window` training inputs is dead.
  `relu`/`jumprelu`: Anthropic-style resampling at the steps in `resample_at` (fractions of
  training): re-initialised from inputs drawn with probability proportional to their squared
  reconstruction loss, Adam state reset. `topk`: the AuxK loss, plus resampling when
  `resample_at` is given (train_sae.py leaves it empty for topk unless asked).
"""
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from common.io import PipelineError, atomic_torch_save, require_keys, safe_torch_load
from sae.sae_definition import SAE, SAEConfig, sae_from_checkpoint


@dataclass
class TrainConfig:
    lr: float = 1e-3                   # Adam learning rate after warm-up
    batch_size: int = 1024             # activations per step
    steps: int = 0                     # optimizer steps; 0 -> epochs * ceil(n_train / batch_size)
    epochs: float = 1.0                # passes over the training activations when steps == 0
    warmup_steps: int = 50             # linear lr warm-up
    decay_fraction: float = 0.2        # linear lr decay to 0 over this last share of steps
    sparsity_warmup_steps: int = 0     # linear warm-up of l1_coeff / l0_coeff (0: none)
    adam_betas: tuple = (0.9, 0.999)
    n_eval: int = 10000                # held-out activations (the last rows), never trained on
    dead_window: int = 200_000         # inputs without firing after which a feature is dead
    resample_at: tuple = (0.2, 0.4, 0.6)  # fractions of training at which dead features are resampled
    resample_inputs: int = 16384       # inputs scored to pick resampling directions
    resample_enc_scale: float = 0.2    # new encoder column norm, relative to the mean alive one
    b_dec_init: str = "median"         # median (geometric) | mean | zero
    dec_init: str = "random"           # random (unit rows) | data (rows = centred training inputs), W_enc = W_dec^T
    checkpoint_every: int = 0          # steps between checkpoints (0: none)
    seed: int = 0

    def __post_init__(self):
        self.adam_betas = tuple(self.adam_betas)
        self.resample_at = tuple(self.resample_at)


# --- losses (pure functions of the SAE and a batch) ---------------------------------------------

def _mse(h: torch.Tensor, h_hat: torch.Tensor, var: float) -> torch.Tensor:
    """Squared error per input, normalised by the data's variance per input: a batch FVU."""
    return ((h - h_hat) ** 2).sum(1).mean() / var


def auxk_loss(sae: SAE, h: torch.Tensor, pre: torch.Tensor, residual: torch.Tensor, dead: torch.Tensor) -> torch.Tensor:
    """OpenAI's AuxK: reconstruct the main reconstruction's residual [batch, d_in] from the aux_k
    largest pre-activations (pre [batch, d_sae], no gradient) of dead latents; normalised by the
    residual's own variance. Gradients reach only the dead latents' parameters."""
    n_dead = int(dead.sum())
    if n_dead == 0:
        return pre.new_zeros(())
    k = min(sae.cfg.aux_k, n_dead)
    with torch.no_grad():
        _, indices = pre.masked_fill(~dead, float("-inf")).topk(k, dim=-1, sorted=False)   # [batch, k]
    values = F.relu(sae.gather_pre(pre, indices, h))
    r_hat = sae.decode_sparse(values, indices) - sae.b_dec
    denom = ((residual - residual.mean(0)) ** 2).sum().clamp_min(1e-12)
    return ((residual - r_hat) ** 2).sum() / denom


class _ReluSAELoss(torch.autograd.Function):
    """The relu SAE's loss, ||h - h_hat||^2 / var + l1 * sum_i f_i ||W_dec_i|| (batch means), with a
    hand-written backward: the five matmuls and four passes over the [batch, d_sae] features, where
    autograd makes about ten (the features dominate memory traffic at d_sae = 2048)."""

    @staticmethod
    def forward(ctx, h, W_enc, b_enc, W_dec, b_dec, var, l1):
        batch = h.shape[0]
        x = h - b_dec                                                 # [batch, d_in]
        f = torch.addmm(b_enc, x, W_enc).relu_()                      # [batch, d_sae]
        err = torch.addmm(b_dec, f, W_dec).sub_(h)                    # h_hat - h, [batch, d_in]
        norms = W_dec.norm(dim=1)                                     # [d_sae]
        mse = err.pow(2).sum() / (batch * var)
        l1_term = (f @ norms).sum() / batch
        active = f > 0                                                # [batch, d_sae]
        ctx.save_for_backward(x, f, err, active, W_enc, W_dec, norms)
        ctx.var, ctx.l1 = var, l1
        ctx.mark_non_differentiable(active)
        return mse + l1 * l1_term, mse.detach(), l1_term.detach(), active

    @staticmethod
    def backward(ctx, grad_loss, _g_mse, _g_l1, _g_active):
        x, f, err, active, W_enc, W_dec, norms = ctx.saved_tensors
        batch = x.shape[0]
        g = err * (2 * grad_loss / (batch * ctx.var))                 # d loss / d h_hat, [batch, d_in]
        c = ctx.l1 * grad_loss / batch
        g_W_dec = f.t() @ g                                           # [d_sae, d_in]
        g_W_dec += (c * f.sum(0) / norms.clamp_min(1e-12)).unsqueeze(1) * W_dec   # through ||W_dec_i||
        g_pre = torch.addmm((c * norms).expand(batch, -1), g, W_dec.t())          # d loss / d f
        g_pre.mul_(active)                                            # through the ReLU
        g_W_enc = x.t() @ g_pre                                       # [d_in, d_sae]
        g_b_enc = g_pre.sum(0)
        g_b_dec = g.sum(0) - W_enc @ g_b_enc
        return None, g_W_enc, g_b_enc, g_W_dec, g_b_dec, None, None


def loss_terms(sae: SAE, h: torch.Tensor, var: float, dead: torch.Tensor, sparsity_scale: float = 1.0):
    """(loss, fired [d_sae] bool, stats dict) for one batch h [batch, d_in]."""
    cfg = sae.cfg
    if cfg.architecture == "topk":
        values, indices, pre = sae.encode_topk(h)                     # [batch, k] x2, [batch, d_sae]
        h_hat = sae.decode_sparse(values, indices)                    # [batch, d_in]
        mse = _mse(h, h_hat, var)
        fired = torch.zeros(cfg.d_sae, dtype=torch.bool, device=h.device)
        fired[indices[values > 0]] = True
        aux = auxk_loss(sae, h, pre, (h - h_hat).detach(), dead)
        loss = mse + cfg.aux_coeff * aux
        l0 = float((values > 0).sum(1).float().mean())
        return loss, fired, {"mse": float(mse.detach()), "aux": float(aux.detach()), "l0": l0}
    if cfg.architecture == "relu":
        loss, mse, l1, active = _ReluSAELoss.apply(h, sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec, var,
                                                   cfg.l1_coeff * sparsity_scale)
        return loss, active.any(0), {"mse": float(mse.detach()), "l0": float(active.sum()) / len(h), "l1": float(l1.detach())}
    pre = sae.pre_acts(h)                                             # [batch, d_sae]
    if cfg.architecture == "jumprelu":
        from sae.sae_definition import _JumpReLU, _Step
        f = _JumpReLU.apply(pre, sae.threshold, cfg.bandwidth)
        h_hat = sae.decode(f)
        mse = _mse(h, h_hat, var)
        l0_soft = _Step.apply(pre, sae.threshold, cfg.bandwidth).sum(1).mean()
        loss = mse + cfg.l0_coeff * sparsity_scale * l0_soft
        extra = {}
    active = f > 0
    return loss, active.any(0), {"mse": float(mse.detach()), "l0": float(active.sum(1).float().mean()), **extra}


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
    if hasattr(sae, "log_threshold"):
        sae.log_threshold[idx] = math.log(sae.cfg.threshold_init)
    for p, rows in ((sae.W_dec, (idx,)), (sae.W_enc, (slice(None), idx)), (sae.b_enc, (idx,))):
        state = optimizer.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][rows] = 0.0
    return len(idx)


# --- the loop -------------------------------------------------------------------------------------

@torch.no_grad()
def per_input_variance(h: torch.Tensor, chunk: int = 65536) -> float:
    """mean ||h - mean(h)||^2 over rows, in chunks (no full-size temporary)."""
    mean = sum(h[i:i + chunk].double().sum(0) for i in range(0, len(h), chunk)) / len(h)
    return float(sum(((h[i:i + chunk].double() - mean) ** 2).sum() for i in range(0, len(h), chunk)) / len(h))


def make_optimizer(sae: SAE, tc: TrainConfig) -> torch.optim.Optimizer:
    # fused Adam: one kernel for all parameters; the per-tensor loop costs as much as a matmul here
    return torch.optim.Adam(sae.parameters(), lr=tc.lr, betas=tc.adam_betas, fused=True)


def split_activations(acts: torch.Tensor, n_eval: int):
    """(train rows, held-out rows): the last n_eval rows are held out (capped at a fifth of the data)."""
    n_eval = min(n_eval, len(acts) // 5)
    if len(acts) - n_eval < 1:
        raise PipelineError(f"only {len(acts)} activations: too few to train an SAE; harvest more")
    return slice(0, len(acts) - n_eval), slice(len(acts) - n_eval, len(acts))


def total_steps(tc: TrainConfig, n_train: int) -> int:
    return tc.steps if tc.steps > 0 else max(1, math.ceil(tc.epochs * math.ceil(n_train / tc.batch_size)))


def lr_factor(step: int, total: int, tc: TrainConfig) -> float:
    warm = min(1.0, (step + 1) / tc.warmup_steps) if tc.warmup_steps > 0 else 1.0
    decay_steps = int(total * tc.decay_fraction)
    decay = min(1.0, (total - step) / decay_steps) if decay_steps > 0 else 1.0
    return min(warm, decay)


def _checkpoint_state(sae, optimizer, generator, step, perm, pos, since_fired, resampled, seconds,
                      tc: TrainConfig, var: float) -> dict:
    return {
        "config": asdict(sae.cfg),
        "state_dict": {k: v.detach().cpu() for k, v in sae.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "step": step, "perm": perm.cpu(), "pos": pos,
        "since_fired": since_fired.cpu(), "resampled": resampled, "seconds": seconds,
        "train_config": asdict(tc), "var": var,
    }


def train(sae_cfg: SAEConfig, acts: torch.Tensor, tc: TrainConfig, device="cpu",
          checkpoint_path: Path | None = None, resume: bool = False,
          on_step: Callable | None = None) -> tuple:
    """Train an SAE on activations acts [N, d_in] (rows in random order; the last ones held out).

    Returns (sae in eval mode, info dict with steps, seconds, resampled, n_train, n_eval).
    `on_step(step, total, stats)` is called after every step (stats: loss, mse (batch FVU), l0, ...).
    With `resume`, training continues from `checkpoint_path` when it exists (its SAE config must
    match `sae_cfg`)."""
    device = torch.device(device)
    train_rows, _ = split_activations(acts, tc.n_eval)
    data = acts[train_rows].to(device)                                # [n_train, d_in]
    n_train = len(data)
    steps = total_steps(tc, n_train)
    generator = torch.Generator().manual_seed(tc.seed)
    torch.manual_seed(tc.seed)
    sae = SAE(sae_cfg, generator=generator).to(device)
    var = per_input_variance(data)                                    # normalises the MSE term
    init_b_dec_(sae, data[torch.randperm(n_train, generator=generator)[:20000].to(device)], tc.b_dec_init)
    if tc.dec_init == "data":
        init_dec_from_data_(sae, data[torch.randint(n_train, (sae_cfg.d_sae,), generator=generator).to(device)])
    elif tc.dec_init != "random":
        raise ValueError(f"dec_init {tc.dec_init!r}: expected random or data")
    optimizer = make_optimizer(sae, tc)
    step, pos, resampled, seconds_before = 0, 0, 0, 0.0
    perm = torch.randperm(n_train, generator=generator)
    since_fired = torch.zeros(sae_cfg.d_sae, dtype=torch.long)        # inputs since each feature last fired

    if resume and checkpoint_path is not None and Path(checkpoint_path).exists():
        ck = safe_torch_load(checkpoint_path, "SAE training checkpoint", "delete it and re-run train_sae.py")
        require_keys(ck, ["config", "state_dict", "optimizer", "generator", "step", "perm", "pos",
                          "since_fired", "resampled"], checkpoint_path, "SAE training checkpoint",
                     "delete it and re-run train_sae.py")
        if ck["config"] != asdict(sae_cfg) or ck.get("train_config") != asdict(tc):
            raise PipelineError(f"{checkpoint_path}: checkpoint was made with other settings; "
                                "re-run with the same flags, or without --resume to start over")
        sae = sae_from_checkpoint(ck, checkpoint_path).to(device)
        optimizer = make_optimizer(sae, tc)
        optimizer.load_state_dict(ck["optimizer"])
        generator.set_state(ck["generator"])
        step, pos, perm = ck["step"], ck["pos"], ck["perm"]
        since_fired, resampled, seconds_before = ck["since_fired"], ck["resampled"], ck.get("seconds", 0.0)

    resample_steps = {int(f * steps) for f in tc.resample_at if 0 < f < 1}
    since_fired = since_fired.to(device)
    sae.train()
    t0 = time.perf_counter()
    while step < steps:
        if pos + tc.batch_size > n_train:                             # new epoch (drop the ragged tail)
            perm, pos = torch.randperm(n_train, generator=generator), 0
        idx = perm[pos:pos + tc.batch_size].to(device)
        pos += tc.batch_size
        h = data[idx]                                                 # [batch, d_in]
        for g in optimizer.param_groups:
            g["lr"] = tc.lr * lr_factor(step, steps, tc)
        scale = min(1.0, (step + 1) / tc.sparsity_warmup_steps) if tc.sparsity_warmup_steps > 0 else 1.0
        dead = since_fired >= tc.dead_window
        loss, fired, stats = loss_terms(sae, h, var, dead, scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        sae.remove_parallel_grad_()
        optimizer.step()
        sae.unit_norm_decoder_()
        since_fired += len(h)
        since_fired[fired] = 0
        step += 1
        if step in resample_steps:
            dead = since_fired >= min(tc.dead_window, step * tc.batch_size)
            score = data[torch.randint(n_train, (min(tc.resample_inputs, n_train),), generator=generator).to(device)]
            n = resample_dead_(sae, optimizer, score, dead, generator, tc.resample_enc_scale)
            since_fired[dead] = 0
            resampled += n
        if on_step is not None:
            on_step(step, steps, {"loss": float(loss.detach()), **stats})
        if checkpoint_path is not None and tc.checkpoint_every > 0 and step % tc.checkpoint_every == 0 and step < steps:
            atomic_torch_save(_checkpoint_state(sae, optimizer, generator, step, perm, pos, since_fired,
                                                resampled, seconds_before + time.perf_counter() - t0, tc, var),
                              checkpoint_path)
    info = {"steps": steps, "seconds": seconds_before + time.perf_counter() - t0, "resampled": resampled,
            "n_train": n_train, "n_eval": len(acts) - n_train,
            "dead_at_end_of_training": int((since_fired >= tc.dead_window).sum())}
    return sae.eval(), info
