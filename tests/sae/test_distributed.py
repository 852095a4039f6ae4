"""SAE training under torchrun: 2 local CPU processes (gloo) on a tiny run.

Each launch costs a few seconds of interpreter start-up per process; the configs are tiny."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from common.paths import RunPaths
from sae.sae_definition import load_sae
from tests.conftest import ROOT
from tests.helpers import tiny_sae_flags

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="torchrun with gloo over TCP: POSIX here")

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
ENTRY = str(Path(__file__).with_name("torchrun_entry.py"))
# relu: its loss is a mean over the batch, so two half-batch gradients average to the full batch's
FLAGS = [*tiny_sae_flags("relu"), "--quiet", "--resample-at", "0.5", "--dead-window", "256"]


def _env(**extra):
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def _torchrun(run: Path, *flags, **env):
    return subprocess.run([*TORCHRUN, ENTRY, "--run-dir", str(run), *FLAGS, *flags], cwd=ROOT, env=_env(**env),
                          capture_output=True, text=True, timeout=180)


def _files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_processes_train_the_same_sae_as_one_and_only_rank_0_writes(copy_run, tmp_path):
    one = copy_run()
    import train_sae
    train_sae.main(train_sae.parse_args(["--run-dir", str(one.root), *FLAGS]))
    single = load_sae(one.sae)

    base = tmp_path / "ddp"
    for r in (0, 1):
        shutil.copytree(one.root, f"{base}-rank{r}", ignore=shutil.ignore_patterns("sae", "metrics.json"))
    before = _files(Path(f"{base}-rank1"))
    out = _torchrun(base, RANK_DIRS="1")
    assert out.returncode == 0, out.stderr[-2000:]
    ddp = load_sae(RunPaths(f"{base}-rank0").sae)
    for name, p in single.state_dict().items():
        torch.testing.assert_close(ddp.state_dict()[name], p, rtol=1e-4, atol=1e-5, msg=name)
    assert _files(Path(f"{base}-rank1")) == before, "rank 1 wrote into its run folder"
    m = RunPaths(f"{base}-rank0")
    assert m.sae_saelens_dir.is_dir() and m.metrics.exists()


def test_a_killed_rank_ends_the_job_writes_nothing_and_resume_completes(copy_run, tmp_path):
    run = copy_run()
    ref_dir = tmp_path / "ref"
    shutil.copytree(run.root, ref_dir)
    flags = ["--steps", "60", "--checkpoint-every", "5"]
    assert _torchrun(ref_dir, *flags).returncode == 0                 # the uninterrupted 2-process run
    reference = load_sae(RunPaths(ref_dir).sae)

    pids = tmp_path / "pids"
    pids.mkdir()
    metrics_before = run.metrics.read_bytes() if run.metrics.exists() else None
    proc = subprocess.Popen([*TORCHRUN, ENTRY, "--run-dir", str(run.root), *FLAGS, *flags], cwd=ROOT,
                            env=_env(PID_DIR=str(pids)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not run.sae_checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert run.sae_checkpoint.exists(), "no checkpoint appeared"
    os.kill(int((pids / "rank1.pid").read_text()), signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "rank: 1" in err or "rank 1" in err, err[-2000:]           # torchrun names the process that died
    assert "Traceback" not in "\n".join(line for line in err.splitlines() if line.startswith("error:"))
    assert not run.sae.exists(), "an SAE was written by a job that did not finish"
    assert (run.metrics.read_bytes() if run.metrics.exists() else None) == metrics_before

    out = _torchrun(run.root, *flags, "--resume")
    assert out.returncode == 0, out.stderr[-2000:]
    resumed = load_sae(run.sae)
    for name, p in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], p), name
