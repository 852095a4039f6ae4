"""Artifact I/O: atomic writes, safe loads, and the run's `metrics.json`.

Every artifact is written to a temporary file in the same folder and renamed into place, so an
interrupted stage (Ctrl-C, kill -9) leaves the previous artifact intact. Weights are loaded with
`torch.load(..., weights_only=True)`: a file that would run code when unpickled is refused.
"""
import errno
import glob
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
import zipfile
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable

import torch

from common.paths import PRODUCERS
from common.validate import shown


class PipelineError(Exception):
    """A problem the user can fix (bad input, missing artifact); stage scripts print it as one
    line on stderr and exit with code 2, without a traceback."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def write_problem(e: BaseException, path: Path, doing: str = "writing") -> PipelineError:
    """A failed write of `path` (OSError, or torch.save's RuntimeError) as one line naming the path,
    the cause and what to do (`doing`: "writing", or "accessing" where it may have been a read)."""
    path = _artifact_of(Path(path))
    verb = {"writing": "write", "accessing": "access"}.get(doing, doing)
    code = getattr(e, "errno", None)
    where = getattr(e, "filename", None) or path
    where = _artifact_of(Path(where))
    if code in (errno.ENOSPC, errno.EDQUOT) or (code is None and _free_mb(path) < 1):
        quota = " (disk quota exceeded)" if code == errno.EDQUOT else ""
        return PipelineError(f"no space left on device{quota} while {doing} {path} ({_free_mb(path):,.0f} MB free "
                             f"there): free some space and re-run")
    if code == errno.EFBIG:
        return PipelineError(f"file too large while {doing} {path} (the file system's or `ulimit -f`'s limit); "
                             f"raise the limit or write the run elsewhere (--run-dir)")
    if code == errno.EROFS:
        return PipelineError(f"read-only file system while {doing} {path}; use a writable --run-dir")
    if code in (errno.EACCES, errno.EPERM):
        return PipelineError(f"permission denied while {doing} {path}{'' if where == path else f' ({where})'}; make it readable and writable "
                             f"(chmod, or chattr -i for an immutable file) or use another --run-dir")
    if code in (errno.ENOTDIR, errno.EEXIST):
        return PipelineError(f"cannot {verb} {path}: {where} or a folder above it is a file, not a folder; "
                             f"move it away or use another --run-dir")
    if code == errno.EISDIR:
        return PipelineError(f"cannot {verb} {path}: {where} is a folder; move it away")
    if code is None:  # torch.save's own error: errno is lost ("unexpected pos", "file write failed")
        return PipelineError(f"could not {verb} {path} (torch.save failed: {' '.join(str(e).split())[:80]}; "
                             f"{_free_mb(path):,.0f} MB free there); check the disk and re-run")
    return PipelineError(f"could not {verb} {path}: {os.strerror(code)}; check the folder and re-run")


_TEMP_NAME = re.compile(r"^\.(.+)\.[^.]+\.tmp(\.old)?$")


def _artifact_of(path: Path) -> Path:
    """The artifact a temporary file of `atomic_group` stands for (`.NAME.XXXX.tmp` -> NAME), however
    deeply nested (a writer that is itself atomic, given a temp): the user knows the artifact's name."""
    while m := _TEMP_NAME.match(path.name):
        path = path.with_name(m.group(1))
    return path


def _free_mb(path: Path) -> float:
    for folder in (Path(path).parent, *Path(path).parents):
        try:
            return shutil.disk_usage(folder).free / 2**20
        except OSError:
            continue
    return float("nan")


def _is_write_failure(e: BaseException) -> bool:
    """torch.save reports a failed write as a RuntimeError ("unexpected pos" when the disk is full,
    "file write failed", "PytorchStreamWriter failed writing file ...")."""
    if isinstance(e, OSError):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and any(s in text for s in ("unexpected pos", "file write failed",
                                                                    "PytorchStreamWriter failed"))


@contextmanager
def atomic_group(paths, lock: Path | None = None, before_commit: Callable[[list], None] | None = None):
    """All-or-nothing write of several files: yields one temporary path beside each of `paths`; when
    the block succeeds every temp is renamed over its path, else every temp is deleted and every old
    file is left as it was. A rename that fails half-way (an immutable file, a vanished folder) puts
    the files already renamed back from hard-link backups. A failed write (disk full, read-only,
    permission, a path that is a file) becomes a one-line PipelineError naming the path. With `lock`,
    the commit (`before_commit(temps)`, then the renames) runs holding that file's lock (`locked`)."""
    paths = [Path(p) for p in paths]
    started = time.time()
    temps: list[Path] = []
    backups: dict[Path, Path] = {}
    current = paths[0] if paths else Path(".")
    created: set[Path] = set()        # folders made for the group: removed again when it fails
    committed = False
    try:
        for path in paths:
            current = path
            created.update(d for d in (path.parent, *path.parent.parents) if not d.exists())
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            temps.append(Path(tmp))
        yield list(temps)
        with locked(lock) if lock is not None else nullcontext():
            if before_commit is not None:
                before_commit(list(temps))
            for path, tmp in zip(paths, temps):
                current = path
                os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; an artifact gets the usual umask-based mode
                if len(paths) > 1 and path.exists():
                    backups[path] = Path(f"{tmp}.old")
                    os.link(path, backups[path])   # no copy: a second name for the old file
            done = []
            try:
                for path, tmp in zip(paths, temps):
                    current = path
                    os.replace(tmp, path)
                    done.append(path)
            except OSError:
                for path in done:  # undo: the group is all or nothing
                    if path in backups:
                        os.replace(backups.pop(path), path)
                    else:
                        path.unlink(missing_ok=True)
                raise
            committed = True
    except Exception as e:
        if _is_write_failure(e):
            named = {str(t): p for t, p in zip(temps, paths)}.get(str(getattr(e, "filename", "")), current)
            raise write_problem(e, named) from None
        raise
    finally:
        for leftover in [*temps, *backups.values()]:
            try:
                leftover.unlink(missing_ok=True)
            except OSError:
                pass
        for folder in [] if committed else sorted(created, key=lambda d: len(d.parts), reverse=True):
            try:
                folder.rmdir()    # only when empty: another writer may have put something there since
            except OSError:
                pass
    for path in paths:
        _remove_stale_temps(path, before=started - STALE_TEMP_SECONDS)


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success rename it over `path`, else delete it."""
    with atomic_group([path]) as (tmp,):
        yield tmp


STALE_TEMP_SECONDS = 5.0


def _remove_stale_temps(path: Path, before: float) -> None:
    """A write killed with kill -9 (no `finally`) leaves its hidden `.NAME.XXXX.tmp` behind, as
    large as the artifact; the next successful write of NAME deletes those older than its start
    (a temp touched since might be another live writer's)."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp*"):
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
            flag = {"train_sae.py": "--name", "label_features.py": "--sae"}.get(stage)
            which = f" {flag} {paths.sae_name}" if flag and not getattr(paths, "is_default_sae", True) else ""
            raise PipelineError(f"{path}: {what}not found; run {stage} --run-dir {paths.root}{which} first")


def require_keys(obj: Any, keys, path: Path, what: str, remedy: str) -> None:
    if not isinstance(obj, dict):
        raise PipelineError(f"{path}: not {_a(what)} (expected a dict, got {type(obj).__name__}); {remedy}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise PipelineError(f"{path}: not {_a(what)} (missing {', '.join(missing)}); {remedy}")


_WARNED: set = set()   # (path, problem) pairs already warned about by this process


def read_json(path: Path) -> tuple[Any, str | None]:
    """(the JSON value in the file at `path`, None), or (None, what is wrong with it: "not valid JSON
    (JSONDecodeError)", "JSON nested too deeply to read"): the one reader of the project's and other
    libraries' JSON files, so that none of them can raise on a damaged or hostile file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")), None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, f"not valid JSON ({type(e).__name__})"
    except RecursionError:          # [[[[...]]]] nested past Python's stack: no config is that deep
        return None, "JSON nested too deeply to read"


def _metrics_problem(path: Path) -> tuple[dict, str | None]:
    """(the sections of metrics.json that are JSON objects, what was wrong with the rest or None)."""
    data, problem = read_json(path)
    if problem:
        return {}, problem
    if not isinstance(data, dict):
        return {}, f"a JSON {type(data).__name__}, not an object of sections"
    bad = [k for k, v in data.items() if not isinstance(v, dict)]
    kept = {k: v for k, v in data.items() if isinstance(v, dict)}
    return kept, (f"section(s) {shown(bad)} not JSON objects" if bad else None)


def read_metrics(path: Path) -> dict:
    """The run's metrics.json as {section: dict}. A damaged file is rebuilt section by section, never
    fatal: what cannot be read (invalid JSON, not an object, a section that is not an object) is left
    out with one warning line on stderr, and the next stage that writes a section sets the old file
    aside as metrics.json.damaged first."""
    return _read_metrics(Path(path))[0]


def _read_metrics(path: Path) -> tuple[dict, str | None]:
    if not path.exists():
        return {}, None
    data, problem = _metrics_problem(path)
    if problem and (str(path), problem) not in _WARNED:
        _WARNED.add((str(path), problem))
        print(f"warning: {path}: {problem}; left out (rebuilt section by section: the next stage that writes "
              f"its section sets the old file aside as {path.name}.damaged)", file=sys.stderr)
    return data, problem


def _finite(obj):
    """`obj` with every NaN or infinite float replaced by None (recursively through dicts, lists, tuples)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def json_text(obj, **kwargs) -> str:
    """JSON text of `obj` that every parser reads: NaN and infinities (Python's json writes them bare,
    which is not JSON) become null, and allow_nan=False guarantees none is left."""
    return json.dumps(_finite(obj), allow_nan=False, **kwargs)


@contextmanager
def locked(path: Path):
    """Hold an exclusive lock on `path`'s lock file (`.NAME.lock` beside it) while the block runs, so
    read-modify-write updates of one file by several processes do not lose each other's changes."""
    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a+b")
    except OSError as e:
        raise write_problem(e, path) from None
    with handle:
        _lock_file(handle)
        try:
            yield
        finally:
            _unlock_file(handle)


if sys.platform == "win32":
    import msvcrt

    def _lock_file(handle) -> None:
        while True:  # msvcrt's blocking mode gives up after 10 s: retry until the other writer is done
            try:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                return
            except OSError:
                time.sleep(0.05)

    def _unlock_file(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock_file(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)

    def _unlock_file(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def update_metrics(path: Path, section: str, values: dict) -> dict:
    """Merge `values` into `metrics.json` under `section` (replacing that section), atomically and under
    a lock: stages running at once on one run folder each keep their own section."""
    path = Path(path)
    sections = {section: values}
    with atomic_group_with_metrics([], path, sections):
        pass
    return sections


@contextmanager
def atomic_group_with_metrics(paths, metrics_path: Path, sections: dict):
    """`atomic_group` over `paths` and metrics.json together: yields one temporary path per path; the
    block writes them and fills `sections` ({section: values}), which are merged into metrics.json.
    Everything is renamed into place at once, or (on any failure) nothing is. The merge and the renames
    run under the metrics lock, so no other stage's section is lost."""
    def merge(temps):
        data, problem = _read_metrics(Path(metrics_path))
        if problem:   # keep what a person may still want from it
            shutil.copyfile(metrics_path, Path(metrics_path).with_name(f"{Path(metrics_path).name}.damaged"))
        data.update(sections)
        sections.clear()
        sections.update(data)      # the caller gets the merged file back
        temps[-1].write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    with atomic_group([*paths, metrics_path], lock=metrics_path, before_commit=merge) as temps:
        yield temps[:-1]


def require_finite(tensors: dict, path: Path, what: str, remedy: str) -> None:
    """Refuse a file whose floating-point tensors (a state dict) hold NaN or infinite values, naming the
    file and the first such tensor: a diverged or altered model must not be used downstream."""
    for name, t in tensors.items():
        if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise PipelineError(f"{path}: {what} tensor {shown(name)} holds NaN or infinite values; {remedy}")


def require_state_shapes(build, state, path: Path, what: str, remedy: str) -> None:
    """Refuse a state dict that is not exactly the tensors of the module `build()` makes (names, float
    type, shapes), before that module is built for real: here it is built on the meta device, which
    allocates nothing, so a small file whose config claims a huge model is refused from its config and
    shapes instead of after gigabytes were allocated. `what`: "MLP checkpoint", "SAE checkpoint"."""
    def refuse(detail: str) -> PipelineError:
        return PipelineError(f"{path}: not {_a(what)} of this project ({detail}); {remedy}")

    if not isinstance(state, dict):
        raise refuse(f"state_dict is {type(state).__name__}, expected a dict of tensors")
    with torch.device("meta"):
        expected = {name: tuple(t.shape) for name, t in build().state_dict().items()}
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected), key=str)
    if missing or extra:
        raise refuse("; ".join(s for s in (f"missing tensors {shown(missing)}" if missing else "",
                                           f"unexpected tensors {shown(extra)}" if extra else "") if s))
    for name, shape in expected.items():
        t = state[name]
        if not (torch.is_tensor(t) and t.is_floating_point() and tuple(t.shape) == shape):
            got = f"{t.dtype} {list(t.shape)}" if torch.is_tensor(t) else type(t).__name__
            raise refuse(f"tensor {shown(name)} is {got}, its config says float {list(shape)}")


def stored_metrics(ckpt) -> dict:
    """The "metrics" dict a model file stores ({} when there is none or it is not a dict)."""
    m = ckpt.get("metrics") if isinstance(ckpt, dict) else None
    return m if isinstance(m, dict) else {}
