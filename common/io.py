"""Artifact I/O: atomic writes, safe loads, and the run's `metrics.json`.

Every artifact is written to a temporary file in the same folder and renamed into place, so an
interrupted stage (Ctrl-C, kill -9) leaves the previous artifact intact. Weights are loaded with
`torch.load(..., weights_only=True)`: a file that would run code when unpickled is refused.
"""
import glob
import json
import os
import re
import tempfile
import time
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from common.paths import PRODUCERS


class PipelineError(Exception):
    """A problem the user can fix (bad input, missing artifact); stage scripts print it as one
    line on stderr and exit with code 2, without a traceback."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success rename it over `path`, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; an artifact gets the usual umask-based mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _remove_stale_temps(path, before=started - STALE_TEMP_SECONDS)


STALE_TEMP_SECONDS = 5.0


def _remove_stale_temps(path: Path, before: float) -> None:
    """A write killed with kill -9 (no `finally`) leaves its hidden `.NAME.XXXX.tmp` behind, as
    large as the artifact; the next successful write of NAME deletes those older than its start
    (a temp touched since might be another live writer's)."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if stale.stat().st_mtime < before:
                stale.unlink()
        except OSError:
            pass


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _a(what: str) -> str:
    """'an activations file', 'an MLP checkpoint', 'a SAE checkpoint' (as spoken: "an M-L-P", "a sae")."""
    first = what.split()[0] if what.split() else what
    vowel = first[:1].lower() in "aeiou" or (first.isupper() and first[:1] in "FHLMNRSX" and first != "SAE")
    return f"an {what}" if vowel else f"a {what}"


def _zip_damage(path: Path) -> str | None:
    """torch.save writes a zip whose members carry CRC-32 checksums, but torch.load does not check
    them: a flipped byte in a weight would load silently. Check them here (one extra read)."""
    try:
        if not zipfile.is_zipfile(path):
            return None  # truncated/foreign/legacy files: torch.load below says what is wrong
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except Exception as e:  # BadZipFile, a member cut short, ...
        return f"a damaged zip ({type(e).__name__})"
    return f"checksum mismatch in {bad.split('/', 1)[-1]}" if bad else None


def safe_torch_load(path: Path, what: str, remedy: str, map_location="cpu") -> Any:
    """torch.load with weights_only=True; any failure becomes a one-line PipelineError that names
    the file, what it should be and which stage re-makes it (`remedy`). Checksums are verified
    first, and a file that holds anything but tensors and plain values (a pickle that could run
    code when loaded) is refused without running it."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: {what} not found; {remedy}")
    if path.is_dir():
        raise PipelineError(f"{path}: is a folder, expected {_a(what)}; {remedy}")
    damage = _zip_damage(path)
    if damage:
        raise PipelineError(f"{path}: damaged {what} ({damage}); {remedy}")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols: keep stderr to one line
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, code-running pickle, ...
        refused = _REFUSED_GLOBAL.search(str(e))
        if refused:
            reason = f"it holds a reference to {refused.group(1)!r}, which could run code when loaded: refused"
        else:
            reason = f"truncated, damaged or not written by torch.save: {type(e).__name__}"
        raise PipelineError(f"{path}: not a readable {what} ({reason}); {remedy}") from None


def require_inputs(paths, *names: str) -> None:
    """Refuse to start when an input artifact of the run is missing, naming the stage that makes it.
    `names` are RunPaths properties listed in `common.paths.PRODUCERS` ("mlp", "sae", "train_xlsx", ...)."""
    for name in names:
        path = getattr(paths, name)
        if not path.exists():
            what, stage = PRODUCERS[name]
            raise PipelineError(f"{path}: {what}not found; run {stage} --run-dir {paths.root} first")


def require_keys(obj: Any, keys, path: Path, what: str, remedy: str) -> None:
    if not isinstance(obj, dict):
        raise PipelineError(f"{path}: not {_a(what)} (expected a dict, got {type(obj).__name__}); {remedy}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise PipelineError(f"{path}: not {_a(what)} (missing {', '.join(missing)}); {remedy}")


def read_metrics(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}  # a damaged metrics file is rebuilt section by section, never fatal
    return data if isinstance(data, dict) else {}


def update_metrics(path: Path, section: str, values: dict) -> dict:
    """Merge `values` into `metrics.json` under `section` (replacing that section), atomically."""
    data = read_metrics(path)
    data[section] = values
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data
