"""The one home of the test suite's tiny configurations: small SAEs, training settings and runs
that exercise every code path in seconds on two cores."""
import json
from dataclasses import fields
from pathlib import Path

import torch

import harvest_activations
import label_features
import train_mlp
from common.paths import RunPaths
from dataset import data_generator
from sae.registry import build_sae, config_fields, sae_config
from sae.sae_definition import adopt_sae
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


# train_sae.py flags of a tiny SAE run (the script's own recipes would take minutes), for the default
# architecture (TopK); a test that needs another value appends the flag (argparse keeps the last)
TINY_SAE_FLAGS = ["--d-sae", "32", "--k", "4", "--steps", "40", "--batch-size", "128", "--n-eval", "100"]


def tiny_sae_flags(architecture: str) -> list:
    """TINY_SAE_FLAGS for `architecture`, without the settings it does not have (train_sae.py refuses
    a flag of another architecture)."""
    own, out, flags = config_fields(architecture), ["--architecture", architecture], list(TINY_SAE_FLAGS)
    for flag, value in zip(flags[::2], flags[1::2]):
        name = flag[2:].replace("-", "_")
        if name in own or name in {f.name for f in fields(TrainConfig)}:
            out += [flag, value]
    return out


# a run small enough to build in a few seconds: 600 rows, a 16 -> 32 -> 64 -> 1 MLP, 5 epochs.
# It is too small to learn the task (that takes the default run: see benchmarks/bench_foundation.py);
# it exists to exercise every stage's code path.
TINY = {"n_train": 600, "n_val": 100, "n_test": 100, "d_mlp": 32, "d_hidden": 64, "epochs": 5, "batch_size": 128}


# the task of the tiny run at another L than the default 4: the smallest, so its grammar is quick to build
OTHER_SLOTS = 3


def build_tiny_run(run_dir: Path, slots: int | None = None) -> RunPaths:
    """Stages 1-3 (data, MLP, activations) of the TINY run into `run_dir`, through the scripts' main();
    `slots`: the task's L (default: the generator's, 4). The later stages read it from the run."""
    common = ["--run-dir", str(run_dir), "--quiet"]
    data_generator.main(data_generator.parse_args(
        common + [f"--n-train={TINY['n_train']}", f"--n-val={TINY['n_val']}", f"--n-test={TINY['n_test']}"]
        + ([f"--slots={slots}"] if slots is not None else [])))
    train_mlp.main(train_mlp.parse_args(
        common + [f"--d-mlp={TINY['d_mlp']}", f"--d-hidden={TINY['d_hidden']}", f"--epochs={TINY['epochs']}",
                  f"--batch-size={TINY['batch_size']}"]))
    harvest_activations.main(harvest_activations.parse_args(common))
    return RunPaths(run_dir)


def synthetic_acts(n: int = 2000, d_in: int = 64, seed: int = 0) -> torch.Tensor:
    """Non-negative activations that are sparse combinations of 48 directions, like a ReLU layer: [n, d_in]."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.rand(48, d_in, generator=g)
    coef = torch.rand(n, 48, generator=g) * (torch.rand(n, 48, generator=g) < 0.08)
    return coef @ dirs


save_run_sae = adopt_sae   # an SAE a test built, saved into a run as made from its MLP


def add_labelled_matryoshka(paths: RunPaths, name: str = "mat") -> None:
    """A tiny (untrained) Matryoshka SAE with prefixes 4, 8, 16 saved into a run as `name`, and labelled:
    what feature_splitting.py links within one dictionary."""
    save_run_sae(tiny_sae("matryoshka", d_sae=16, k=4, prefixes=(4, 8, 16)), paths.for_sae(name),
                 metrics={"fvu": 0.5, "l0": 4.0})
    label_features.main(label_features.parse_args(["--run-dir", str(paths.root), "--sae", name, "--n-inputs", "2000",
                                                   "--quiet"]))


# metrics.json without the wall-clock fields: keys ending in `seconds` and the reports' `timings`
WALL_CLOCK_KEYS = ("timings",)


def normalised_metrics(run: RunPaths, *other_roots) -> str:
    def clean(d):
        if isinstance(d, dict):
            return {k: clean(v) for k, v in d.items() if not k.endswith("seconds") and k not in WALL_CLOCK_KEYS}
        if isinstance(d, list):
            return [clean(v) for v in d]
        if isinstance(d, str):
            for root in (run.root, *other_roots):
                d = d.replace(str(root), "<run>")
            return d
        return d
    return json.dumps(clean(json.loads(run.metrics.read_text())), indent=1, sort_keys=True)
