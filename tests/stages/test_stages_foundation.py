"""Smoke runs of stages 1-3 through their main(), and their command-line contracts."""
import json
import subprocess
import sys

import pytest
import torch

import harvest_activations
import train_mlp
from common.io import PipelineError, read_metrics
from tests.conftest import ROOT
from dataset.task import target
from mlp.activations import load_activations
from mlp.mlp_definition import load_mlp


def test_tiny_run_metrics(tiny_run):
    m = read_metrics(tiny_run.metrics)
    for split in ("train", "val", "test"):
        assert set(m["mlp"][split]) == {"mse", "exact_match", "n"}
    assert m["mlp"]["test"]["n"] == 100 and m["harvest"]["n"] == 600
    ckpt = torch.load(tiny_run.mlp, weights_only=True)
    assert ckpt["metrics"]["test"] == m["mlp"]["test"] and ckpt["config"]["d_hidden"] == 64
    assert not tiny_run.mlp_checkpoint.exists()  # removed once training finished


def test_activations_file(tiny_run):
    d = load_activations(tiny_run.activations)
    acts, x = d["activations"], d["inputs"]
    assert acts.shape == (600, 64) and acts.dtype == torch.float32 and x.shape == (600, 10)
    assert torch.equal(d["targets"], target(x))
    assert torch.allclose(acts, load_mlp(tiny_run.mlp).hidden(x), atol=1e-6)


def test_harvest_fresh_samples(copy_run):
    run = copy_run()
    stats = harvest_activations.main(harvest_activations.parse_args(
        ["--run-dir", str(run.root), "--n-samples", "1000", "--batch-size", "300", "--quiet"]))
    d = load_activations(run.activations)
    assert d["activations"].shape == (1000, 64) and stats["n"] == 1000
    assert d["source"].startswith("fresh:1000")
    assert torch.allclose(d["activations"], load_mlp(run.mlp).hidden(d["inputs"]), atol=1e-6)


def test_harvest_refuses_absurd_sizes(copy_run, capsys):
    run = copy_run()
    with pytest.raises(SystemExit) as e:   # the flag's type refuses it (common/validate.py)
        harvest_activations.main(harvest_activations.parse_args(["--run-dir", str(run.root), "--n-samples", "0"]))
    assert e.value.code == 2 and "--n-samples" in capsys.readouterr().err


def test_stage_before_its_input_says_what_to_run(tmp_path):
    with pytest.raises(PipelineError, match="data_generator.py"):
        train_mlp.main(train_mlp.parse_args(["--run-dir", str(tmp_path)]))
    with pytest.raises(PipelineError, match="train_mlp.py"):
        harvest_activations.main(harvest_activations.parse_args(["--run-dir", str(tmp_path)]))


def test_evaluate_json_cli(tiny_run):
    out = subprocess.run([sys.executable, "train_mlp.py", "--run-dir", str(tiny_run.root),
                          "--evaluate", str(tiny_run.test_xlsx), "--json"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    m = json.loads(out.stdout)
    assert set(m) == {"mse", "exact_match", "n"} and m["n"] == 100
    assert m == pytest.approx(read_metrics(tiny_run.metrics)["mlp"]["test"])


def test_cli_error_is_one_line_exit_2(tmp_path):
    out = subprocess.run([sys.executable, "harvest_activations.py", "--run-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert "train_mlp.py" in out.stderr


def test_generator_runs_as_script(tmp_path):
    subprocess.run([sys.executable, "dataset/data_generator.py", "--run-dir", str(tmp_path),
                    "--n-train", "5", "--n-val", "5", "--n-test", "5", "--quiet"], cwd=ROOT, check=True)
    assert (tmp_path / "dataset" / "mlp_val.xlsx").exists()


STAGE_SCRIPTS = ["dataset/data_generator.py", "train_mlp.py", "harvest_activations.py", "train_sae.py",
                 "import_sae.py", "feature_probe.py", "feature_reports.py", "feature_splitting.py", "run_pipeline.py"]


def test_ctrl_c_before_run_main_is_one_line_exit_130():
    """The handler the scripts install before their slow imports (torch: the first seconds)."""
    code = ("from common import interrupt; interrupt.install(); import os, signal, time; "
            "os.kill(os.getpid(), signal.SIGINT); time.sleep(30)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 130 and out.stderr.strip() == "interrupted: artifacts already on disk are unchanged"


@pytest.mark.parametrize("script", STAGE_SCRIPTS)
def test_every_stage_installs_it_before_its_slow_imports(script):
    import re
    src = (ROOT / script).read_text()
    heavy = re.search(r"^(import|from) (torch|numpy|pandas|common\.|dataset\.|mlp|sae|analysis|viz)", src, re.M)
    assert heavy and 0 <= src.index("interrupt.install()") < heavy.start()
