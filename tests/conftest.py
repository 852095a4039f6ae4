"""Shared fixtures: every test is seeded, and `tiny_run` builds a small run (data, MLP,
activations) once per session through the stage scripts' own main() functions."""
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.paths import RunPaths  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


# a run small enough to build in a few seconds: 600 rows, a 16 -> 32 -> 64 -> 1 MLP, 5 epochs.
# It is too small to learn the task (that takes the default run: see benchmarks/bench_foundation.py);
# it exists to exercise every stage's code path.
TINY = {"n_train": 600, "n_val": 100, "n_test": 100, "d_mlp": 32, "d_hidden": 64, "epochs": 5, "batch_size": 128}


def build_tiny_run(run_dir: Path) -> RunPaths:
    import harvest_activations
    import train_mlp
    from dataset import data_generator

    common = ["--run-dir", str(run_dir), "--quiet"]
    data_generator.main(data_generator.parse_args(
        common + [f"--n-train={TINY['n_train']}", f"--n-val={TINY['n_val']}", f"--n-test={TINY['n_test']}"]))
    train_mlp.main(train_mlp.parse_args(
        common + [f"--d-mlp={TINY['d_mlp']}", f"--d-hidden={TINY['d_hidden']}", f"--epochs={TINY['epochs']}",
                  f"--batch-size={TINY['batch_size']}"]))
    harvest_activations.main(harvest_activations.parse_args(common))
    return RunPaths(run_dir)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> RunPaths:
    """A read-only tiny run (data + MLP + activations). Tests that write into a run copy it first
    with `copy_run`."""
    return build_tiny_run(tmp_path_factory.mktemp("tiny_run"))


@pytest.fixture
def copy_run(tiny_run, tmp_path):
    """A private, writable copy of the tiny run."""
    import shutil

    def _copy() -> RunPaths:
        dst = tmp_path / "run"
        shutil.copytree(tiny_run.root, dst)
        return RunPaths(dst)
    return _copy
