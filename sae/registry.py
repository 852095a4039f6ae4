"""An SAE from its architecture's name and settings: the one place that maps names to architectures.

The architectures live one per module (`sae/relu.py`, `sae/topk.py`, `sae/jumprelu.py`, `sae/gated.py`, ...; the shared
maths in `sae/base.py`); importing this module registers them all. `sae_config(architecture, ...)`
builds the right config, `build_sae(cfg)` the module.
"""
from dataclasses import fields

import torch

from sae import balmatryoshka, batchtopk, gated, jumprelu, matryoshka, ortsae, relu, topk  # noqa: F401  (each registers its architecture)
from sae.base import ARCHITECTURES, DEFAULT_ARCHITECTURE, SAE, SAEConfig

SAE_REMEDY = "re-run train_sae.py"   # what every refusal of an SAE file tells the user


def architecture_class(name: str) -> type:
    if name not in ARCHITECTURES:
        raise ValueError(f"architecture {name!r}: expected one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def config_fields(architecture: str) -> dict:
    """{setting: default} of an architecture's config (architecture itself left out)."""
    return {f.name: f.default for f in fields(architecture_class(architecture).config_class) if f.name != "architecture"}


def sae_config(architecture: str = DEFAULT_ARCHITECTURE, **settings) -> SAEConfig:
    """The config of `architecture` with `settings` (its own fields only; others -> ValueError)."""
    cls = architecture_class(architecture).config_class
    unknown = sorted(set(settings) - set(config_fields(architecture)))
    if unknown:
        raise ValueError(f"{architecture} SAE has no setting {', '.join(unknown)}")
    return cls(**settings)


def build_sae(cfg: SAEConfig, generator: torch.Generator | None = None) -> SAE:
    return architecture_class(cfg.architecture)(cfg, generator=generator)


# settings that files written before the one-file-per-architecture layout carry for every architecture
_LEGACY_SETTINGS = {"l1_coeff", "k", "aux_k", "aux_coeff", "l0_coeff", "bandwidth", "threshold_init"}


def config_from_dict(config: dict) -> SAEConfig:
    config = dict(config)
    architecture = config.pop("architecture", None)
    if not isinstance(architecture, str):
        raise ValueError("config has no architecture")
    own = config_fields(architecture)
    config = {k: v for k, v in config.items() if k in own or k not in _LEGACY_SETTINGS}
    unknown = sorted(set(config) - set(own))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}")
    return sae_config(architecture, **config)
