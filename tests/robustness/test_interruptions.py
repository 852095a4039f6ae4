"""Ctrl-C and kill -9 at any point (issue 6, part 4).

1. Every writer of an artifact is killed (SIGKILL, no clean-up) in the middle of writing, in a
   forked child: the artifact that was there is byte-for-byte intact and loads.
2. Real stage processes are killed while they run, each at a seeded random moment after a point
   that shows it is mid-work (its first training checkpoint, or its first temp file, i.e. during
   a write): every artifact of the run still loads (the old one, or a complete new one), and
   `train_mlp.py --resume` / `train_sae.py --resume` then finish with exactly the weights and
   metrics of an uninterrupted run (wall-clock fields `*_seconds` excepted).
3. Ctrl-C (SIGINT) gives exit code 130, one line on stderr, no traceback.

The killed processes run side by side (their start-up dominates) with OMP/MKL threads pinned to
the test process's 2, so the resumed numbers can match bit for bit.
"""
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import harvest_activations
import train_mlp
import train_sae
from common import io as cio
from common.io import PipelineError, read_metrics, safe_torch_load
from common.paths import RunPaths
from dataset.task import sample_inputs, target
from mlp.activations import load_activations
from dataset.data_loader import load_excel, write_excel
from mlp.mlp_definition import MLPConfig, PointerMLP, load_mlp, save_mlp
from sae.sae_definition import load_sae

from tests.conftest import ROOT
from tests.helpers import TINY_SAE_FLAGS

if sys.platform == "win32":  # fork and SIGKILL are POSIX; the writers are the same code on Windows
    pytest.skip("needs os.fork and SIGKILL", allow_module_level=True)
RNG = random.Random(6)  # the kill moments: random, and the same on every run of the suite
MLP_FLAGS = ["--d-mlp", "32", "--d-hidden", "64", "--epochs", "16", "--batch-size", "600", "--checkpoint-every", "2"]
SAE_FLAGS = [*TINY_SAE_FLAGS, "--checkpoint-every", "4", "--resample-at", "0.5"]  # resume across a resampling
WALL_CLOCK = "seconds"  # metrics keys ending in this are timings, excluded from equality (documented in README)


def without_wall_clock(d):
    if isinstance(d, dict):
        return {k: without_wall_clock(v) for k, v in d.items() if not k.endswith(WALL_CLOCK)}
    if isinstance(d, list):
        return [without_wall_clock(v) for v in d]
    return d


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def assert_run_loads(run: RunPaths) -> list:
    """Every artifact under the run loads with the loader a stage would use; returns the hidden
    temp files a killed write left behind (harmless; removed by the next write of that artifact)."""
    import openpyxl
    import pandas as pd

    leftovers = []
    for p in sorted(run.root.rglob("*")):
        if not p.is_file():
            continue
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            leftovers.append(p)
        elif p == run.mlp:
            load_mlp(p)
        elif p == run.sae:
            load_sae(p)
        elif p == run.activations:
            load_activations(p)
        elif p.suffix in (".pt", ".pth"):
            safe_torch_load(p, "artifact", "")
        elif p.parent == run.dataset_dir and p.suffix == ".xlsx":
            load_excel(p)
        elif p.suffix == ".xlsx":
            openpyxl.load_workbook(p, read_only=True).close()
        elif p.suffix == ".json":
            assert isinstance(json.loads(p.read_text()), dict), p
        elif p.suffix == ".html":
            assert p.read_text(encoding="utf-8").rstrip().endswith("</html>"), p
        elif p.suffix == ".csv":
            pd.read_csv(p)
        else:
            assert p.stat().st_size > 0, p
    return leftovers


