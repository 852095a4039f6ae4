"""Print a run's key metrics and the pipeline's total time: the summary workflow.sh/.bat end with.

Reads <run-dir>/metrics.json (and whether the reports' index.html exists); writes nothing.
    python run_summary.py --run-dir runs/default [--seconds 95]
"""
import argparse

from common.paths import DEFAULT_RUN_DIR, RunPaths
from common.summary import summary_lines


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Print a run's key metrics.")
    p.add_argument("--run-dir", default=str(DEFAULT_RUN_DIR))
    p.add_argument("--seconds", type=float, default=None, help="total pipeline time to report")
    return p.parse_args(argv)


def main(args) -> None:
    bar = "=" * 66
    print(bar)
    print(f"Run {args.run_dir}")
    for line in summary_lines(RunPaths(args.run_dir)):
        print("  " + line)
    if args.seconds is not None:
        print(f"  Total time {int(args.seconds // 60)} m {int(args.seconds % 60)} s")
    print(bar)


if __name__ == "__main__":
    main(parse_args())
