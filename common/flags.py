"""The command-line error format of every script, importable without torch or numpy.

`run_pipeline.py --check` parses its flags with the system Python before `.venv` exists (workflow.sh
and workflow.bat call it first), so this module and those it imports use the standard library only.
`common.cli` re-exports both names; stage scripts import them from there.
"""
import argparse
import sys

MAX_ERROR_CHARS = 600   # an error line stays readable whatever path or value it names


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the pipeline's error format: a bad flag is one line on stderr,
    `error: argument --lr: expected a finite number > 0, got 'inf'`, exit code 2 (argparse's own
    prints the usage first). Every stage script builds its parser with this class."""

    def error(self, message):
        print(f"error: {one_line(message)} (see --help)", file=sys.stderr)
        sys.exit(2)


def one_line(message) -> str:
    """A message as one bounded line."""
    text = " ".join(str(message).split())
    return text if len(text) <= MAX_ERROR_CHARS else f"{text[:MAX_ERROR_CHARS - 3]}... ({len(text):,} characters)"
