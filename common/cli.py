"""Flags every stage shares, seeding, device choice, and the error boundary of a script."""
import argparse
import random
import signal
import sys
from typing import Callable

import numpy as np
import torch

from common.flags import MAX_ERROR_CHARS, ArgumentParser, one_line  # noqa: F401 (re-exported)
from common.interrupt import INTERRUPTED
from common import provenance, validate
from common.io import PipelineError, write_problem
from common.paths import DEFAULT_RUN_DIR, RunPaths

DEFAULT_SEED = 0


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--run-dir", default=str(DEFAULT_RUN_DIR),
                        help=f"folder of this run's artifacts (default: {DEFAULT_RUN_DIR})")
    parser.add_argument("--seed", type=validate.seed, default=DEFAULT_SEED,
                        help=f"random seed, 0..{validate.MAX_SEED} (default: 0)")
    parser.add_argument("--device", type=validate.device, default="auto",
                        help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N (default: auto)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (for chained runs)")
    return parser


def run_paths(args) -> RunPaths:
    return RunPaths(args.run_dir)


def add_sae_arg(parser: argparse.ArgumentParser, allow_all: bool = False) -> None:
    """--sae NAME: which SAE of the run a stage works on (train_sae.py --name NAME made it)."""
    parser.add_argument("--sae", default=None, metavar="NAME" + ("|all" if allow_all else ""),
                        help="an SAE of the run trained with train_sae.py --name NAME"
                             + (", or 'all' for every SAE of the run" if allow_all else "") + " (default: the run's default SAE)")


def selected_saes(args) -> list[RunPaths]:
    """The run's paths for each SAE --sae names ('all': every SAE whose group is whole, so a half-written
    one is not listed); an unknown name lists the ones that exist, a half-written one says what is wrong."""
    paths = run_paths(args)
    if args.sae in (None, "default"):
        return [paths]                # its missing inputs are named by the stage, upstream first
    names = provenance.whole_sae_names(paths)
    wanted = names if args.sae == "all" else [args.sae]
    for name in wanted:
        if name not in names and name in paths.sae_names():
            problem = provenance.whole_problem(paths.for_sae(name).sae, "SAE checkpoint")
            raise PipelineError(f"--sae {name}: not a whole SAE ({problem}); re-run train_sae.py --run-dir "
                                f"{paths.root} --name {name}")
        if name not in names:
            have = ", ".join(names) if names else "none yet (run train_sae.py first)"
            shown = name if len(name) <= 80 else f"{name[:80]}... ({len(name)} characters)"
            raise PipelineError(f"--sae {shown!r}: no such SAE in {paths.root} (SAEs of this run: {have})")
    if not wanted:
        raise PipelineError(f"--sae all: {paths.root} has no SAE yet; run train_sae.py --run-dir {paths.root} first")
    try:
        return [paths.for_sae(name) for name in wanted]
    except ValueError as e:
        raise PipelineError(f"--sae: {e}") from None


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


def _quiet_exit(line: str, code: int) -> None:
    """Print the one line and exit. Objects left half-closed by the failure (a zip a full disk cut short)
    may fail again when collected on the way out: that is the same error, so it is not printed twice."""
    sys.unraisablehook = lambda _unraisable: None
    print(line, file=sys.stderr)
    sys.exit(code)


def run_main(main: Callable, args) -> None:
    """Call `main(args)`; turn a PipelineError (or a file-system error no writer mapped: disk full,
    permissions, a path that is a file) into one line on stderr and exit code 2, and Ctrl-C into exit
    code 130, with no traceback."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on Ctrl-C is KeyboardInterrupt
    try:
        main(args)
    except PipelineError as e:
        _quiet_exit(f"error: {one_line(e)}", 2)
    except OSError as e:
        _quiet_exit(f"error: {one_line(write_problem(e, e.filename or '?', doing='accessing'))}", 2)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
