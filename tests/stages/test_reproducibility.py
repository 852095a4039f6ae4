"""Same seed, same machine -> the same metrics.json, bit for bit (issue 6, part 5).

Two complete tiny runs (all seven stages, the probe's printout included) are made with the same
seed in different folders and their metrics.json compared as text, after two documented normalisations:

* wall-clock fields are dropped: every key ending in `seconds` (`train_seconds`, `loop_seconds`,
  `seconds`) and the `timings` dict of the reports section. They measure the machine, not the run.
* the run folder's own path (it appears in `source` and `dir`) is replaced by `<run>`.

Everything else (every loss, score, count, concept and unit id) must match exactly; so must the
weights, the activations and the Excel rows. A run with another seed must differ (so the check
can fail).
"""
import json
import shutil

import pytest
import torch

import feature_probe
import feature_reports
import label_features
import train_mlp
import train_sae
from common.paths import RunPaths
from tests.helpers import TINY, TINY_SAE_FLAGS, build_tiny_run, normalised_metrics
from dataset.data_loader import load_excel
from mlp.activations import load_activations
from mlp.mlp_definition import load_mlp
from sae.sae_definition import load_sae

SAE_FLAGS = [*TINY_SAE_FLAGS, "--resample-at", "0.5"]   # resampling draws random numbers too
def finish_run(run: RunPaths, seed: int = 0) -> tuple[RunPaths, dict]:
    """Stages 4-7 on top of a run that has data, MLP and activations; returns the run and the probe's
    JSON result (stage 6 writes nothing, so its output is compared instead)."""
    common = ["--run-dir", str(run.root), "--quiet", "--seed", str(seed)]
    train_sae.main(train_sae.parse_args(common + SAE_FLAGS))
    label_features.main(label_features.parse_args(common))
    probed = feature_probe.main(feature_probe.parse_args(common + ["--json"]))
    feature_reports.main(feature_reports.parse_args(common))
    return run, probed


@pytest.fixture(scope="module")
def two_runs(tiny_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("repro")
    a = RunPaths(base / "a")
    shutil.copytree(tiny_run.root, a.root)          # stages 1-3 of the session's tiny run ...
    b = build_tiny_run(base / "b")                  # ... and the same stages again, from nothing
    return finish_run(a), finish_run(b), tiny_run.root


@pytest.mark.slow  # two full tiny runs, all seven stages: ~15 s on an idle 2-core machine, ~60 s on a busy one
def test_same_seed_gives_the_same_metrics_json(two_runs):
    (a, probe_a), (b, probe_b), copied_from = two_runs
    text_a, text_b = normalised_metrics(a, copied_from), normalised_metrics(b)
    sections = set(json.loads(text_a))
    assert {"mlp", "harvest", "sae", "interpretability", "reports"} <= sections, sections
    assert text_a == text_b
    assert probe_a["inputs"] and json.dumps(probe_a, sort_keys=True) == json.dumps(probe_b, sort_keys=True)


@pytest.mark.slow
def test_same_seed_gives_the_same_artifacts(two_runs):
    (a, _), (b, _), _ = two_runs
    for split in ("train", "val", "test"):
        xa, ya = load_excel(a.split_xlsx(split))
        xb, yb = load_excel(b.split_xlsx(split))
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    for load, path in ((lambda p: load_mlp(p).state_dict(), "mlp"), (lambda p: load_sae(p).state_dict(), "sae"),
                       (load_activations, "activations")):
        da, db = load(getattr(a, path)), load(getattr(b, path))
        tensors = [k for k in da if torch.is_tensor(da[k])]
        assert tensors and all(torch.equal(da[k], db[k]) for k in tensors), path
    assert a.features_csv.read_text() == b.features_csv.read_text()
    assert a.neurons_csv.read_text() == b.neurons_csv.read_text()
    la, lb = (torch.load(r.labels_cache, weights_only=True) for r in (a, b))
    assert torch.equal(la["inputs"], lb["inputs"]) and torch.equal(la["feature_f1"], lb["feature_f1"])


def test_another_seed_gives_other_numbers(tiny_run, tmp_path):
    """Control: the comparison above is not blind. Seed 1 retrains the MLP on the same rows."""
    run = RunPaths(tmp_path / "seed1")
    shutil.copytree(tiny_run.root, run.root)
    m1 = train_mlp.main(train_mlp.parse_args(
        ["--run-dir", str(run.root), "--quiet", "--seed", "1", f"--d-mlp={TINY['d_mlp']}", f"--d-hidden={TINY['d_hidden']}",
         f"--epochs={TINY['epochs']}", f"--batch-size={TINY['batch_size']}"]))
    m0 = json.loads(tiny_run.metrics.read_text())["mlp"]
    assert m1["test"]["mse"] != m0["test"]["mse"]
