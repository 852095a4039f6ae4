"""Resumable training checkpoints: one file layout and one set of refusals for every trainer.

A checkpoint is one flat dict: `config` (the model's config), `train_config` (the training
settings), `made_from` (the digests of the data it was trained on, `common.provenance`) and the
trainer's state (step or epoch, model / optimizer / scheduler state dicts, generator states, ...). A
run resumed from it must be the run that wrote it, so `load_checkpoint` refuses one made with other
settings or from other data instead of silently mixing two runs.
"""
from pathlib import Path

from common.io import PipelineError, atomic_torch_save, require_finite, require_keys, safe_torch_load
from common.provenance import require_made_from

SETTINGS_KEYS = ("config", "train_config", "made_from")
OTHER_SETTINGS = ("checkpoint was made with other settings; "
                  "re-run with the same flags, or without --resume to start over")


def save_checkpoint(path: Path, *, config: dict, train_config: dict, state: dict,
                    made_from: dict | None = None) -> None:
    """Write `state` with the settings and data (`made_from`) it belongs to, atomically (an interrupted
    write leaves the previous checkpoint intact)."""
    clash = [k for k in SETTINGS_KEYS if k in state]
    if clash:
        raise ValueError(f"state must not hold {clash}: they are the checkpoint's settings")
    atomic_torch_save({"config": config, "train_config": train_config, "made_from": made_from or {}, **state}, path)


def load_checkpoint(path: Path, *, config: dict, train_config: dict, required: list[str], remedy: str,
                    what: str = "training checkpoint", made_from: dict | None = None) -> dict:
    """The checkpoint at `path` (a dict: `config`, `train_config`, `made_from` and the state keys), or a
    one-line PipelineError naming `path` when it is damaged or foreign (with `remedy`), lacks a
    `required` state key, was made with another `config` / `train_config`, or from other data than
    `made_from` ({role: provenance entry} of the inputs now)."""
    ckpt = safe_torch_load(path, what, remedy)
    require_keys(ckpt, ["config", "train_config", *required, "made_from"], path, what, remedy)
    if ckpt["config"] != config or ckpt["train_config"] != train_config:
        raise PipelineError(f"{path}: {OTHER_SETTINGS}")
    for role, now in (made_from or {}).items():
        require_made_from(path, ckpt, role, Path(now["file"]), now["digest"],
                          f"it was made from other data: {remedy}")
    for key, value in ckpt.items():  # weights that diverged or were altered must not be trained on
        if key.endswith("state_dict") and isinstance(value, dict):
            require_finite(value, path, what, remedy)
    return ckpt
