"""`matryoshka`: the Matryoshka BatchTopK SAE (Bussmann et al. 2025; Nabeshima 2024).

A BatchTopK SAE whose loss sums the reconstruction losses of nested prefixes of the dictionary
(latents 0..m-1 for each m in `prefixes`, the last the whole dictionary): the first latents must
reconstruct on their own, so they learn general features, and later ones refine them. Splitting
then shows up as fine latents whose decoder directions and firing nest inside coarse ones
(feature_splitting.py). Inference is BatchTopK's (one global threshold).
"""
from dataclasses import dataclass, field

from sae.base import register
from sae.batchtopk import BatchTopKConfig, BatchTopKSAE
from sae.losses import normalized_mse


PREFIXES_HELP = ("matryoshka, balmatryoshka: nested dictionary sizes, increasing, the last = d_sae; "
                 "empty: d_sae/32, /8, /2, d_sae")


@dataclass
class MatryoshkaConfig(BatchTopKConfig):
    architecture: str = "matryoshka"
    prefixes: tuple = field(default=(), metadata={"help": PREFIXES_HELP})

    def __post_init__(self):
        super().__post_init__()
        self.prefixes = nested_prefixes(self.prefixes, self.d_sae)


def nested_prefixes(prefixes, d_sae: int) -> tuple:
    """The nested dictionary sizes `prefixes` checked (increasing, from >= 1 up to d_sae), or the
    default d_sae/32, /8, /2, d_sae when empty; ValueError otherwise."""
    p = tuple(int(v) for v in prefixes) or tuple(sorted({max(1, d_sae // q) for q in (32, 8, 2)} | {d_sae}))
    if any(b <= a for a, b in zip(p, p[1:])) or p[0] < 1 or p[-1] != d_sae:
        raise ValueError(f"prefixes {','.join(map(str, p))}: expected increasing sizes from 1 up to d_sae ({d_sae})")
    return p


@register
class MatryoshkaSAE(BatchTopKSAE):
    config_class = MatryoshkaConfig
    RECIPE = dict(lr=2e-3, batch_size=512, steps=1500, dead_window=5_000, resample_at=(), sparsity_warmup_steps=0)

    def prefix_losses(self, h, f, var):
        """The FVU of the reconstruction from latents [0, m) alone, summed over the prefixes smaller than
        the dictionary (the whole dictionary's term is BatchTopK's own)."""
        return sum(normalized_mse(h, f[:, :m] @ self.W_dec[:m] + self.b_dec, var) for m in self.cfg.prefixes[:-1])
