"""What each artifact was made from: content digests recorded when written, checked when read.

Every artifact the pipeline derives carries one record (the dict key "provenance" of a `.pth` / `.pt`,
`metadata.provenance` of a SAELens cfg.json, a "provenance" entry of a metrics.json section):

    {"digest":    D,                                   # SHA-256 (128 bits) of the artifact's content
     "hash":      "sha256/128",                        # how D was computed
     "made_from": {ROLE: {"file": PATH, "digest": D'}},  # its inputs as they were when it was made
                                                       # (PATH relative to the run folder)
     "members":   {NAME: D''}}                          # files written in the same group, by byte digest

D is computed once, when the artifact is written (over its tensors and config, not its file bytes, so
it can live inside the file); a file that has no room for a record is named by its content, computed
where it is read (those files are small): an Excel split by its rows (`rows_digest`), a CSV by the
digest of its bytes. A stage that reads an artifact with its inputs compares each input's own digest
with what the artifact recorded and refuses a mismatch in one line naming both files and the stage
to re-run. File times decide nothing.
"""
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from common.io import PipelineError, safe_torch_load

KEY = "provenance"
HASH = "sha256/128"      # recorded with every digest: a record of another kind is refused as such, not as "altered"
DIGEST_HEX = 32          # SHA-256 cut to 128 bits: collisions are not a concern for a run's few dozen files
# SHA-256, not blake2b: with the SHA extensions of current x86 and ARM CPUs OpenSSL's SHA-256 hashes about
# twice as fast (measured here: 444 against 205 MB/s under load), and the 635 MB activations file is hashed
# once per harvest
SHOWN = 12               # hex characters shown on pages and in messages
_CHUNK = 1 << 22


def _hasher():
    return hashlib.sha256()


def _update(h, obj: Any) -> None:
    if torch.is_tensor(obj):
        t = obj.detach().cpu().contiguous()
        h.update(f"tensor {t.dtype} {tuple(t.shape)};".encode())
        if t.numel():
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    elif isinstance(obj, dict):
        h.update(f"dict {len(obj)};".encode())
        for k in sorted(obj, key=str):
            _update(h, str(k))
            _update(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"list {len(obj)};".encode())
        for v in obj:
            _update(h, v)
    else:   # str, int, float, bool, None
        text = json.dumps(obj) if isinstance(obj, (str, int, float, bool, type(None))) else repr(obj)
        h.update(f"{type(obj).__name__} {len(text)};{text}".encode())


def digest_of(obj: Any) -> str:
    """The content digest of tensors and plain values (nested dicts / lists), hex."""
    h = _hasher()
    _update(h, obj)
    return h.hexdigest()[:DIGEST_HEX]


def sha256_file(path: Path) -> str:
    """The full SHA-256 of a file's bytes, hex (what import_sae.py records of a folder it reads)."""
    h = _hasher()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """The digest of a file's bytes, hex (for the small files that cannot hold a record)."""
    return sha256_file(path)[:DIGEST_HEX]


def rows_digest(x: torch.Tensor, y: torch.Tensor) -> str:
    """The digest of a data file's rows (inputs [n, 10], targets [n]) as read: an Excel file's bytes also
    hold the time it was written, so two identical splits would differ by their bytes."""
    return digest_of({"inputs": x, "targets": y})


def short(digest: str | None) -> str:
    return (digest or "none")[:SHOWN]


def entry(path: Path, digest: str, root: Path | None = None) -> dict:
    """One `made_from` entry: the input's file and its digest. The file is named relative to the run
    folder `root` when inside it, so a copied run (cp -r) holds the same records."""
    path = Path(path)
    if root is not None:
        try:
            path = path.resolve().relative_to(Path(root).resolve())
        except ValueError:
            pass                     # a file from elsewhere (harvest --data): named as given
    return {"file": path.as_posix(), "digest": digest}


def make_record(digest: str, made_from: dict | None = None, members: dict | None = None) -> dict:
    out = {"digest": digest, "hash": HASH, "made_from": dict(made_from or {})}
    if members:
        out["members"] = dict(members)
    return out


def record_of(obj: Any, path: Path, what: str, remedy: str) -> dict:
    """The provenance record inside a loaded artifact dict; refused when absent or malformed (an artifact
    written by hand or before records were kept cannot be matched with its inputs)."""
    rec = obj.get(KEY) if isinstance(obj, dict) else None
    if not (isinstance(rec, dict) and isinstance(rec.get("digest"), str)
            and isinstance(rec.get("made_from", {}), dict)):
        raise PipelineError(f"{path}: {what} records no provenance (what it was made from is unknown: written by "
                            f"hand or by an older version); {remedy}")
    if rec.get("hash") != HASH:
        raise PipelineError(f"{path}: {what} records digests of another kind ({rec.get('hash')!r}, expected {HASH!r}: "
                            f"written by another version); {remedy}")
    return rec


def recorded(rec: dict, role: str) -> str | None:
    """The digest `rec` recorded for its input `role`, or None when it names no such input."""
    e = (rec.get("made_from") or {}).get(role)
    return e.get("digest") if isinstance(e, dict) else None


def require_made_from(path: Path, rec: dict, role: str, upstream: Path, upstream_digest: str, rerun: str) -> None:
    """Refuse the artifact at `path` unless its record says it was made from `upstream` as it is now
    (`upstream_digest`); `rerun` names the stage that re-makes `path` ("run X --run-dir R first")."""
    was = recorded(rec, role)
    if was != upstream_digest:
        said = f"recorded {role} {short(was)}" if was else f"records no {role}"
        raise PipelineError(f"{path}: not made from {upstream} ({said}, that file is {short(upstream_digest)}); "
                            f"{rerun}")


def members_problem(folder: Path, rec: dict) -> str | None:
    """Why the files written in one group with an artifact (its `members`, relative to `folder`) do not
    match it (missing, or other bytes), or None when all are there as written."""
    for name, digest in (rec.get("members") or {}).items():
        member = Path(folder) / name
        if not member.is_file():
            return f"{member} is missing"
        try:
            if file_digest(member) != digest:
                return f"{member} is not the file written with it"
        except OSError as e:
            return f"{member} cannot be read ({e.strerror})"
    return None


def footer(made_from: dict) -> str:
    """"made from ROLE FILE DIGEST12, ..." for a page's footer line."""
    return "made from " + ", ".join(f"{role} {Path(e['file']).name} {short(e['digest'])}"
                                    for role, e in made_from.items())


def weights_digest(config: dict, state_dict: dict) -> str:
    """The digest of a model file: its config and weights (what every later stage computes with)."""
    return digest_of({"config": config, "state_dict": state_dict})


def model_record(ckpt: dict, path: Path, what: str, remedy: str) -> dict:
    """The record of a loaded model file (`config`, `state_dict`, `provenance`), refused when absent or
    when the weights are not the ones it was written with."""
    rec = record_of(ckpt, path, what, remedy)
    if weights_digest(ckpt["config"], ckpt["state_dict"]) != rec["digest"]:
        raise PipelineError(f"{path}: {what} weights differ from those recorded when it was written "
                            f"(altered since); {remedy}")
    return rec


def whole_problem(path: Path, what: str) -> str | None:
    """Why the artifact at `path` (a torch file with a record) is not whole: unreadable, without a record,
    or a member of its group missing or other than written; None when it is whole."""
    try:
        rec = record_of(safe_torch_load(path, what, "re-make it"), path, what, "re-make it")
    except PipelineError as e:
        return str(e)
    return members_problem(Path(path).parent, rec)


def whole_sae_names(paths) -> list[str]:
    """The SAEs of the run (`RunPaths.sae_names`) whose group is whole: a half-written one is not listed."""
    return [name for name in paths.sae_names() if whole_problem(paths.for_sae(name).sae, "SAE checkpoint") is None]
