"""What every SAE architecture shares: the affine maps, the decoder-norm invariants, the registry.

All architectures (h is one activation vector [d_in], f the features [d_sae]):

    pre   = (h - b_dec) @ W_enc + b_enc          # [batch, d_sae]   b_dec is tied before the encoder
    f     = act(pre)                             # [batch, d_sae]   non-negative; "active" where f > 0
    h_hat = f @ W_dec + b_dec                    # [batch, d_in]    linear in f, so effects on the
                                                 #                  (linear) MLP head attribute to features

with the rows of W_dec [d_sae, d_in] kept at unit norm (`unit_norm_decoder_`, and the gradient
component parallel to each row removed before a step, `remove_parallel_grad_`). An architecture is
one module (`sae/relu.py`, `sae/topk.py`, ...) holding a config dataclass (its own settings, its
defaults the default run's), the activation `activate`, the training loss `loss`, what to reset when
a dead feature is re-initialised, and `RECIPE`, the training settings measured best for it; it
registers itself with `@register`, so training, loading, labelling and reporting never branch on
its name.
"""
import os
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn

from common import validate
from sae import kernels

# The memory cap of a dictionary: W_enc and W_dec of 2**26 floats each (256 MiB) are ~2 GiB with their
# gradients and Adam's two moments, what a laptop trains; on the default 512-d layer that is 131,072
# features, 512x the default run's 256 (a billion features would need 4 TB and failed in the allocator).
MAX_SAE_WEIGHTS = 2**26
MAX_D_SAE = MAX_SAE_WEIGHTS // 512
ARCHITECTURES: dict = {}        # name -> SAE subclass, filled by @register in each architecture's module
DEFAULT_ARCHITECTURE = "topk"   # the default run's (README, "What was found")


@dataclass
class SAEConfig:
    """Settings every architecture has; each architecture's config extends it with its own."""
    architecture: str = DEFAULT_ARCHITECTURE
    d_in: int = 512              # width of the harvested layer (read from the data, never a flag)
    # the default run's: TopK with 256 features explained 51-60% of its alive features on 5 (MLP, SAE)
    # seeds, 11-29x random directions at the same densities; 64 features: 44-64%, 1.8-6x; 2048 keeps
    # ~250 alive (benchmarks/bench_dictionaries.py, README "What was found")
    d_sae: int = field(default=256, metadata={"help": "dictionary size (features), 1..131,072 (a memory cap: "
                                                          "at most 2**26 weights per matrix)"})

    def __post_init__(self):
        validate.check_fields(self)           # a config read from a file may hold anything
        if self.d_in < 1 or self.d_sae < 1:
            raise ValueError(f"d_in and d_sae must be >= 1 (got {self.d_in}, {self.d_sae})")
        if self.d_sae > MAX_D_SAE or self.d_in * self.d_sae > MAX_SAE_WEIGHTS:
            raise ValueError(f"d_sae = {self.d_sae:,} on a {self.d_in:,}-d layer: at most {MAX_D_SAE:,} features and "
                             f"{MAX_SAE_WEIGHTS:,} weights per matrix (d_in x d_sae; {MAX_SAE_WEIGHTS // self.d_in:,} "
                             f"features on this layer)")

    def to_dict(self) -> dict:
        return asdict(self)


EVAL_CHUNK_ROWS = 16384   # rows of features [rows, d_sae] one evaluation chunk holds (sae.metrics.CHUNK)


def bytes_needed(d_in: int, d_sae: int) -> int:
    """Memory an SAE of this size takes to load and evaluate: its weights three times over (the file's
    tensors, a freshly built module, the loaded state) and a few [EVAL_CHUNK_ROWS, d_sae] float32
    feature chunks. Used to refuse a file before it is loaded, from the sizes its header gives."""
    weights = 4 * (2 * d_in * d_sae + 3 * d_sae + d_in)
    return 3 * weights + 3 * 4 * EVAL_CHUNK_ROWS * d_sae


def available_memory() -> int | None:
    """Bytes of memory this process can still take (Linux: MemAvailable; else the free physical pages),
    None where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def memory_problem(d_in: int, d_sae: int, available: int | None = None) -> str | None:
    """Why an SAE of this size cannot be loaded here (None when it fits), from its sizes alone."""
    need = bytes_needed(d_in, d_sae)
    available = available_memory() if available is None else available
    if available is None or need <= available:
        return None
    return (f"d_in = {d_in:,}, d_sae = {d_sae:,} would take about {need / 2**30:,.1f} GiB to load and evaluate, "
            f"more than the {available / 2**30:,.1f} GiB free here")


def register(cls):
    """Class decorator: make an SAE subclass available under its config's architecture name."""
    name = cls.config_class.__dataclass_fields__["architecture"].default
    ARCHITECTURES[name] = cls
    return cls


