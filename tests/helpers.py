"""The one home of the test suite's tiny configurations: small SAEs, training settings and runs
that exercise every code path in seconds on two cores."""
import torch

from sae.registry import build_sae, config_fields, sae_config
from sae.training import TrainConfig

# per-architecture settings small enough for a 64-d layer; a test overrides what it checks
TINY_SAE_SETTINGS = {"k": 6, "aux_k": 32, "l1_coeff": 1e-3, "l0_coeff": 1e-3, "bandwidth": 0.05}


def tiny_sae_config(architecture: str, d_in: int = 64, d_sae: int = 128, **settings):
    """The architecture's config with the tiny settings; `settings` meant for other architectures
    are dropped, so one call site can parametrize over every architecture."""
    own = config_fields(architecture)
    merged = {k: v for k, v in {**TINY_SAE_SETTINGS, **settings}.items() if k in own}
    return sae_config(architecture, d_in=d_in, d_sae=d_sae, **merged)


def tiny_sae(architecture: str = "relu", d_in: int = 64, d_sae: int = 128, seed: int = 0, **settings):
    return build_sae(tiny_sae_config(architecture, d_in, d_sae, **settings), generator=torch.Generator().manual_seed(seed))


def tiny_train_config(**kw) -> TrainConfig:
    return TrainConfig(**{"lr": 3e-3, "batch_size": 128, "steps": 30, "warmup_steps": 5, "n_eval": 200,
                          "dead_window": 1000, "resample_at": (0.5,), "checkpoint_every": 0, **kw})


# train_sae.py flags of a tiny SAE run (the script's own recipes would take minutes)
TINY_SAE_FLAGS = ["--d-sae", "32", "--k", "4", "--steps", "40", "--batch-size", "128", "--n-eval", "100"]


def synthetic_acts(n: int = 2000, d_in: int = 64, seed: int = 0) -> torch.Tensor:
    """Non-negative activations that are sparse combinations of 48 directions, like a ReLU layer: [n, d_in]."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.rand(48, d_in, generator=g)
    coef = torch.rand(n, 48, generator=g) * (torch.rand(n, 48, generator=g) < 0.08)
    return coef @ dirs
