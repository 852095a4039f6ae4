"""Flags every stage shares, seeding, device choice, and the error boundary of a script."""
import argparse
import random
import signal
import sys
from typing import Callable

import numpy as np
import torch

from common.interrupt import INTERRUPTED
from common.io import PipelineError
from common.paths import DEFAULT_RUN_DIR, RunPaths

DEFAULT_SEED = 0


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--run-dir", default=str(DEFAULT_RUN_DIR),
                        help=f"folder of this run's artifacts (default: {DEFAULT_RUN_DIR})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: 0)")
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N (default: auto)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (for chained runs)")
    return parser


def run_paths(args) -> RunPaths:
    return RunPaths(args.run_dir)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise PipelineError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PipelineError(f"--device {name!r}: CUDA is not available on this machine; use --device cpu")
    return device


def run_main(main: Callable, args) -> None:
    """Call `main(args)`; turn a PipelineError into one line on stderr and exit code 2, and
    Ctrl-C into exit code 130, with no traceback."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on Ctrl-C is KeyboardInterrupt
    try:
        main(args)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
