"""Broken, foreign and hostile artifacts (issue 6, part 2).

Every `.pth`/`.pt` a stage reads (MLP, activations, SAE, the two training checkpoints) is damaged
in each way below and handed to every stage that reads it. Contract: exit code 2 with one line
on stderr naming the file and what to re-run, no traceback, no file of the run changed, and a
file that would run code when unpickled is refused WITHOUT running it (its payload would create
a marker file; a control test proves the payload is live under a plain `torch.load`).
"""
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import feature_probe
import feature_reports
import harvest_activations
import train_mlp
import train_sae
from common.cli import run_main
from common.paths import RunPaths
from mlp.mlp_definition import MLPConfig, PointerMLP, save_mlp

from tests.conftest import ROOT
from tests.helpers import TINY_SAE_FLAGS

SAE_FLAGS = [*TINY_SAE_FLAGS, "--checkpoint-every", "2"]
MLP_FLAGS = ["--d-mlp", "32", "--d-hidden", "64", "--epochs", "5", "--batch-size", "128"]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sae_run(tiny_run, tmp_path_factory) -> RunPaths:
    """The tiny run plus a tiny SAE and both training checkpoints (READ-ONLY; copy it)."""
    run = RunPaths(tmp_path_factory.mktemp("bad_artifacts") / "run")
    shutil.copytree(tiny_run.root, run.root)
    train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), "--quiet"] + SAE_FLAGS))
    # a resumable checkpoint of each trainer (normally deleted when a run ends)
    ck = {"model": {}, "opt": {}, "sched": {}, "gen": torch.Generator().get_state(), "epoch": 1, "best": {},
          "train_config": {}}
    torch.save(ck, run.mlp_checkpoint)
    shutil.copy(run.sae, run.sae_checkpoint)
    return run


@pytest.fixture
def run_copy(sae_run, tmp_path) -> RunPaths:
    dst = RunPaths(tmp_path / "run")
    shutil.copytree(sae_run.root, dst.root)
    return dst


# ------------------------------------------------------------------ damage
class RunsCode:
    """Unpickling this calls exec(), which creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def _truncate(p, m):
    b = p.read_bytes()
    p.write_bytes(b[: len(b) // 2])


def _flip_byte(p, m):
    """Flip the middle byte of the largest tensor's data, which torch.load itself never checks."""
    import struct
    import zipfile
    with zipfile.ZipFile(p) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    b = bytearray(p.read_bytes())
    name_len, extra_len = struct.unpack("<HH", b[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    b[start + info.file_size // 2] ^= 0xFF
    p.write_bytes(bytes(b))


DAMAGE = {
    "truncated": _truncate,
    "empty": lambda p, m: p.write_bytes(b""),
    "random bytes": lambda p, m: p.write_bytes(os.urandom(4096)),
    "one flipped byte": _flip_byte,
    "code-running torch.save": lambda p, m: torch.save(RunsCode(m), p),
    "code-running plain pickle": lambda p, m: p.write_bytes(pickle.dumps(RunsCode(m))),
    "code-running object inside a checkpoint dict": lambda p, m: torch.save(
        {"config": {}, "state_dict": {"w": torch.zeros(2)}, "activations": RunsCode(m), "metrics": RunsCode(m)}, p),
    "a list, not a dict": lambda p, m: torch.save([torch.zeros(3)], p),
}

# (artifact, stage module, extra flags, what the message must tell the user to re-run)
READERS = [
    ("mlp", train_mlp, lambda r: ["--evaluate", str(r.test_xlsx)], "train_mlp.py"),
    ("mlp", harvest_activations, lambda r: [], "train_mlp.py"),
    ("mlp", train_sae, lambda r: SAE_FLAGS, "train_mlp.py"),
    ("mlp", feature_probe, lambda r: ["--n-inputs", "1000"], "train_mlp.py"),
    ("activations", train_sae, lambda r: SAE_FLAGS, "harvest_activations.py"),
    ("sae", feature_probe, lambda r: ["--n-inputs", "1000"], "train_sae.py"),
    ("sae", feature_reports, lambda r: [], "train_sae.py"),
    ("mlp_checkpoint", train_mlp, lambda r: ["--resume"] + MLP_FLAGS, "without --resume"),
    ("sae_checkpoint", train_sae, lambda r: ["--resume"] + SAE_FLAGS, "delete it"),
]


def refuse(module, run: RunPaths, argv, capsys) -> str:
    """Run a stage in-process through its error boundary; assert exit 2 + one stderr line; return it."""
    with pytest.raises(SystemExit) as e:
        run_main(module.main, module.parse_args(["--run-dir", str(run.root), "--quiet"] + argv))
    out = capsys.readouterr()
    assert e.value.code == 2, out.err
    assert out.err.startswith("error: ") and out.err.count("\n") == 1, out.err
    return out.err


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
@pytest.mark.parametrize("artifact,module,flags,remedy", READERS,
                         ids=[f"{a}->{m.__name__}" for a, m, _, _ in READERS])
def test_damaged_artifact_is_refused_with_file_and_remedy(run_copy, tmp_path, capsys, damage, artifact, module, flags, remedy):
    marker = tmp_path / "CODE_RAN"
    path = getattr(run_copy, artifact)
    DAMAGE[damage](path, marker)
    before = snapshot(run_copy.root)
    err = refuse(module, run_copy, flags(run_copy), capsys)
    assert str(path) in err and remedy in err, err
    if damage.startswith("code-running"):
        assert "could run code" in err or "not written by torch.save" in err, err
    if damage == "one flipped byte":
        assert "checksum mismatch" in err, err
    assert not marker.exists(), "unpickling the hostile file ran its code"
    assert snapshot(run_copy.root) == before


def test_the_hostile_payload_is_live(tmp_path):
    """Control: the same files DO run code under a plain (unsafe) load, so the test above can fail."""
    for i, how in enumerate(("code-running torch.save", "code-running plain pickle")):
        marker, path = tmp_path / f"ran{i}", tmp_path / f"evil{i}.pth"
        DAMAGE[how](path, marker)
        try:
            torch.load(path, weights_only=False)
        except Exception:
            pass
        assert marker.read_text() == "code ran"


# ------------------------------------------------------------------ foreign: wrong kind, size or contents
def _mlp_of_other_size(run, src):
    save_mlp(PointerMLP(MLPConfig(d_mlp=16, d_hidden=48)), run.mlp)


def _edit(path, fn):
    obj = torch.load(path, weights_only=True)
    new = fn(obj)
    torch.save(obj if new is None else new, path)


def _set(d, key, value):
    d[key] = value


def _drop(d, key):
    del d[key]


FOREIGN = [
    # (name, change to the run, stage, flags, words the message must hold)
    ("MLP retrained at another size: SAE d_in != MLP d_hidden", _mlp_of_other_size, feature_probe, ["--n-inputs", "1000"],
     ["sae_model.pth", "SAE reads 64-d", "48-d", "train_sae.py"]),
    ("same, for the reports", _mlp_of_other_size, feature_reports, [], ["SAE reads 64-d", "48-d", "train_sae.py"]),
    ("same, for SAE training: activations from another MLP", _mlp_of_other_size, train_sae, SAE_FLAGS,
     ["mlp_activations.pt", "64-d", "48-d", "harvest_activations.py"]),
    ("SAE file where the MLP belongs", lambda r, s: shutil.copy(s.sae, r.mlp), harvest_activations, [],
     ["perfect_mlp.pth", "not an MLP checkpoint", "train_mlp.py"]),
    ("MLP file where the SAE belongs", lambda r, s: shutil.copy(s.mlp, r.sae), feature_probe, ["--n-inputs", "1000"],
     ["sae_model.pth", "not an SAE checkpoint", "train_sae.py"]),
    ("activations file where the MLP belongs", lambda r, s: shutil.copy(s.activations, r.mlp), train_mlp,
     ["--evaluate", "TEST"], ["perfect_mlp.pth", "missing config", "train_mlp.py"]),
    ("bare state_dict without config", lambda r, s: _edit(r.mlp, lambda c: c["state_dict"]), harvest_activations, [],
     ["missing config", "train_mlp.py"]),
    ("MLP config that disagrees with its weights", lambda r, s: _edit(r.mlp, lambda c: _set(c["config"], "d_hidden", 512)),
     harvest_activations, [], ["not an MLP checkpoint of this project", "train_mlp.py"]),
    ("SAE of an unknown architecture", lambda r, s: _edit(r.sae, lambda c: _set(c["config"], "architecture", "transcoder")),
     feature_probe, ["--n-inputs", "1000"], ["transcoder", "train_sae.py"]),
    ("activations without inputs", lambda r, s: _edit(r.activations, lambda d: _drop(d, "inputs")), train_sae, SAE_FLAGS,
     ["missing inputs", "harvest_activations.py"]),
    ("activations as a bare tensor", lambda r, s: _edit(r.activations, lambda d: d["activations"]), train_sae, SAE_FLAGS,
     ["expected a dict, got Tensor", "harvest_activations.py"]),
    ("inputs of another length", lambda r, s: _edit(r.activations, lambda d: _set(d, "inputs", d["inputs"][:10])), train_sae,
     SAE_FLAGS, ["inputs [N, 10]", "harvest_activations.py"]),
    ("targets of another length", lambda r, s: _edit(r.activations, lambda d: _set(d, "targets", d["targets"][:5])), train_sae,
     SAE_FLAGS, ["targets [N]", "harvest_activations.py"]),
    ("integer activations", lambda r, s: _edit(r.activations, lambda d: _set(d, "activations", d["activations"].long())),
     train_sae, SAE_FLAGS, ["floats", "harvest_activations.py"]),
    ("NaN in the activations", lambda r, s: _edit(r.activations, lambda d: d["activations"].__setitem__((3, 5), float("nan"))),
     train_sae, SAE_FLAGS, ["NaN", "harvest_activations.py"]),
    ("final MLP file given as the training checkpoint", lambda r, s: shutil.copy(s.mlp, r.mlp_checkpoint), train_mlp,
     ["--resume"] + MLP_FLAGS, ["checkpoint.pth", "without --resume"]),
    ("final SAE file given as the training checkpoint", lambda r, s: shutil.copy(s.sae, r.sae_checkpoint), train_sae,
     ["--resume"] + SAE_FLAGS, ["checkpoint.pth", "missing optimizer", "delete it"]),
]


@pytest.mark.parametrize("change,module,flags,words", [c[1:] for c in FOREIGN], ids=[c[0] for c in FOREIGN])
def test_foreign_artifact_is_refused_saying_what_to_rerun(run_copy, sae_run, capsys, change, module, flags, words):
    change(run_copy, sae_run)
    flags = [str(run_copy.test_xlsx) if f == "TEST" else f for f in flags]
    before = snapshot(run_copy.root)
    err = refuse(module, run_copy, flags, capsys)
    assert all(w in err for w in words), err
    assert snapshot(run_copy.root) == before


# ------------------------------------------------------------------ the same through real processes
def test_real_processes_refuse_hostile_and_truncated_files(run_copy, tmp_path):
    marker = tmp_path / "CODE_RAN"
    DAMAGE["code-running torch.save"](run_copy.sae, marker)
    _truncate(run_copy.activations, None)
    before = snapshot(run_copy.root)
    cases = [(["feature_probe.py", "--n-inputs", "1000"], ["sae_model.pth", "could run code", "train_sae.py"]),
             (["train_sae.py"] + SAE_FLAGS, ["mlp_activations.pt", "truncated", "harvest_activations.py"])]
    procs = [subprocess.Popen([sys.executable, *argv, "--run-dir", str(run_copy.root), "--quiet"], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for argv, _ in cases]
    for p, (argv, words) in zip(procs, cases):
        out, err = p.communicate(timeout=180)
        assert p.returncode == 2, (argv, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert all(w in err for w in words), err
    assert not marker.exists()
    assert snapshot(run_copy.root) == before
