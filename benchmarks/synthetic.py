"""A synthetic benchmark with a known dictionary: activations built from `n_features` true unit
directions in superposition, so an SAE can be scored on whether it finds them.

    h = sum_i a_i * d_i + b + noise        # [d_in]; d_i true unit directions [n_features, d_in]

- each feature is active independently (Bernoulli, mean `mean_active` active per input; with
  `freq_decay` > 0 the firing probabilities follow a power law, as real features' do);
- active magnitudes a_i ~ U(0, 2) ("uniform", mean 1) or Exp(1) ("exponential");
- b is a fixed offset (tests the b_dec handling), noise is isotropic Gaussian of std `noise`.
Everything is drawn from one generator seeded on the data's own stream (`DATA_STREAM` + seed, never
an SAE's seed): the same config gives the same tensors.

Scores (`score`) of anything with `encode`, `decode` and `W_dec` [d_sae, d_in], on the held-out split:
- recovered: share of true directions with some decoder row at cosine >= 0.9;
- mmcs: mean over true directions of the max cosine with a decoder row;
- fvu, l0 (mean active latents per input), dead_share (latents never active on the split).
"""
from dataclasses import dataclass

import torch

from sae.metrics import reconstruction_stats

RECOVERED_COS = 0.9
# The data's own seed stream. An SAE is initialised from torch's generator at its training seed (0, 1,
# ...); were the data drawn from a generator at the same small seed, torch.randn would give the SAE's
# initial decoder the true dictionary's rows, and every architecture would "recover" it untrained.
DATA_STREAM = 0x5EED_DA7A


@dataclass
class SyntheticConfig:
    d_in: int = 128
    n_features: int = 512
    mean_active: float = 8.0       # expected active features per input
    freq_decay: float = 0.0        # firing probability of feature i ~ (i + 1) ** -freq_decay, rescaled
    magnitude: str = "uniform"     # uniform: U(0, 2) | exponential: Exp(1)
    noise: float = 0.01            # std of the isotropic Gaussian noise, per dimension
    offset: float = 0.5            # norm of the fixed offset b
    n_train: int = 200_000
    n_eval: int = 20_000
    seed: int = 0


def true_dictionary(cfg: SyntheticConfig, g: torch.Generator) -> torch.Tensor:
    d = torch.randn(cfg.n_features, cfg.d_in, generator=g)
    return d / d.norm(dim=1, keepdim=True)                            # [n_features, d_in]


def firing_probabilities(cfg: SyntheticConfig) -> torch.Tensor:
    w = (torch.arange(cfg.n_features, dtype=torch.float64) + 1) ** -cfg.freq_decay
    return (w * cfg.mean_active / w.sum()).clamp(max=1.0).float()    # [n_features]


def sample(cfg: SyntheticConfig, dictionary: torch.Tensor, offset: torch.Tensor, n: int,
           g: torch.Generator, chunk: int = 16384) -> torch.Tensor:
    p = firing_probabilities(cfg)
    out = []
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        on = torch.rand(m, cfg.n_features, generator=g) < p           # [m, n_features]
        if cfg.magnitude == "uniform":
            a = 2 * torch.rand(m, cfg.n_features, generator=g)
        elif cfg.magnitude == "exponential":
            a = -torch.rand(m, cfg.n_features, generator=g).clamp_min(1e-12).log()
        else:
            raise ValueError(f"magnitude {cfg.magnitude!r}: expected uniform or exponential")
        h = (a * on) @ dictionary + offset + cfg.noise * torch.randn(m, cfg.d_in, generator=g)
        out.append(h)                                                 # [m, d_in]
    return torch.cat(out)


def make_synthetic(cfg: SyntheticConfig) -> dict:
    """{"train": [n_train, d_in], "eval": [n_eval, d_in], "dictionary": [n_features, d_in]}."""
    g = torch.Generator().manual_seed(DATA_STREAM + cfg.seed)
    dictionary = true_dictionary(cfg, g)
    offset = torch.randn(cfg.d_in, generator=g)
    offset = cfg.offset * offset / offset.norm()
    train = sample(cfg, dictionary, offset, cfg.n_train, g)
    held_out = sample(cfg, dictionary, offset, cfg.n_eval, g)
    return {"train": train, "eval": held_out, "dictionary": dictionary}


@torch.no_grad()
def dictionary_recovery(dictionary: torch.Tensor, W_dec: torch.Tensor) -> dict:
    """recovered share (max cosine >= RECOVERED_COS) and MMCS of true rows [n_features, d_in]
    against decoder rows [d_sae, d_in]."""
    dec = W_dec / W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
    best = (dictionary @ dec.t()).max(dim=1).values                   # [n_features]
    return {"recovered": float((best >= RECOVERED_COS).float().mean()), "mmcs": float(best.mean())}


def reconstruction(sae, h: torch.Tensor) -> dict:
    """fvu, l0, dead_share of an SAE on h [n, d_in] (sae.metrics, the project's one implementation)."""
    stats = reconstruction_stats(sae.eval(), h)
    return {"fvu": stats["fvu"], "l0": stats["l0"], "dead_share": float((stats["counts"] == 0).double().mean())}


def score(sae, data: dict) -> dict:
    return {**dictionary_recovery(data["dictionary"], sae.W_dec.detach()), **reconstruction(sae, data["eval"])}
