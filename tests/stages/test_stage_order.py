"""Running a stage before its inputs exist (issue 6, part 3).

Each stage, started on a run folder that lacks one of its inputs, exits with code 2 and one line
naming the missing file and the stage to run first (with the same --run-dir), and writes nothing.
The run folders are a complete tiny run with the later artifacts removed, the way a user gets
there (a fresh folder, a deleted file, a stage skipped).
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import feature_probe
import feature_reports
import harvest_activations
import label_features
import train_mlp
import train_sae
from common.cli import run_main
from common.paths import RunPaths

from tests.conftest import ROOT
from tests.helpers import TINY_SAE_FLAGS

DATA = ("train_xlsx", "val_xlsx", "test_xlsx")
LABELS = ("features_csv", "neurons_csv", "absorption_csv", "labels_cache")
ALL = DATA + ("mlp", "activations", "sae") + LABELS


@pytest.fixture(scope="module")
def full_run(tiny_run, tmp_path_factory) -> RunPaths:
    run = RunPaths(tmp_path_factory.mktemp("stage_order") / "run")
    shutil.copytree(tiny_run.root, run.root)
    train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), "--quiet"] + TINY_SAE_FLAGS))
    label_features.main(label_features.parse_args(["--run-dir", str(run.root), "--quiet", "--n-inputs", "1000"]))
    return run


def listing(folder: Path) -> dict:
    """Every path under `folder` (folders too) with its size and mtime: a stage that fails must not
    even create an empty folder."""
    return {str(p.relative_to(folder)): (p.is_dir(), p.stat().st_size if p.is_file() else 0, p.stat().st_mtime_ns)
            for p in folder.rglob("*")}


# (name, artifacts present, stage, flags, missing file (RunPaths attribute), stage it must say to run first)
CASES = [
    ("train_mlp on an empty folder", (), train_mlp, [], "train_xlsx", "dataset/data_generator.py"),
    ("train_mlp without the val split", ("train_xlsx", "test_xlsx"), train_mlp, [], "val_xlsx", "dataset/data_generator.py"),
    ("train_mlp --evaluate before any MLP", DATA, train_mlp, ["--evaluate", "TEST"], "mlp", "train_mlp.py"),
    ("harvest on an empty folder", (), harvest_activations, [], "mlp", "train_mlp.py"),
    ("harvest with an MLP but no data", ("mlp",), harvest_activations, [], "train_xlsx", "dataset/data_generator.py"),
    ("train_sae on an empty folder", (), train_sae, TINY_SAE_FLAGS, "activations", "harvest_activations.py"),
    ("train_sae with activations but no MLP", DATA + ("activations",), train_sae, TINY_SAE_FLAGS, "mlp", "train_mlp.py"),
    ("label_features on an empty folder", (), label_features, [], "mlp", "train_mlp.py"),
    ("label_features before the SAE", DATA + ("mlp", "activations"), label_features, [], "sae", "train_sae.py"),
    ("feature_probe on an empty folder", (), feature_probe, [], "mlp", "train_mlp.py"),
    ("feature_probe before the SAE", DATA + ("mlp", "activations"), feature_probe, [], "sae", "train_sae.py"),
    ("feature_probe before the labels", DATA + ("mlp", "activations", "sae"), feature_probe, [], "features_csv",
     "label_features.py"),
    ("feature_probe without labels.pt", DATA + ("mlp", "activations", "sae", "features_csv", "neurons_csv", "absorption_csv"),
     feature_probe,
     [], "labels_cache", "label_features.py"),
    ("feature_reports on an empty folder", (), feature_reports, [], "train_xlsx", "dataset/data_generator.py"),
    ("feature_reports before the SAE", DATA + ("mlp", "activations"), feature_reports, [], "sae", "train_sae.py"),
    ("feature_reports before the MLP", DATA, feature_reports, [], "mlp", "train_mlp.py"),
    ("feature_reports without the test split", ("train_xlsx", "val_xlsx", "mlp", "activations", "sae") + LABELS,
     feature_reports, [], "test_xlsx", "dataset/data_generator.py"),
    ("feature_reports before the labels", DATA + ("mlp", "activations", "sae"), feature_reports, [], "features_csv",
     "label_features.py"),
]


def _partial_run(full: RunPaths, dst: Path, keep) -> RunPaths:
    run = RunPaths(dst)
    run.root.mkdir(parents=True)
    for name in keep:
        src, out = getattr(full, name), getattr(run, name)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out)
        if name == "sae":   # an SAE is its .pth and its SAELens folder, written as one group
            shutil.copytree(full.sae_saelens_dir, run.sae_saelens_dir)
    return run


@pytest.mark.parametrize("keep,module,flags,missing,first", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_stage_before_its_input_says_which_stage_to_run_first(full_run, tmp_path, capsys, keep, module, flags, missing, first):
    run = _partial_run(full_run, tmp_path / "run", keep)
    flags = [str(full_run.test_xlsx) if f == "TEST" else f for f in flags]
    before = listing(run.root)
    with pytest.raises(SystemExit) as e:
        run_main(module.main, module.parse_args(["--run-dir", str(run.root), "--quiet"] + flags))
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert str(getattr(run, missing)) in err, err
    assert f"{first} --run-dir {run.root}" in err or (first == "train_mlp.py" and "re-run train_mlp.py" in err), err
    assert listing(run.root) == before


def test_harvest_needs_no_data_files_for_fresh_inputs(full_run, tmp_path):
    """Control for the table above: with --n-samples the Excel files are not an input."""
    run = _partial_run(full_run, tmp_path / "run", ("mlp",))
    stats = harvest_activations.main(harvest_activations.parse_args(
        ["--run-dir", str(run.root), "--quiet", "--n-samples", "50"]))
    assert stats["n"] == 50 and run.activations.exists()


def test_real_processes_on_an_empty_run_folder(tmp_path):
    """The three last stages as a user starts them, side by side (each costs a Python + torch start-up)."""
    run = RunPaths(tmp_path / "fresh")
    run.root.mkdir()
    cases = [("label_features.py", "train_mlp.py"), ("feature_probe.py", "train_mlp.py"),
             ("feature_reports.py", "dataset/data_generator.py")]
    procs = [subprocess.Popen([sys.executable, script, "--run-dir", str(run.root)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for script, _ in cases]
    for p, (script, first) in zip(procs, cases):
        out, err = p.communicate(timeout=180)
        assert p.returncode == 2, (script, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert f"run {first} --run-dir {run.root} first" in err, err
    assert list(run.root.iterdir()) == []