# ------------------------------------------------------------------ 1. every writer, killed mid-write
def _die_half_way(data: bytes, dst) -> None:
    with open(dst, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_during(write, patch) -> None:
    """Run `write()` in a forked child whose low-level writer (`patch` installs it) writes half
    the bytes and then SIGKILLs the child, as kill -9 would at that instant."""
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            patch()
            write()
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "the write finished without the kill"


def _patch_torch_save():
    real = torch.save

    def half(obj, f, *a, **k):
        buf = io.BytesIO()
        real(obj, buf)
        _die_half_way(buf.getvalue(), f)
    cio.torch.save = half


def _patch_write_text():
    def half(self, text, *a, **k):
        _die_half_way(text.encode(), self)
    Path.write_text = half


def _patch_workbook_save():
    import openpyxl

    real = openpyxl.Workbook.save

    def half(self, f):
        buf = io.BytesIO()
        real(self, buf)
        _die_half_way(buf.getvalue(), f)
    openpyxl.Workbook.save = half


def _small_mlp(seed):
    torch.manual_seed(seed)
    return PointerMLP(MLPConfig(d_mlp=8, d_hidden=16))


WRITERS = [
    # (name, file, write the first version, write the killed second version, patch, load something comparable)
    ("save_mlp", "perfect_mlp.pth", lambda p: save_mlp(_small_mlp(0), p), lambda p: save_mlp(_small_mlp(1), p), _patch_torch_save,
     lambda p: load_mlp(p).state_dict()["fc1.weight"]),
    ("atomic_torch_save", "mlp_activations.pt", lambda p: cio.atomic_torch_save({"activations": torch.ones(50, 4)}, p),
     lambda p: cio.atomic_torch_save({"activations": torch.zeros(5000, 4)}, p), _patch_torch_save,
     lambda p: safe_torch_load(p, "x", "")["activations"]),
    ("update_metrics", "metrics.json", lambda p: cio.update_metrics(p, "mlp", {"mse": 0.5}),
     lambda p: cio.update_metrics(p, "sae", {"fvu": 0.1, "notes": "x" * 10000}), _patch_write_text,
     lambda p: read_metrics(p)),
    ("write_excel", "mlp_train.xlsx", lambda p: write_excel(p, sample_inputs(20, 1), target(sample_inputs(20, 1))),
     lambda p: write_excel(p, sample_inputs(500, 2), target(sample_inputs(500, 2))), _patch_workbook_save,
     lambda p: load_excel(p)[0]),
]


@pytest.mark.parametrize("name,first,second,patch,load", [w[1:] for w in WRITERS], ids=[w[0] for w in WRITERS])
def test_a_write_killed_half_way_leaves_the_old_artifact(tmp_path, name, first, second, patch, load):
    path = tmp_path / name
    first(path)
    digest, value = sha(path), load(path)
    _kill_during(lambda: second(path), patch)
    assert sha(path) == digest
    again = load(path)
    assert (torch.equal(again, value) if torch.is_tensor(value) else again == value)
    temps = list(tmp_path.glob(f".{path.name}.*.tmp"))
    assert len(temps) == 1 and 0 < temps[0].stat().st_size  # the half-written temp, never the artifact
    # the next successful write cleans such leftovers up once they are stale
    os.utime(temps[0], (time.time() - 60,) * 2)
    first(path)
    assert not temps[0].exists()


# ------------------------------------------------------------------ 2-3. real stage processes
class Victim:
    """A stage subprocess and the moment to signal it: once `ready()` holds, after `delay` s."""

    def __init__(self, name, argv, run: RunPaths, ready, sig=signal.SIGKILL, delay=0.0):
        self.name, self.run, self.ready, self.sig, self.delay = name, run, ready, sig, delay
        env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, *argv, "--run-dir", str(run.root)], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.fire_at = None
        self.signalled_while_running = False


def run_victims(victims, timeout=240):
    t_end = time.time() + timeout
    pending = list(victims)
    while pending and time.time() < t_end:
        for v in list(pending):
            if v.proc.poll() is not None:
                pending.remove(v)
                continue
            if v.fire_at is None and v.ready(v.run):
                v.fire_at = time.time() + v.delay
            if v.fire_at is not None and time.time() >= v.fire_at:
                v.signalled_while_running = v.proc.poll() is None
                v.proc.send_signal(v.sig)
                pending.remove(v)
        time.sleep(0.001)
    for v in victims:
        try:
            v.out, v.err = v.proc.communicate(timeout=max(5, t_end - time.time()))
        except subprocess.TimeoutExpired:
            v.proc.kill()
            v.out, v.err = v.proc.communicate()
            pytest.fail(f"{v.name}: never reached its kill point ({v.err[-500:]})")


def temp_file_in(folder_of):
    """True once a hidden temp file (an atomic write in progress) shows up in the folder."""
    return lambda run: folder_of(run).exists() and any(True for _ in folder_of(run).glob(".*.tmp"))


def _copy(src: RunPaths, dst: Path, names) -> RunPaths:
    run = RunPaths(dst)
    run.root.mkdir(parents=True)
    for n in names:
        getattr(run, n).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(getattr(src, n), getattr(run, n))
        if n == "sae" and src.sae_saelens_dir.is_dir():   # an SAE is its .pth and SAELens folder, one group
            shutil.copytree(src.sae_saelens_dir, run.sae_saelens_dir)
    if src.metrics.exists():
        shutil.copy2(src.metrics, run.metrics)
    return run


DATA = ("train_xlsx", "val_xlsx", "test_xlsx")


@pytest.fixture(scope="module")
def base_run(tiny_run, tmp_path_factory) -> RunPaths:
    run = RunPaths(tmp_path_factory.mktemp("interrupt") / "base")
    shutil.copytree(tiny_run.root, run.root)
    train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), "--quiet", *TINY_SAE_FLAGS]))
    return run


