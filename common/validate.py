"""The rules every command-line number follows, in one place, checked before a stage does any work.

Each function is an argparse `type=`: it returns the parsed value or raises
`argparse.ArgumentTypeError`, which `common.cli.ArgumentParser` prints as one line,
`error: argument --lr: expected a finite number > 0, got 'inf'`, with exit code 2.

    p = ArgumentParser(description="...")                                 # common.cli
    add_common_args(p)                                                    # --seed, --device checked here
    p.add_argument("--epochs", type=positive_int, default=100)
    p.add_argument("--lr", type=finite_positive_float, default=3e-3)
    p.add_argument("--checkpoint-every", type=nonnegative_int, default=10, help="... (0: never)")
    p.add_argument("--n-samples", type=int_range(1, MAX_SAMPLES), default=None)

Rules: sizes, counts and steps are integers >= 1 (>= 0 only where 0 means something, and the flag's
help says what); rates and coefficients are finite (no nan/inf); seeds are 0..MAX_SEED.
"""
import argparse
import dataclasses
import math

# Seeds derive stream seeds as seed * 1000 + k (dataset.task.stream_seed, plus small offsets);
# torch.Generator.manual_seed takes < 2**64 and numpy 32-bit seeds, so 2**32 - 1 keeps all of them
# in range with room to spare.
MAX_SEED = 2**32 - 1
SHOW_LIMIT = 80   # characters of a user's value echoed in an error line


def shown(value, limit: int = SHOW_LIMIT) -> str:
    """`repr(value)`, cut to `limit` characters with its full length, for error lines: a 32,000-character
    cell or flag is shown as "'xxxx...' (32,000 characters)"."""
    s = repr(value)
    if len(s) <= limit:
        return s
    return f"{s[:limit - 3]}... ({len(s):,} characters)"


def _fail(expected: str, text) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"expected {expected}, got {shown(text)}")


def _int(text, expected: str) -> int:
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    s = str(text).strip()
    if not s.lstrip("+-").isdigit() or not s.isascii() or len(s) > 30:   # 1e3, 2**70, 0x10, '', '١'
        raise _fail(expected, text)
    return int(s)


MAX_INT = 2**63 - 1   # torch's int64: no count or step of this project comes near it


def int_range(lo: int, hi: int | None = None):
    """An integer lo..hi (hi None: lo..MAX_INT, said as ">= lo")."""
    expected = f"an integer >= {lo:,}" if hi is None else f"an integer {lo:,}..{hi:,}"
    top = MAX_INT if hi is None else hi

    def parse(text) -> int:
        v = _int(text, expected)
        if v < lo or v > top:
            raise _fail(expected, text)
        return v
    parse.__name__ = f"int_{lo}_{hi}"
    return parse


positive_int = int_range(1)
positive_int.__name__ = "positive_int"
nonnegative_int = int_range(0)
nonnegative_int.__name__ = "nonnegative_int"
seed = int_range(0, MAX_SEED)
seed.__name__ = "seed"


def float_range(lo: float, hi: float | None = None, lo_open: bool = False, hi_open: bool = False):
    """A finite number in [lo, hi] (`lo_open` / `hi_open` exclude that end); nan and inf are refused."""
    if hi is None:
        expected = f"a finite number {'>' if lo_open else '>='} {lo:g}"
    else:
        expected = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def parse(text) -> float:
        try:
            v = float(text)
        except (TypeError, ValueError, OverflowError):
            raise _fail(expected, text) from None
        if (not math.isfinite(v) or v < lo or (lo_open and v == lo)
                or (hi is not None and (v > hi or (hi_open and v == hi)))):
            raise _fail(expected, text)
        return v
    parse.__name__ = f"float_{lo}_{hi}"
    return parse


finite_positive_float = float_range(0.0, lo_open=True)
finite_positive_float.__name__ = "finite_positive_float"
finite_nonnegative_float = float_range(0.0)
finite_nonnegative_float.__name__ = "finite_nonnegative_float"
fraction = float_range(0.0, 1.0)
fraction.__name__ = "fraction"


def device(text) -> str:
    """auto, cpu, cuda or cuda:N, refused unless present on this machine (the string is returned;
    `common.cli.pick_device` resolves "auto")."""
    name = str(text).strip()
    if name == "auto":
        return name
    import torch  # here, not at the top: run_pipeline.py --check imports this module without torch

    expected = "auto, cpu, cuda or cuda:N"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise _fail(expected, text) from None
    if dev.type == "cpu" and dev.index in (None, 0):
        return name
    if dev.type != "cuda":
        raise _fail(expected, text)
    if not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{shown(text)}: CUDA is not available on this machine; use cpu or auto")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{shown(text)}: this machine has {torch.cuda.device_count()} CUDA "
                                         f"device(s), numbered from 0")
    return name


def check_fields(cfg) -> None:
    """Refuse a config dataclass whose fields do not hold their declared types (`int`: an integer, not a
    bool; `float`: a finite number; `str`; `tuple`: a tuple or list of integers) with ValueError: a config
    read back from a file (a .pth, a SAELens cfg.json) is checked before anything is built from it."""
    for f in dataclasses.fields(cfg):
        kind, value = f.type, getattr(cfg, f.name)
        if kind in (int, "int"):
            ok = isinstance(value, int) and not isinstance(value, bool)
            expected = "an integer"
        elif kind in (float, "float"):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            expected = "a finite number"
        elif kind in (str, "str"):
            ok, expected = isinstance(value, str), "a string"
        elif kind in (tuple, "tuple"):
            ok = isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            expected = "a list of integers"
        else:
            continue
        if not ok:
            raise ValueError(f"{f.name} = {shown(value)}: expected {expected}")
