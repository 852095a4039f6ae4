"""The pipeline's one definition (common/pipeline.py) and its runner (run_pipeline.py).

The runner is driven with the stages' tiny settings (tests/helpers.py) in place of the default
run's: the chain from a stage on, in one process and stage by stage in processes (the same
metrics.json but for the wall-clock fields), a failing stage (its one line, the FAILED line, exit 1,
nothing after it run), Ctrl-C (exit 130, no traceback) and the flags, which the system Python checks
before .venv exists (no third-party import). workflow.bat itself runs under wine in
tests/test_workflow_bat.py.
"""
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import replace

import pytest

import run_pipeline
from common import pipeline
from common.interrupt import INTERRUPTED
from common.io import read_metrics
from common.paths import RunPaths
from tests.conftest import ROOT
from tests.helpers import TINY, TINY_SAE_FLAGS, normalised_metrics, tiny_sae_flags

TINY_FLAGS = {   # each stage's flags in a tiny run (the default run's are in common/pipeline.py)
    "data": (f"--n-train={TINY['n_train']}", f"--n-val={TINY['n_val']}", f"--n-test={TINY['n_test']}"),
    "mlp": (f"--d-mlp={TINY['d_mlp']}", f"--d-hidden={TINY['d_hidden']}", f"--epochs={TINY['epochs']}"),
    "harvest": (),
    "sae": tuple(TINY_SAE_FLAGS),
    "paper": ("--name", "paper", *tiny_sae_flags("relu")),
    "labels": ("--n-inputs", "1000"),
    "probe": (),
    "reports": (),
}
# (flags, what the one error line names): refused by run_pipeline.py --check, workflow.sh and workflow.bat
BAD_FLAGS = [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--seed"], "--seed: expected one argument"),
    (["--seed", "x1"], "--seed: expected an integer 0..4,294,967,295, got 'x1'"),
    (["--seed", "4294967296"], "--seed: expected an integer 0..4,294,967,295"),
    (["--from", "nonsense"], "--from: expected one of: data mlp harvest sae paper labels probe reports, got 'nonsense'"),
    (["--from"], "--from: expected one argument"),
    (["--run-dir", ""], "--run-dir: expected a folder"),
]


@pytest.fixture
def tiny_stages(monkeypatch):
    """The runner's stages with tiny flags, only those named (each costs seconds)."""
    def use(*keys):
        stages = tuple(replace(s, flags=TINY_FLAGS[s.key] + ("--quiet",)) for s in pipeline.STAGES if s.key in keys)
        monkeypatch.setattr(run_pipeline, "STAGES", stages)
        monkeypatch.setattr(run_pipeline, "STAGE_KEYS", tuple(s.key for s in stages))
    return use


def copy_of(tiny_run, dst) -> RunPaths:
    shutil.copytree(tiny_run.root, dst)
    return RunPaths(dst)


def test_the_stage_list_is_the_one_the_shells_count_and_every_script_exists():
    assert pipeline.TOTAL_STEPS == pipeline.SETUP_STEPS + len(pipeline.STAGES) == 9
    assert re.search(r"^TOTAL=(\d+)\b", (ROOT / "workflow.sh").read_text(), re.M).group(1) == str(pipeline.TOTAL_STEPS)
    assert re.search(r'^set "TOTAL=(\d+)"', (ROOT / "workflow.bat").read_text(), re.M).group(1) == str(pipeline.TOTAL_STEPS)
    assert len(set(pipeline.STAGE_KEYS)) == len(pipeline.STAGES)
    for stage in pipeline.STAGES:
        assert (ROOT / stage.script).is_file(), stage
        # the stage's own parser takes the flags the pipeline gives it
        module = __import__(stage.module, fromlist=["parse_args"])
        args = module.parse_args(pipeline.stage_argv(stage, "runs/x", 7))
        assert args.run_dir == "runs/x" and args.seed == 7


