"""Print a run's key metrics and the pipeline's total time: the summary workflow.sh/.bat end with.

Reads <run-dir>/metrics.json (and whether the reports' index.html exists); writes nothing. When the
run has labelled SAEs it ends with their comparison table (analysis.compare, as on reports/compare.html).
    python run_summary.py --run-dir runs/default [--seconds 95]
"""
import argparse

from analysis.compare import comparison, comparison_lines
from common import validate
from common.cli import ArgumentParser
from common.paths import DEFAULT_RUN_DIR, RunPaths
from common.summary import summary_lines


def parse_args(argv=None):
    p = ArgumentParser(description="Print a run's key metrics.")
    p.add_argument("--run-dir", default=str(DEFAULT_RUN_DIR))
    p.add_argument("--seconds", type=validate.finite_nonnegative_float, default=None, help="total pipeline time to report")
    return p.parse_args(argv)


def main(args) -> None:
    bar = "=" * 66
    print(bar)
    print(f"Run {args.run_dir}")
    paths = RunPaths(args.run_dir)
    for line in summary_lines(paths):
        print("  " + line)
    c = comparison(paths)
    if any(r["labelled"] for r in c["saes"]):
        print("  Every SAE of the run (explained: alive units at score >= 0.8; random: random directions, same density;"
              "\n  split, random: the same under the split-aware grammar, a pointer pair and one value condition;"
              "\n  absorb., random: full absorption, the share of a parent concept's inputs where its unit is silent"
              "\n  and a child's unit fires, analysis.absorption)")
        for line in comparison_lines(c):
            print("    " + line)
    if args.seconds is not None:
        print(f"  Total time {int(args.seconds // 60)} m {int(args.seconds % 60)} s")
    print(bar)


if __name__ == "__main__":
    main(parse_args())
