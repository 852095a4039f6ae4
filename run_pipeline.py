"""The whole pipeline: every stage of common/pipeline.py in order, then the end-of-run summary.

workflow.sh and workflow.bat set up .venv and hand their arguments to this script; with .venv set
up it runs as well on its own:

    .venv/bin/python run_pipeline.py [--run-dir runs/default] [--seed 0] [--slots 4] [--from STAGE] [--processes]

--slots L (the task's digits per column) goes to the data generator only: every later stage reads L
from the run's data or MLP, so --slots with --from a later stage is refused (it could disagree).

The stages run in this one process, each as its script's `main(parse_args([...]))` behind the same
error boundary (common.cli.run_main), so torch and the packages are imported once; --processes
starts each stage script as its own process instead (`python train_mlp.py --run-dir ... --seed 0`),
which gives the same metrics.json except the wall-clock fields. Reads and writes what the stages
do (README: the map). A stage that fails stops the chain: its one-line error, then `FAILED at stage
[n/9] TITLE (fix the error above, then: ./workflow.sh --from KEY)`, exit code 1; Ctrl-C: the
stage's `interrupted: ...` line, the same FAILED line, exit code 130.

--check only checks the flags, and --setup-hash prints the hash of the files .venv is installed from:
both use the standard library alone (as do the modules imported at the top), so the system Python
runs them before .venv exists (workflow.sh and workflow.bat check the flags first, so a typo is
refused before a first set-up of several minutes; workflow.bat records the hash).
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
import argparse
import gc
import importlib
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from common import validate
from common.flags import ArgumentParser
from common.interrupt import INTERRUPTED
from common.paths import DEFAULT_RUN_DIR
from common.pipeline import (SETUP_STEPS, STAGE_KEYS, STAGES, SUMMARY_SCRIPT, TOTAL_STEPS, script_module, setup_hash,
                             stage_argv)
from dataset.slots import DEFAULT_SLOTS, MAX_SLOTS, MIN_SLOTS

INTERRUPT_EXIT = 130
ROOT = Path(__file__).resolve().parent
# what a user types to resume (the FAILED line); run_pipeline.py itself takes the same --from
WORKFLOW = "workflow.bat" if os.name == "nt" else "./workflow.sh"


def stage_key(text) -> str:
    if text not in STAGE_KEYS:
        raise argparse.ArgumentTypeError(f"expected one of: {' '.join(STAGE_KEYS)}, got {validate.shown(text)}")
    return text


def run_dir(text) -> str:
    if not str(text).strip():
        raise argparse.ArgumentTypeError("expected a folder, got ''")
    return text


def parse_args(argv=None):
    p = ArgumentParser(description="Run every stage of the pipeline, then print the run's summary.",
                       epilog="workflow.sh / workflow.bat take the same flags (and `test [PYTEST ARGS]`).")
    p.add_argument("--run-dir", type=run_dir, default=str(DEFAULT_RUN_DIR),
                   help=f"folder of the run's artifacts (default: {DEFAULT_RUN_DIR})")
    p.add_argument("--seed", type=validate.seed, default=0, help=f"random seed, 0..{validate.MAX_SEED} (default: 0)")
    p.add_argument("--slots", type=validate.int_range(MIN_SLOTS, MAX_SLOTS), default=None,
                   help=f"digits per column L of the task, {MIN_SLOTS}..{MAX_SLOTS}, handed to the data stage only; later "
                        f"stages read L from the run (default: {DEFAULT_SLOTS})")
    p.add_argument("--from", dest="start", type=stage_key, default=STAGE_KEYS[0], metavar="STAGE",
                   help=f"resume the chain at a stage: {' '.join(STAGE_KEYS)} (default: {STAGE_KEYS[0]})")
    p.add_argument("--processes", action="store_true",
                   help="each stage in its own Python process, as its script runs alone (slower: every stage imports torch)")
    p.add_argument("--check", action="store_true", help="only check these flags, then exit (0: they are good)")
    p.add_argument("--setup-hash", action="store_true",
                   help="only print the hash of requirements.txt + pyproject.toml (workflow.bat records it in .venv)")
    args = p.parse_args(argv)
    if args.slots is not None and args.start != STAGE_KEYS[0]:
        p.error(f"argument --slots: the task is chosen by the data stage; with --from {args.start} the run's "
                f"data already fixes L (drop --slots, or start --from {STAGE_KEYS[0]})")
    return args


def run_in_process(script: str, argv: list[str]) -> int:
    """The script's main(parse_args(argv)) behind its error boundary; its exit code."""
    try:
        from common.cli import run_main

        module = importlib.import_module(script_module(script))
        run_main(module.main, module.parse_args(argv))
        return 0
    except SystemExit as e:   # run_main's one line is printed; argparse's too
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:  # while the stage's modules were still being imported
        print(INTERRUPTED, file=sys.stderr)
        return INTERRUPT_EXIT
    except Exception:         # a bug, not a user's error: its traceback, as a stage's own process shows it
        traceback.print_exc()
        return 1
    finally:
        gc.collect()          # the stage's tensors (the 600 MB of activations) go before the next one starts


def run_as_process(script: str, argv: list[str]) -> int:
    """`python SCRIPT ARGV` in its own process; its exit code. Ctrl-C reaches the stage too (same
    process group), which ends with its own line and code 130: wait for that, do not kill it."""
    proc = subprocess.Popen([sys.executable, str(ROOT / script), *argv])
    interrupted = False
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:
            interrupted = True
    return INTERRUPT_EXIT if interrupted and code == 0 else (INTERRUPT_EXIT if code == -signal.SIGINT else code)


def main(args) -> int:
    """Run the stages from args.start on; the exit code (0, 1: a stage failed, 130: interrupted)."""
    run = run_as_process if args.processes else run_in_process
    start = time.time()
    first = STAGE_KEYS.index(args.start)
    seconds = {}
    for i, stage in enumerate(STAGES):
        step = f"[{SETUP_STEPS + 1 + i}/{TOTAL_STEPS}] {stage.title}"
        if i < first:
            print(f"{step}... skipped (--from {args.start})")
            continue
        print(f"{step}...", flush=True)
        t0 = time.time()
        code = run(stage.script, stage_argv(stage, args.run_dir, args.seed, args.slots))
        seconds[stage.key] = time.time() - t0
        if code != 0:
            sys.stdout.flush()
            print(f"FAILED at stage {step} (fix the error above, then: {WORKFLOW} --from {stage.key})", file=sys.stderr)
            return INTERRUPT_EXIT if code == INTERRUPT_EXIT else 1
    times = [f"{key}={s:.2f}" for key, s in seconds.items()]
    total = f"{time.time() - start:.2f}"
    return run(SUMMARY_SCRIPT, ["--run-dir", args.run_dir, "--seconds", total, "--stage-seconds", *times])


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.setup_hash:
        print(setup_hash(ROOT))
    if arguments.check or arguments.setup_hash:
        sys.exit(0)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on Ctrl-C is KeyboardInterrupt
    try:
        sys.exit(main(arguments))
    except KeyboardInterrupt:   # between two stages (during one, the stage's own boundary answers)
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(INTERRUPT_EXIT)
