"""Shared fixtures: every test is seeded, and `tiny_run` builds a small run (data, MLP,
activations) once per session through the stage scripts' own main() functions (the run's
settings live in tests/helpers.py)."""
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.paths import RunPaths  # noqa: E402
from tests.helpers import OTHER_SLOTS, build_tiny_run  # noqa: E402

# One intra-op thread: the suite's tensors are tiny, so a second thread gains little on an idle
# machine, and on a busy one (several jobs sharing two cores) two threads per process made SAE
# training ~4x slower (tests/sae/test_learning.py: 67 s with 2 threads, 15 s with 1, load ~8).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> RunPaths:
    """A read-only tiny run (data + MLP + activations). Tests that write into a run copy it first
    with `copy_run`."""
    return build_tiny_run(tmp_path_factory.mktemp("tiny_run"))


@pytest.fixture(scope="session")
def tiny_run_other_slots(tmp_path_factory) -> RunPaths:
    """The tiny run on the task of OTHER_SLOTS slots per column (not the default 4), read-only."""
    return build_tiny_run(tmp_path_factory.mktemp("tiny_run_other_slots"), slots=OTHER_SLOTS)


@pytest.fixture
def copy_run(tiny_run, tmp_path):
    """A private, writable copy of the tiny run."""
    def _copy() -> RunPaths:
        dst = tmp_path / "run"
        shutil.copytree(tiny_run.root, dst)
        return RunPaths(dst)
    return _copy
