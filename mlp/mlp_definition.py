"""The 3-layer MLP under study, its activation hooks, and its self-describing checkpoint.

    x [batch, 2L+2] ints -> encode -> fc1 -> ReLU -> fc2 -> ReLU = hidden [batch, 512] -> head -> y [batch]

`forward(x) == head(hidden(x))`. The encoding is inside the model, so every caller hands it the
raw integers: the 2L digits as magnitudes (scaled to 0..1) and the two pointers one-hot
(4L inputs; 16 at the default L = 4). The config records L (`slots`): the task the MLP solves,
which every later stage reads from it (`PointerMLP.task`). Calibration measured this against raw floats (93% exact-match) and one-hot
everything (36%, overfits); see README.

Hidden layers are made visible at named hook points (`hook_hidden` is the 512-d layer the
pipeline harvests); `capture` and `run_with_cache` read them and always remove their hooks.
"""
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import provenance, validate
from common.io import (PipelineError, atomic_torch_save, require_finite, require_keys, require_state_shapes,
                       safe_torch_load, stored_metrics)
from dataset.task import DEFAULT_SLOTS, N_DIGITS, Task, slots_problem

HIDDEN_HOOK = "hook_hidden"


MAX_WIDTH = 8192   # 8192 x 8192 float32 weights (256 MB, x4 with AdamW's state): far past what the task needs


@dataclass
class MLPConfig:
    d_mlp: int = 256       # width of the first hidden layer
    d_hidden: int = 512    # width of the harvested layer
    architecture: str = "pointer_mlp"
    slots: int = DEFAULT_SLOTS   # L, digits per column of the task it solves (a file without it: L = 4)

    def __post_init__(self):
        validate.check_fields(self)           # a config read from a file may hold anything
        if slots_problem(self.slots):
            raise ValueError(f"slots = {self.slots}: {slots_problem(self.slots)}")
        for name in ("d_mlp", "d_hidden"):
            if not 1 <= getattr(self, name) <= MAX_WIDTH:
                raise ValueError(f"{name} = {getattr(self, name)}: expected 1..{MAX_WIDTH}")


class PointerMLP(nn.Module):
    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        self.task = Task(cfg.slots)
        self.fc1 = nn.Linear(len(self.task.digit_positions) + 2 * cfg.slots, cfg.d_mlp)
        self.fc2 = nn.Linear(cfg.d_mlp, cfg.d_hidden)
        self.hook_hidden = nn.Identity()   # named point where the harvested layer is read
        self.head = nn.Linear(cfg.d_hidden, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, 2L+2] ints -> [batch, 4L] floats: digits / 9, then one-hot p1 and p2."""
        x, t = x.long(), self.task
        digits = x[:, t.digit_positions].float() / (N_DIGITS - 1)                 # [batch, 2L]
        pointers = F.one_hot(x[:, t.pointer_positions], t.slots).flatten(1).float()  # [batch, 2L]
        return torch.cat([digits, pointers], dim=1)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The harvested layer: [batch, 2L+2] ints -> [batch, d_hidden], non-negative."""
        h = F.relu(self.fc1(self.encode(x)))
        return self.hook_hidden(F.relu(self.fc2(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, 2L+2] ints -> predicted target [batch]."""
        return self.head(self.hidden(x)).squeeze(-1)


@contextmanager
def capture(model: nn.Module, names=(HIDDEN_HOOK,)):
    """Record the outputs of the named submodules while the block runs.

        with capture(model, ["hook_hidden"]) as cache:
            model(x)
        cache["hook_hidden"]  # [batch, 512], detached

    Hooks are global state on the module: they are removed in `finally`, even on error.
    """
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise KeyError(f"no submodule named {unknown}; available: {[n for n in modules if n]}")
    cache: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name in names:
            def hook(_module, _inputs, output, name=name):
                cache[name] = output.detach()
            handles.append(modules[name].register_forward_hook(hook))
        yield cache
    finally:
        for h in handles:
            h.remove()


def run_with_cache(model: nn.Module, x: torch.Tensor, names=(HIDDEN_HOOK,)):
    """Run the model and return (output, {name: detached activation})."""
    with capture(model, names) as cache:
        out = model(x)
    return out, dict(cache)


def save_mlp(model: PointerMLP, path: Path, metrics: dict | None = None, train_config: dict | None = None,
             made_from: dict | None = None) -> dict:
    """Write weights + config (+ the metrics it reached, and the provenance record: its digest and
    `made_from`, the data it was trained on), atomically; returns the record."""
    config, state = asdict(model.cfg), {k: v.detach().cpu() for k, v in model.state_dict().items()}
    record = provenance.make_record(provenance.weights_digest(config, state), made_from)
    atomic_torch_save({"config": config, "state_dict": state, "metrics": metrics or {},
                       "train_config": train_config or {}, provenance.KEY: record}, path)
    return record


MLP_REMEDY = "re-run train_mlp.py"


def load_mlp(path: Path, device="cpu") -> PointerMLP:
    """Rebuild the MLP from its file alone, in eval mode."""
    ckpt = safe_torch_load(path, "MLP checkpoint", MLP_REMEDY)
    require_keys(ckpt, ["config", "state_dict"], path, "MLP checkpoint", MLP_REMEDY)
    if isinstance(ckpt["state_dict"], dict):  # (else require_state_shapes below says what is wrong)
        require_finite(ckpt["state_dict"], path, "MLP", MLP_REMEDY)
    try:
        cfg = MLPConfig(**ckpt["config"])
        if cfg.architecture != "pointer_mlp":
            raise ValueError(f"architecture {cfg.architecture!r}")
    except (TypeError, ValueError, RuntimeError) as e:
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise PipelineError(f"{path}: not an MLP checkpoint of this project ({msg}); {MLP_REMEDY}") from None
    require_state_shapes(lambda: PointerMLP(cfg), ckpt["state_dict"], path, "MLP checkpoint", MLP_REMEDY)   # before allocating
    model = PointerMLP(cfg)
    model.load_state_dict(ckpt["state_dict"])
    model.provenance = provenance.model_record(ckpt, path, "MLP", MLP_REMEDY)   # what it was made from
    return model.to(device).eval()


def mlp_metrics_of(path: Path) -> dict:
    return stored_metrics(safe_torch_load(path, "MLP checkpoint", MLP_REMEDY))
