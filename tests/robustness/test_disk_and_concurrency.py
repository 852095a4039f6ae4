"""Disk and permission faults are one line naming the path and the cause, with exit code 2 and the
artifacts unchanged; concurrent writers of one run folder lose nothing (metrics.json under a lock) and
leave each artifact complete (atomic rename)."""
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from common.cli import run_main
from common.io import PipelineError, atomic_torch_save, update_metrics
from dataset import data_generator

ROOT = Path(__file__).resolve().parents[2]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _mount(args, target) -> bool:
    return subprocess.run(["mount", *args, str(target)], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs (root only: skipped elsewhere)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not IS_ROOT or not _mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs"], disk):
        pytest.skip("mounting a small tmpfs needs root")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def _stage(*argv, preexec=None):
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          preexec_fn=preexec)


def _one_error_line(r) -> str:
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    return r.stderr


def test_torch_save_on_a_full_disk_keeps_the_old_artifact(small_disk):
    path = small_disk / "weights.pt"
    atomic_torch_save(torch.zeros(1000), path)
    before = path.read_bytes()
    with pytest.raises(PipelineError, match=r"no space left on device while writing .*weights.pt .*MB free"):
        atomic_torch_save(torch.zeros(1_000_000), path)   # 4 MB on a 1 MB disk
    assert path.read_bytes() == before
    assert os.listdir(small_disk) == ["weights.pt"]        # the temp is gone


def test_data_generator_on_a_full_disk_is_one_line_and_changes_nothing(small_disk):
    r = _stage("dataset/data_generator.py", "--run-dir", str(small_disk), "--n-train=200", "--n-val=20", "--n-test=20")
    assert r.returncode == 0, r.stderr
    before = {p: p.read_bytes() for p in (small_disk / "dataset").iterdir()}
    (small_disk / "filler").write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 16 * 1024))
    r = _stage("dataset/data_generator.py", "--run-dir", str(small_disk), "--n-train=5000", "--n-val=20", "--n-test=20")
    assert "no space left on device while writing" in _one_error_line(r)
    assert {p: p.read_bytes() for p in (small_disk / "dataset").iterdir()} == before


def test_file_size_limit_is_one_line(tmp_path):
    """RLIMIT_FSIZE makes writes fail with EFBIG (Python ignores SIGXFSZ): no root needed."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
    r = _stage("dataset/data_generator.py", "--run-dir", str(tmp_path), "--n-train=5000", preexec=limit)
    assert "file too large while writing" in _one_error_line(r)
    assert not list((tmp_path / "dataset").glob("*.xlsx"))


def test_run_folder_that_is_a_file(tmp_path):
    (tmp_path / "run").write_text("not a folder")
    r = _stage("dataset/data_generator.py", "--run-dir", str(tmp_path / "run"), "--n-train=20")
    assert "is a file, not a folder" in _one_error_line(r)
    assert (tmp_path / "run").read_text() == "not a folder"


@pytest.mark.skipif(not IS_ROOT or shutil.which("chattr") is None, reason="chattr +i needs root")
def test_immutable_artifact_is_one_line_and_unchanged(tmp_path):
    path = tmp_path / "metrics.json"
    update_metrics(path, "mlp", {"mse": 1.0})
    before = path.read_bytes()
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("this file system has no immutable flag")
    try:
        with pytest.raises(PipelineError, match=r"permission denied while writing .*metrics.json.*chattr -i"):
            update_metrics(path, "sae", {"mse": 2.0})
        assert path.read_bytes() == before
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_run_folder_is_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    update_metrics(run / "metrics.json", "mlp", {"mse": 1.0})
    before = (run / "metrics.json").read_bytes()
    if not IS_ROOT or not _mount(["--bind", "-o", "ro", str(run)], run):
        pytest.skip("a read-only bind mount needs root")
    try:
        with pytest.raises(PipelineError, match=r"read-only file system while writing .*metrics.json"):
            update_metrics(run / "metrics.json", "sae", {"mse": 2.0})
        with pytest.raises(PipelineError, match=r"read-only file system while writing .*mlp_train.xlsx"):
            data_generator.main(data_generator.parse_args(["--run-dir", str(run), "--quiet", "--n-train=20"]))
    finally:
        subprocess.run(["umount", str(run)], check=True)
    assert (run / "metrics.json").read_bytes() == before


def test_run_main_turns_a_stray_os_error_into_one_line(capsys, tmp_path):
    def main(_args):
        open(tmp_path / "missing" / "x.txt")
    with pytest.raises(SystemExit) as exc:
        run_main(main, None)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and err.startswith("error: could not access ")
    assert "missing/x.txt" in err


def test_a_metrics_writer_waits_while_another_is_between_its_read_and_its_write(tmp_path, monkeypatch):
    """The interleaving a lost update needs, forced: writer A is held after reading metrics.json, while
    it serialises the merged file (json.dumps); writer B must not get that far until A has written (then
    both sections survive). Without the lock, B reads the old file and gets there at once, and one
    section is lost."""
    path = tmp_path / "metrics.json"
    update_metrics(path, "old", {"v": 0})
    a_is_writing, release_a, b_is_writing = threading.Event(), threading.Event(), threading.Event()
    real_dumps = json.dumps

    def dumps(obj, *args, **kwargs):
        if threading.current_thread().name == "A":
            a_is_writing.set()
            release_a.wait(30)
        elif threading.current_thread().name == "B":
            b_is_writing.set()
        return real_dumps(obj, *args, **kwargs)
    monkeypatch.setattr(json, "dumps", dumps)
    a = threading.Thread(target=update_metrics, args=(path, "a", {"v": 1}), name="A")
    b = threading.Thread(target=update_metrics, args=(path, "b", {"v": 2}), name="B")
    a.start()
    assert a_is_writing.wait(30)
    b.start()
    b_got_through = b_is_writing.wait(2.0)                            # with the lock it cannot, however long
    release_a.set()
    a.join(30)
    b.join(30)
    monkeypatch.undo()
    assert not b_got_through, "writer B read metrics.json while writer A was between its read and its write"
    assert json.loads(path.read_text()) == {"old": {"v": 0}, "a": {"v": 1}, "b": {"v": 2}}


SAVER = """
import sys, torch
from common.io import atomic_torch_save
for _ in range(10):
    atomic_torch_save(torch.full((300_000,), float(sys.argv[2])), sys.argv[1])
"""


def test_two_writers_of_one_artifact_leave_one_complete_version(tmp_path):
    path = tmp_path / "activations.pt"
    procs = [subprocess.Popen([sys.executable, "-c", SAVER, str(path), str(v)], cwd=ROOT) for v in (1, 2)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    t = torch.load(path, weights_only=True)
    assert t.shape == (300_000,) and t.unique().tolist() in ([1.0], [2.0])
    assert os.listdir(tmp_path) == ["activations.pt"]