def test_killed_and_interrupted_stages_leave_every_artifact_loadable_and_resume_exactly(base_run, tmp_path):
    runs = {name: _copy(base_run, tmp_path / name, DATA + ("mlp", "activations", "sae"))
            for name in ("mlp_kill", "mlp_sigint", "sae_kill", "harvest_kill")}
    before = {name: {p: sha(p) for p in run.root.rglob("*") if p.is_file()} for name, run in runs.items()}
    victims = [
        Victim("mlp_kill", ["train_mlp.py", *MLP_FLAGS, "--quiet"], runs["mlp_kill"],
               ready=lambda r: r.mlp_checkpoint.exists(), delay=RNG.uniform(0, 0.01)),
        Victim("mlp_sigint", ["train_mlp.py", *MLP_FLAGS, "--quiet"], runs["mlp_sigint"],
               ready=lambda r: r.mlp_checkpoint.exists(), sig=signal.SIGINT, delay=RNG.uniform(0, 0.01)),
        Victim("sae_kill", ["train_sae.py", *SAE_FLAGS, "--quiet"], runs["sae_kill"],
               ready=lambda r: r.sae_checkpoint.exists(), delay=RNG.uniform(0, 0.01)),
        # harvest: 150k fresh inputs make a ~50 MB file, so the kill lands while it is being written
        Victim("harvest_kill", ["harvest_activations.py", "--n-samples", "150000", "--quiet"], runs["harvest_kill"],
               ready=temp_file_in(lambda r: r.root), delay=RNG.uniform(0, 0.005)),
    ]
    run_victims(victims)
    for v in victims:
        assert v.signalled_while_running, f"{v.name} finished before it could be interrupted: {v.err[-300:]}"
        assert "Traceback" not in v.err, v.err
        if v.sig == signal.SIGKILL:
            assert v.proc.returncode == -signal.SIGKILL, (v.name, v.proc.returncode, v.err[-300:])
        else:  # Ctrl-C: the error boundary's one line and exit code 130
            assert v.proc.returncode == 130, (v.name, v.proc.returncode, v.err)
            assert v.err.count("\n") == 1 and v.err.startswith("interrupted"), v.err
        assert_run_loads(v.run)
        # nothing the stage does not write was touched; what it writes is the old file or a complete new one
        for p, digest in before[v.name].items():
            assert p.exists(), p
    for name in ("mlp_kill", "mlp_sigint", "sae_kill"):  # these had not reached their final write
        for p, digest in before[name].items():
            assert sha(p) == digest, (name, p)
    assert runs["mlp_kill"].mlp_checkpoint.exists() and runs["sae_kill"].sae_checkpoint.exists()
    acts = runs["harvest_kill"].activations
    assert sha(acts) == before["harvest_kill"][acts] or len(load_activations(acts)["inputs"]) == 150000

    # --resume after kill -9 (and after Ctrl-C) ends exactly where an uninterrupted run ends
    ref = _copy(base_run, tmp_path / "mlp_ref", DATA)
    ref_metrics = train_mlp.main(train_mlp.parse_args(["--run-dir", str(ref.root), "--quiet", *MLP_FLAGS]))
    for name in ("mlp_kill",):  # (after Ctrl-C the checkpoint is the same kind of file; checked loadable above)
        run = runs[name]
        resumed = train_mlp.main(train_mlp.parse_args(["--run-dir", str(run.root), "--quiet", "--resume", *MLP_FLAGS]))
        assert without_wall_clock(resumed) == without_wall_clock(ref_metrics), name
        a, b = load_mlp(run.mlp).state_dict(), load_mlp(ref.mlp).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
        assert not run.mlp_checkpoint.exists()
    ref = _copy(base_run, tmp_path / "sae_ref", DATA + ("mlp", "activations"))
    ref_metrics = train_sae.main(train_sae.parse_args(["--run-dir", str(ref.root), "--quiet", *SAE_FLAGS]))
    run = runs["sae_kill"]
    resumed = train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), "--quiet", "--resume", *SAE_FLAGS]))
    drop = ("train_config",)  # holds nothing run-specific but is compared via the weights anyway
    assert without_wall_clock({k: v for k, v in resumed.items() if k not in drop}) == \
        without_wall_clock({k: v for k, v in ref_metrics.items() if k not in drop})
    a, b = load_sae(run.sae).state_dict(), load_sae(ref.sae).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    """mkstemp makes its temp file 0600; the artifact renamed from it must be readable as any file
    written under the user's umask would be (e.g. by a colleague opening the reports)."""
    mask = os.umask(0)
    os.umask(mask)
    cio.atomic_write_text(tmp_path / "metrics.json", "{}")
    cio.atomic_torch_save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    for p in (tmp_path / "metrics.json", tmp_path / "w.pt"):
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask
