"""Ctrl-C before `common.cli.run_main` takes over.

A stage script calls `install()` first thing when it runs as `__main__`, so that Ctrl-C while
Python is still importing torch (the first seconds) prints one line and exits 130, as Ctrl-C
later does under `run_main`, instead of a traceback. Importing this module changes nothing.
"""
import signal
import sys

INTERRUPTED = "interrupted: artifacts already on disk are unchanged"


def _interrupted(signum, frame):
    print(INTERRUPTED, file=sys.stderr)
    sys.exit(130)


def install() -> None:
    signal.signal(signal.SIGINT, _interrupted)
