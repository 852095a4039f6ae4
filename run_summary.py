"""Print a run's key metrics and the pipeline's times: the summary run_pipeline.py ends with.

Reads <run-dir>/metrics.json (and whether the reports' index.html exists); writes nothing. When the
run has labelled SAEs it ends with their comparison table (analysis.compare, as on reports/compare.html).
    python run_summary.py --run-dir runs/default [--seconds 95] [--stage-seconds data=1.9 mlp=10.8 ...]
"""
import argparse

from analysis.compare import comparison, comparison_lines
from common import validate
from common.cli import ArgumentParser, run_main
from common.paths import DEFAULT_RUN_DIR, RunPaths
from common.summary import summary_lines


def parse_args(argv=None):
    p = ArgumentParser(description="Print a run's key metrics.")
    p.add_argument("--run-dir", default=str(DEFAULT_RUN_DIR))
    p.add_argument("--seconds", type=validate.finite_nonnegative_float, default=None, help="total pipeline time to report")
    p.add_argument("--stage-seconds", type=stage_seconds, nargs="*", default=[], metavar="STAGE=S",
                   help="each stage's time to report, in the order given")
    return p.parse_args(argv)


def stage_seconds(text) -> tuple[str, float]:
    """STAGE=S: a stage's name and its time in seconds."""
    name, sep, value = str(text).partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected STAGE=SECONDS, got {validate.shown(text)}")
    return name, validate.finite_nonnegative_float(value)


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
    if args.stage_seconds:
        print("  Stage times  " + "  ".join(f"{name} {seconds:.1f} s" for name, seconds in args.stage_seconds))
    if args.seconds is not None:
        print(f"  Total time {int(args.seconds // 60)} m {int(args.seconds % 60)} s")
    print(bar)


if __name__ == "__main__":
    run_main(main, parse_args())
