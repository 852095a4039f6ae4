"""Stage 1: write the train/val/test Excel files of the task (defined in `dataset.task`).

Writes `mlp_train.xlsx`, `mlp_val.xlsx`, `mlp_test.xlsx` into `<run-dir>/dataset/`, all three or
none: a bad flag or a failed write (disk full, read-only folder) leaves the old splits as they were.
    python dataset/data_generator.py [--run-dir runs/default] [--seed 0] [--slots 4] [--n-train 8000] ...

`--slots L` chooses the task (L digits per column, 2L + 2 integers per input) for the whole run: the
splits' width records it, and every later stage reads it from them (or from the MLP trained on them).
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
from pathlib import Path

from common.cli import ArgumentParser, add_common_args, run_main, run_paths
from common.io import atomic_group
from common.validate import int_range
from dataset.data_loader import MAX_ROWS, write_excel
from dataset.slots import TRAIN_ROWS_PER_POINTER_PAIR, default_n_train
from dataset.task import DEFAULT_SLOTS, MAX_SLOTS, MIN_SLOTS, Task, stream_seed, target

SPLIT_SIZES = {"train": default_n_train(DEFAULT_SLOTS), "val": 1000, "test": 1000}


def parse_args(argv=None):
    parser = ArgumentParser(description="Stage 1: write the train/val/test Excel files.")
    add_common_args(parser)
    parser.add_argument("--slots", type=int_range(MIN_SLOTS, MAX_SLOTS), default=DEFAULT_SLOTS,
                        help=f"digits per column L of the task, {MIN_SLOTS}..{MAX_SLOTS} ({MAX_SLOTS}: the largest whose "
                             f"concept grammar fits in memory, see dataset/slots.py) (default: {DEFAULT_SLOTS})")
    for split, n in SPLIT_SIZES.items():
        # at most what load_excel reads back; the training rows scale with L (None: the task's default)
        parser.add_argument(f"--n-{split}", type=int_range(1, MAX_ROWS), default=None if split == "train" else n,
                            help=f"{split} rows, 1..{MAX_ROWS:,} (default: "
                                 + (f"{TRAIN_ROWS_PER_POINTER_PAIR} x L^2, {n} at L = {DEFAULT_SLOTS})" if split == "train"
                                    else f"{n})"))
    parser.add_argument("--out-dir", default=None, help="output folder (default: <run-dir>/dataset)")
    return parser.parse_args(argv)


def main(args) -> dict:
    paths = run_paths(args)
    out_dir = Path(args.out_dir) if args.out_dir else paths.dataset_dir
    task = Task(args.slots)
    sizes = {split: getattr(args, f"n_{split}") for split in SPLIT_SIZES}
    sizes["train"] = sizes["train"] or default_n_train(task.slots)
    written = {split: out_dir / paths.split_xlsx(split).name for split in SPLIT_SIZES}
    # all three or none: a dataset mixing two settings would train one MLP on another's validation split
    with atomic_group(written.values()) as temps:
        for (split, path), tmp in zip(written.items(), temps):
            # each split has its own seed stream, so changing one size leaves the others' rows unchanged
            x = task.sample_inputs(sizes[split], seed=stream_seed(args.seed, split))
            write_excel(tmp, x, target(x))
    if not args.quiet:
        for split, path in written.items():
            print(f"wrote {sizes[split]:>6} rows (L = {task.slots}) to {path}")
    return {split: str(path) for split, path in written.items()}


if __name__ == "__main__":
    run_main(main, parse_args())
