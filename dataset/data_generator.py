"""Stage 1: write the train/val/test Excel files of the task (defined in `dataset.task`).

Writes `mlp_train.xlsx`, `mlp_val.xlsx`, `mlp_test.xlsx` into `<run-dir>/dataset/`.
    python dataset/data_generator.py [--run-dir runs/default] [--seed 0] [--n-train 8000] ...
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
import argparse
from pathlib import Path

from common.cli import add_common_args, run_main, run_paths
from common.io import PipelineError
from dataset.data_loader import write_excel
from dataset.task import sample_inputs, stream_seed, target
SPLIT_SIZES = {"train": 8000, "val": 1000, "test": 1000}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Stage 1: write the train/val/test Excel files.")
    add_common_args(parser)
    for split, n in SPLIT_SIZES.items():
        parser.add_argument(f"--n-{split}", type=int, default=n, help=f"{split} rows (default: {n})")
    parser.add_argument("--out-dir", default=None, help="output folder (default: <run-dir>/dataset)")
    return parser.parse_args(argv)


def main(args) -> dict:
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
    run_main(main, parse_args())
