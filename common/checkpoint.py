"""Resumable training checkpoints: one file layout and one set of refusals for every trainer.

A checkpoint is one flat dict: `config` (the model's config), `train_config` (the training
settings), `made_from` (the digests of the data it was trained on, `common.provenance`) and the
trainer's state (step or epoch, model / optimizer / scheduler state dicts, generator states, ...). A
run resumed from it must be the run that wrote it, so `load_checkpoint` refuses one made with other
settings or from other data instead of silently mixing two runs.
"""
import math
from pathlib import Path

import torch

from common.io import PipelineError, atomic_torch_save, require_finite, require_keys, safe_torch_load
from common.validate import shown
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


def check_layout(current, saved, name: str) -> None:
    """ValueError naming the first place where `saved` (read from a checkpoint) is not laid out like
    `current` (the live object's state_dict()): same dict keys, list lengths, tensor shapes and dtypes,
    numbers (finite) where numbers are, strings, bools and None where they are."""
    if isinstance(current, bool) or current is None or isinstance(current, str):
        ok = type(saved) is type(current)
    elif isinstance(current, (int, float)):
        ok = isinstance(saved, (int, float)) and not isinstance(saved, bool) and math.isfinite(saved)
    elif torch.is_tensor(current):
        ok = torch.is_tensor(saved) and saved.dtype == current.dtype and saved.shape == current.shape
    elif isinstance(current, dict):
        if not (isinstance(saved, dict) and set(saved) == set(current)):
            raise ValueError(f"{name}: expected the keys {shown(sorted(map(str, current)))}")
        for k in current:
            check_layout(current[k], saved[k], f"{name}.{k}")
        return
    elif isinstance(current, (list, tuple)):
        if not (isinstance(saved, (list, tuple)) and len(saved) == len(current)):
            raise ValueError(f"{name}: expected a list of {len(current)}")
        for i, (c, s) in enumerate(zip(current, saved)):
            check_layout(c, s, f"{name}[{i}]")
        return
    else:
        return
    if not ok:
        what = f"{saved.dtype} {list(saved.shape)}" if torch.is_tensor(saved) else shown(saved, 40)
        want = f"{current.dtype} {list(current.shape)}" if torch.is_tensor(current) else type(current).__name__
        raise ValueError(f"{name} is {what}, expected {want}")


def load_optimizer_state_(optimizer: torch.optim.Optimizer, saved) -> None:
    """optimizer.load_state_dict(saved) once `saved` is checked against the optimizer's parameters:
    torch itself checks only the counts, so a moment of the wrong shape or a string step would fail
    mid-training. Anything else -> ValueError saying what is wrong."""
    current = optimizer.state_dict()
    if not (isinstance(saved, dict) and isinstance(saved.get("state"), dict)
            and isinstance(saved.get("param_groups"), list) and len(saved["param_groups"]) == len(current["param_groups"])):
        raise ValueError(f"optimizer: expected state and {len(current['param_groups'])} parameter group(s)")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    ids = []
    for i, (now, old) in enumerate(zip(current["param_groups"], saved["param_groups"])):
        check_layout({k: v for k, v in now.items() if k != "params"},
                     {k: v for k, v in old.items() if k != "params"} if isinstance(old, dict) else old,
                     f"optimizer.param_groups[{i}]")
        if not (isinstance(old.get("params"), list) and len(old["params"]) == len(now["params"])):
            raise ValueError(f"optimizer.param_groups[{i}].params: expected {len(now['params'])} parameters")
        ids += old["params"]
    if set(saved["state"]) - set(ids):
        raise ValueError("optimizer.state: entries for parameters it does not have")
    for pid, param in zip(ids, params):
        entry = saved["state"].get(pid, {})
        if not isinstance(entry, dict):
            raise ValueError(f"optimizer.state[{pid}]: expected a dict")
        for key, value in entry.items():
            scalar = key == "step"
            if not (torch.is_tensor(value) and value.is_floating_point() and bool(torch.isfinite(value).all())
                    and (value.numel() == 1 if scalar else value.shape == param.shape)):
                got = f"{value.dtype} {list(value.shape)}" if torch.is_tensor(value) else type(value).__name__
                raise ValueError(f"optimizer.state[{pid}].{key} is {got}, expected finite floats "
                                 f"{'[]' if scalar else list(param.shape)}")
    try:
        optimizer.load_state_dict(saved)
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise ValueError(f"optimizer: {type(e).__name__}") from None


def set_generator_state_(generator: torch.Generator, saved, name: str = "generator") -> None:
    """generator.set_state(saved), or ValueError when `saved` is not a state of such a generator."""
    check_layout(generator.get_state(), saved, name)
    try:
        generator.set_state(saved)
    except RuntimeError:
        raise ValueError(f"{name}: not a usable random generator state") from None