def test_in_one_process_and_stage_by_stage_the_same_metrics(tiny_run, tmp_path, tiny_stages, capfd, monkeypatch):
    """--from sae: the earlier stages are skipped, the later ones run; the metrics of the chain run in
    this process equal those of each stage script in its own process (no state leaks between stages)."""
    tiny_stages("harvest", "sae", "labels")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")   # the stage processes on one thread, as this one (conftest)
    runs = {}
    for mode in ("one", "processes"):
        run = copy_of(tiny_run, tmp_path / mode)
        argv = ["--run-dir", str(run.root), "--from", "sae"] + (["--processes"] if mode == "processes" else [])
        assert run_pipeline.main(run_pipeline.parse_args(argv)) == 0
        runs[mode] = run
        out = capfd.readouterr().out
        assert out.startswith("[2/9] Harvesting activations... skipped (--from sae)\n[3/9] Training sparse autoencoder...\n")
        assert "[4/9] Labelling features of every SAE...\n" in out
        assert re.search(r"Stage times  sae \d+\.\d s  labels \d+\.\d s\n  Total time \d+ m \d+ s", out), out
    assert {"sae", "interpretability"} <= set(read_metrics(runs["one"].metrics))
    assert normalised_metrics(runs["one"], runs["one"].root) == normalised_metrics(runs["processes"], runs["processes"].root)


def test_a_failing_stage_stops_the_chain_with_its_line_and_exit_1(tiny_run, tmp_path, tiny_stages, capsys):
    tiny_stages(*pipeline.STAGE_KEYS)
    run = copy_of(tiny_run, tmp_path / "run")
    run.activations.unlink()
    before = sorted(p.relative_to(run.root) for p in run.root.rglob("*"))
    assert run_pipeline.main(run_pipeline.parse_args(["--run-dir", str(run.root), "--from", "sae"])) == 1
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert len(err) == 2 and err[0].startswith("error: ") and str(run.activations) in err[0], err
    assert "harvest_activations.py" in err[0]
    assert err[1] == "FAILED at stage [5/9] Training sparse autoencoder (fix the error above, then: ./workflow.sh --from sae)"
    assert "[6/9]" not in captured.out and "Total time" not in captured.out
    assert sorted(p.relative_to(run.root) for p in run.root.rglob("*")) == before


def test_ctrl_c_during_a_stage_is_one_line_exit_130(tmp_path):
    """The real runner, the default run's stages: Ctrl-C while stage 1 runs ends the chain there."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "run_pipeline.py", "--run-dir", str(run)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith("[2/9] Generating dataset...")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, err)
    assert err.splitlines()[0] == INTERRUPTED and "Traceback" not in err, err
    assert "[3/9]" not in out
    assert not any(p.suffix == ".xlsx" for p in run.rglob("*"))   # the three splits are written all or none


@pytest.mark.parametrize("flags,message", BAD_FLAGS, ids=[" ".join(f) or "empty" for f, _ in BAD_FLAGS])
def test_bad_flags_are_one_line_and_exit_2(flags, message):
    out = subprocess.run([sys.executable, "run_pipeline.py", "--check", *flags], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and out.stderr.startswith("error: "), out.stderr
    assert message in out.stderr, out.stderr


def test_check_and_setup_hash_import_no_package():
    """workflow.sh/.bat run these with the system Python, before .venv (and torch) exist."""
    for flag in ("--check", "--setup-hash"):
        out = subprocess.run([sys.executable, "-X", "importtime", "run_pipeline.py", flag, "--seed", "3"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        imported = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line}
        assert "common" in imported and not imported & {"torch", "numpy", "pandas", "tqdm"}, flag
    digest = out.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and digest == pipeline.setup_hash(ROOT)


@pytest.mark.skipif(shutil.which("bash") is None, reason="workflow.sh needs bash")
@pytest.mark.parametrize("flags,message", BAD_FLAGS[:5], ids=[" ".join(f) for f, _ in BAD_FLAGS[:5]])
def test_workflow_sh_refuses_bad_flags_before_its_set_up(flags, message, tmp_path):
    """From a copy of the project without .venv: the refusal comes before any set-up."""
    for name in ("workflow.sh", "run_pipeline.py", "common", "dataset"):   # what --check imports
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(ROOT / name, tmp_path / name)
    out = subprocess.run(["bash", "workflow.sh", *flags], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and message in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert out.stdout == "" and not (tmp_path / ".venv").exists()
