"""The pointer-difference task, defined once, and stage 1 of the pipeline.

An input is ten integers read as two columns of five: `col1 = x[0:4]` (digits 0..9),
`p1 = x[4]` (0..3), `col2 = x[5:9]`, `p2 = x[9]`. With `a = col1[p1]` and `b = col2[p2]`,
`target = |a - b|`. Example: [8, 9, 5, 1, 3, 2, 9, 4, 7, 1] -> a = 1, b = 9, target 8.

As a script: writes `mlp_train.xlsx`, `mlp_val.xlsx`, `mlp_test.xlsx` into `<run-dir>/dataset/`.
    python dataset/data_generator.py [--run-dir runs/default] [--seed 0] [--n-train 8000] ...
"""
import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()

import torch

N_INPUTS = 10
N_SLOTS = 4           # digits per column
N_DIGITS = 10         # digit values 0..9
COL1, P1, COL2, P2 = slice(0, 4), 4, slice(5, 9), 9
# ground-truth variables of a sample, in the order reports show them
GT_VARIABLES = ("p1", "p2", "a", "b", "a-b", "target")
DIGIT_VARIABLES = tuple(f"c1[{i}]" for i in range(N_SLOTS)) + tuple(f"c2[{i}]" for i in range(N_SLOTS))
# the reference project's probe inputs
REFERENCE_INPUTS = (
    (8, 9, 5, 1, 3, 2, 9, 4, 7, 1),
    (8, 9, 5, 2, 3, 2, 8, 4, 7, 1),
    (8, 9, 5, 3, 3, 2, 7, 4, 7, 1),
    (8, 9, 5, 4, 3, 2, 5, 4, 7, 1),
    (8, 9, 5, 5, 3, 2, 4, 4, 7, 1),
)
SPLIT_SIZES = {"train": 8000, "val": 1000, "test": 1000}
# independent random streams derived from one --seed: the data splits, the fresh inputs the SAE
# may be trained on, and the fresh inputs features are evaluated on never overlap in seed
SEED_STREAMS = {"train": 0, "val": 1, "test": 2, "harvest": 10, "analysis": 20, "benchmark": 30}


def stream_seed(seed: int, stream: str) -> int:
    return seed * 1000 + SEED_STREAMS[stream]


def sample_inputs(n: int, seed: int = 0) -> torch.Tensor:
    """`n` fresh inputs, uniform over digits and pointers; the same seed gives the same inputs."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, N_DIGITS, (n, N_INPUTS), generator=g)          # [n, 10]
    x[:, [P1, P2]] = torch.randint(0, N_SLOTS, (n, 2), generator=g)
    return x


def pointed_values(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) = (col1[p1], col2[p2]) of each input."""
    x = torch.as_tensor(x)
    a = x[:, COL1].gather(1, x[:, P1:P1 + 1]).squeeze(1)
    b = x[:, COL2].gather(1, x[:, P2:P2 + 1]).squeeze(1)
    return a, b


def target(x: torch.Tensor) -> torch.Tensor:
    """|col1[p1] - col2[p2]| of each input, as integers [n]."""
    a, b = pointed_values(x)
    return (a - b).abs()


def ground_truth(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ground-truth variables of each input: p1, p2, a, b, a-b, target and the raw digits."""
    x = torch.as_tensor(x)
    a, b = pointed_values(x)
    gt = {"p1": x[:, P1], "p2": x[:, P2], "a": a, "b": b, "a-b": a - b, "target": (a - b).abs()}
    for i, name in enumerate(DIGIT_VARIABLES):
        gt[name] = x[:, i if i < N_SLOTS else i + 1]
    return gt


def augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A label-preserving symmetry of the task: permute the four slots of each column (the
    pointer follows its digit) and swap the two columns half the time."""
    n = x.shape[0]
    out = x.clone()
    for col, p in ((COL1, P1), (COL2, P2)):
        perm = torch.rand(n, N_SLOTS, generator=generator).argsort(dim=1)    # new slot j holds old perm[j]
        out[:, col] = x[:, col].gather(1, perm)
        out[:, p] = perm.argsort(dim=1).gather(1, x[:, p:p + 1]).squeeze(1)  # where the old pointed slot went
    swap = torch.rand(n, generator=generator) < 0.5
    out[swap] = torch.cat([out[swap, 5:], out[swap, :5]], dim=1)
    return out


def parse_args(argv=None):
    from common.cli import add_common_args
    parser = argparse.ArgumentParser(description="Stage 1: write the train/val/test Excel files.")
    add_common_args(parser)
    for split, n in SPLIT_SIZES.items():
        parser.add_argument(f"--n-{split}", type=int, default=n, help=f"{split} rows (default: {n})")
    parser.add_argument("--out-dir", default=None, help="output folder (default: <run-dir>/dataset)")
    return parser.parse_args(argv)


def main(args) -> dict:
    from common.cli import run_paths
    from common.io import PipelineError
    from dataset.data_loader import write_excel

    paths = run_paths(args)
    out_dir = Path(args.out_dir) if args.out_dir else paths.dataset_dir
    written = {}
    # each split has its own seed stream, so changing one size leaves the others' rows unchanged
    for split in SPLIT_SIZES:
        n = getattr(args, f"n_{split}")
        if n < 1:
            raise PipelineError(f"--n-{split} {n}: expected a positive number of rows")
        x = sample_inputs(n, seed=stream_seed(args.seed, split))
        path = out_dir / paths.split_xlsx(split).name
        write_excel(path, x, target(x))
        written[split] = str(path)
        if not args.quiet:
            print(f"wrote {n:>6} rows to {path}")
    return written


if __name__ == "__main__":
    from common.cli import run_main
    run_main(main, parse_args())