class SAE(nn.Module):
    config_class = SAEConfig
    RECIPE: dict = {}            # training settings (sae.training.TrainConfig fields) measured for it
    sparsity_name = ""           # the loss term `sparsity_scale` warms up ("" when none)

    def __init__(self, cfg: SAEConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        d_in, d_sae = cfg.d_in, cfg.d_sae
        W_dec = torch.randn(d_sae, d_in, generator=generator)
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(W_dec)                               # [d_sae, d_in], unit rows
        self.W_enc = nn.Parameter(W_dec.t().clone())                  # [d_in, d_sae], tied at init
        self.b_enc = nn.Parameter(torch.zeros(d_sae))                 # [d_sae]
        self.b_dec = nn.Parameter(torch.zeros(d_in))                  # [d_in]

    # --- the architecture's own parts (overridden) -----------------------------------------------
    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        """pre-activations [batch, d_sae] -> features [batch, d_sae], non-negative."""
        raise NotImplementedError

    def loss(self, h: torch.Tensor, var: float, dead: torch.Tensor, sparsity_scale: float = 1.0):
        """(loss, fired [d_sae] bool, stats dict with "mse" and "l0") for one training batch h [batch, d_in];
        `var` normalises the squared error (sae.losses.normalized_mse), `dead` [d_sae] marks the
        features that have not fired for a while, `sparsity_scale` warms up the sparsity term."""
        raise NotImplementedError

    @torch.no_grad()
    def reset_features_(self, idx: torch.Tensor) -> None:
        """Architecture-specific state of features `idx` to reset when they are re-initialised."""

    # --- the SAELens on-disk layout (sae/saelens.py) ----------------------------------------------
    SAELENS_ARCHITECTURE: str | None = None   # its name in SAELens; None: SAELens cannot express it
    SAELENS_READS = True                      # SAELens folders of that name load as this architecture
    SAELENS_B_ENC = "b_enc"                   # the name SAELens gives b_enc in this architecture's file

    def saelens_extras(self) -> tuple[dict, dict]:
        """(cfg.json fields, tensors) beyond the shared ones that SAELens needs for this architecture."""
        return {}, {}

    @classmethod
    def from_saelens_extras(cls, cfg: dict, tensors: dict) -> tuple[dict, dict]:
        """The inverse: (this project's config settings, state_dict entries) from SAELens's extras;
        KeyError / ValueError for what is missing or cannot be expressed here."""
        return {}, {}

    @classmethod
    def saelens_extra_tensor_shapes(cls, d_sae: int) -> dict:
        return {}

    # --- encoder ---------------------------------------------------------------------------------
    def pre_acts(self, h: torch.Tensor) -> torch.Tensor:
        return (h - self.b_dec) @ self.W_enc + self.b_enc             # [batch, d_sae]

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        """[batch, d_in] -> features [batch, d_sae], non-negative."""
        return self.activate(self.pre_acts(h))

    def gather_pre(self, pre: torch.Tensor, indices: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """pre[b, indices[b, j]] [batch, k], differentiable w.r.t. W_enc, b_enc, b_dec, touching only
        those k encoder columns per input (pre itself is computed without gradient)."""
        return kernels.GatherPre.apply(pre.gather(1, indices), indices, h, self.W_enc, self.b_enc, self.b_dec)

    # --- decoder ---------------------------------------------------------------------------------
    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """features [batch, d_sae] -> reconstruction [batch, d_in] = f @ W_dec + b_dec."""
        return f @ self.W_dec + self.b_dec

    def decode_sparse(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Same as `decode` for a feature matrix holding `values` [batch, k] at `indices` [batch, k]
        and zeros elsewhere; reads (and back-propagates into) only those rows of W_dec."""
        return kernels.SparseDecode.apply(values, indices, self.W_dec) + self.b_dec

    def forward(self, h: torch.Tensor):
        """[batch, d_in] -> (h_hat [batch, d_in], f [batch, d_sae])."""
        f = self.encode(h)
        return self.decode(f), f

    # --- decoder-norm invariants -----------------------------------------------------------------
    @torch.no_grad()
    def unit_norm_decoder_(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def remove_parallel_grad_(self) -> None:
        """Drop the part of W_dec's gradient along each (unit) row: a step then only rotates rows."""
        if self.W_dec.grad is not None:
            g, w = self.W_dec.grad, self.W_dec
            g -= (g * w).sum(1, keepdim=True) * w
