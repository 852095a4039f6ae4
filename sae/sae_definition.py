"""The SAE's files: `save_sae` writes weights + config (+ metrics, train_config) to a `.pth`, and
`load_sae` rebuilds the SAE from a file alone, in eval mode: this project's `.pth`, or a folder in
SAELens's layout (`sae/saelens.py`), so an SAE trained elsewhere on this MLP's layer can be probed.
"""
from pathlib import Path

from common.io import (PipelineError, atomic_torch_save, require_finite, require_keys, require_state_shapes,
                       safe_torch_load, stored_metrics)
from sae.base import SAE
from sae.registry import SAE_REMEDY, build_sae, config_from_dict
from sae.saelens import load_saelens


def save_sae(sae: SAE, path: Path, metrics: dict | None = None, train_config: dict | None = None) -> None:
    """Write weights + config (+ the metrics it reached and how it was trained), atomically."""
    atomic_torch_save({
        "config": sae.cfg.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in sae.state_dict().items()},
        "metrics": metrics or {},
        "train_config": train_config or {},
    }, path)


def sae_from_checkpoint(ckpt, path: Path) -> SAE:
    """Rebuild an SAE from a loaded checkpoint dict (as written by `save_sae`, or a training
    checkpoint holding the same keys); a mismatch -> PipelineError naming `path`."""
    require_keys(ckpt, ["config", "state_dict"], path, "SAE checkpoint", SAE_REMEDY)
    try:
        cfg = config_from_dict(ckpt["config"])
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        msg = " ".join(str(e).split())[:200]
        raise PipelineError(f"{path}: not an SAE checkpoint of this project ({msg}); {SAE_REMEDY}") from None
    require_state_shapes(lambda: build_sae(cfg), ckpt["state_dict"], path, "SAE checkpoint", SAE_REMEDY)  # before allocating
    sae = build_sae(cfg)
    sae.load_state_dict(ckpt["state_dict"])
    return sae


def load_sae(path: Path, device="cpu") -> SAE:
    """Rebuild the SAE from its file alone, in eval mode (a folder: SAELens's layout)."""
    if Path(path).is_dir():
        sae = load_saelens(path, device)
    else:
        sae = sae_from_checkpoint(safe_torch_load(path, "SAE checkpoint", SAE_REMEDY), path).to(device).eval()
    require_finite(sae.state_dict(), path, "SAE", SAE_REMEDY)   # a diverged or altered SAE must not be probed
    return sae


def sae_metrics_of(path: Path) -> dict:
    """The metrics stored in an SAE file (empty dict if none)."""
    return stored_metrics(safe_torch_load(path, "SAE checkpoint", SAE_REMEDY))
