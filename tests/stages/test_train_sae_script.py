"""Stage 4 script: smoke run into a copy of the tiny run, missing input, a tiny sweep."""
import csv
import json
import re

import pytest
import torch

import train_sae
from common.cli import run_main
from common.io import PipelineError
from sae.sae_definition import load_sae

from tests.helpers import TINY_SAE_FLAGS, tiny_sae_flags

TINY = ["--quiet", *TINY_SAE_FLAGS, "--checkpoint-every", "5"]   # checkpoints written, then removed


def test_smoke_run_writes_sae_and_metrics(copy_run):
    run = copy_run()
    m = train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), "--quiet", *tiny_sae_flags("relu"),
                                             "--checkpoint-every", "5"]))
    sae = load_sae(run.sae)
    assert sae.cfg.architecture == "relu" and sae.cfg.d_in == 64 and sae.cfg.d_sae == 32
    section = json.loads(run.metrics.read_text())["sae"]
    for key in ("fvu", "l0", "dead_share", "dense_share", "spliced_exact_match", "spliced_mse",
                "mlp_exact_match", "mlp_mse", "train_seconds", "resampled", "config"):
        assert key in section, key
    assert "density_log10" not in section and len(m["density_log10"]) == 32
    assert section["n_eval"] == 100 and 0 <= section["fvu"] and 0 <= section["dead_share"] <= 1
    assert not run.sae_checkpoint.exists()                 # removed once the SAE is written
    assert torch.load(run.sae, weights_only=True)["metrics"]["fvu"] == pytest.approx(section["fvu"])


def test_topk_run_and_summary_table(copy_run, capsys):
    run = copy_run()
    args = [a for a in TINY if a != "--quiet"]
    m = train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), "--architecture", "topk", "--k", "4", *args]))
    out = capsys.readouterr().out
    assert "FVU" in out and "spliced exact-match" in out and str(run.sae) in out
    assert m["l0"] <= 4 and load_sae(run.sae).cfg.k == 4


def test_missing_activations_says_which_stage_to_run(tmp_path, capsys):
    with pytest.raises(PipelineError, match="run harvest_activations.py"):
        train_sae.main(train_sae.parse_args(["--run-dir", str(tmp_path), "--quiet"]))
    with pytest.raises(SystemExit) as e:
        run_main(train_sae.main, train_sae.parse_args(["--run-dir", str(tmp_path), "--quiet"]))
    assert e.value.code == 2 and "harvest_activations.py" in capsys.readouterr().err


def test_bad_flags_are_refused(copy_run, capsys):
    run = copy_run()
    for bad in (["--k", "0"], ["--lr", "-1"], ["--lr", "nan"], ["--n-eval", "0"]):   # by argparse: exit 2, one line
        with pytest.raises(SystemExit) as e:
            train_sae.parse_args(["--run-dir", str(run.root), *TINY, *bad])
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count("\n") == 1 and bad[0] in err
    for bad in (["--architecture", "topk", "--k", "999"], ["--resample-at", "0.5,2"], ["--sweep", "colour=1,2"],
                ["--sweep", "l1_coeff"], ["--architecture", "relu", "--k", "4"]):          # by the stage
        with pytest.raises(PipelineError):
            train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), *TINY, *bad]))
    assert not run.sae.exists()


def test_tiny_sweep_writes_one_sae_per_value_a_table_and_an_offline_chart(copy_run):
    run = copy_run()
    out = train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), *TINY, "--architecture", "topk",
                                               "--sweep", "k=2,8"]))
    assert [r["k"] for r in out["rows"]] == [2, 8]
    assert [r["sae"] for r in out["rows"]] == ["sweep_k_2", "sweep_k_8"]
    assert load_sae(run.for_sae("sweep_k_2").sae).cfg.k == 2 and load_sae(run.for_sae("sweep_k_8").sae).cfg.k == 8
    assert json.loads(run.metrics.read_text())["sae:sweep_k_8"]["l0"] <= 8
    rows = list(csv.DictReader(run.sweep_csv.open()))
    assert [r["k"] for r in rows] == ["2", "8"] and float(rows[0]["l0"]) <= 2
    html = run.sweep_html.read_text()
    assert len(html) > 1_000_000 and not re.search(r"<script[^>]*src=", html)   # plotly.js inlined, no CDN
    assert json.loads(run.metrics.read_text())["sae_sweep"]["name"] == "k"
    assert not run.sae.exists()                             # a sweep leaves the default SAE alone
    assert run.sae_names() == ["sweep_k_2", "sweep_k_8"]


def test_a_bad_sweep_value_is_refused_before_any_training(copy_run):
    run = copy_run()
    with pytest.raises(PipelineError, match=r"--sweep 'd_sae=32,-1': d_sae: expected an integer 1..131,072"):
        train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), *TINY, "--sweep", "d_sae=32,-1"]))
    assert run.sae_names() == [] and not (run.root / "sae").exists()


def test_named_saes_live_side_by_side_and_leave_each_other_alone(copy_run):
    run = copy_run()
    train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), *TINY]))
    default_bytes, metrics = run.sae.read_bytes(), json.loads(run.metrics.read_text())
    train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), *tiny_sae_flags("relu"), "--quiet",
                                         "--name", "paper"]))
    paper = run.for_sae("paper")
    assert run.sae.read_bytes() == default_bytes                            # untouched
    after = json.loads(run.metrics.read_text())
    assert after["sae"] == metrics["sae"] and after["sae:paper"]["config"]["architecture"] == "relu"
    assert load_sae(paper.sae).cfg.architecture == "relu" and (paper.sae_saelens_dir / "cfg.json").exists()
    assert run.sae_names() == ["default", "paper"]
    for bad in ("9lives", "has space", "sweep", "default_but_very_" + "x" * 100, "../escape"):
        with pytest.raises(PipelineError, match="--name"):
            train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), *TINY, "--name", bad]))
    assert run.sae_names() == ["default", "paper"]
