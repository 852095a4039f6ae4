"""Stages 5 (label_features.py) and 6 (feature_probe.py), on the tiny run with a hand-built SAE."""
import json
import os

import pandas as pd
import pytest
import torch

import feature_probe
import label_features
from analysis.causal import ablate
from analysis.labels import build_labels
from analysis.labels_io import read_labels, read_table
from common.io import PipelineError, read_metrics
from dataset.task import REFERENCE_INPUTS, Task
from mlp.mlp_definition import load_mlp
from sae.registry import build_sae, sae_config
from tests.helpers import save_run_sae
from sae.sae_definition import load_sae
from sae.splice import spliced_forward

N_INPUTS = 3000
SUMMARY_KEYS = ("features_alive", "features_ultralow", "features_dead", "features_monosemantic_share",
                "neurons_alive", "neurons_monosemantic_share", "features_median_score", "neurons_median_score",
                "ramps_found", "core_concepts_found", "interchange_success", "n_inputs", "seed")
COLUMNS = ("unit", "kind", "status", "density", "mean_act", "max_act", "explanation", "explanation_kind", "score",
           "precision", "recall", "f1", "corr", "monosemantic")


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory):
    import shutil
    from common.paths import RunPaths
    dst = tmp_path_factory.mktemp("probe") / "run"
    shutil.copytree(tiny_run.root, dst)
    paths = RunPaths(dst)
    torch.manual_seed(0)
    sae = build_sae(sae_config("topk", d_in=64, d_sae=32, k=4), generator=torch.Generator().manual_seed(0))
    save_run_sae(sae, paths)
    label(paths)
    return paths


def label(paths, n_inputs=N_INPUTS):
    return label_features.main(label_features.parse_args(["--run-dir", str(paths.root), "--quiet",
                                                          "--n-inputs", str(n_inputs)]))


def probe(paths, *extra):
    return feature_probe.main(feature_probe.parse_args(["--run-dir", str(paths.root), *extra]))


def test_probe_reference_inputs_and_artifacts(run, capsys):
    out = probe(run)
    text = capsys.readouterr().out
    assert len(out["inputs"]) == 5 and [r["input"] for r in out["inputs"]] == [list(r) for r in REFERENCE_INPUTS]
    first = out["inputs"][0]
    assert first["expected"] == 8 and first["a"] == 1 and first["b"] == 9
    mlp, sae = load_mlp(run.mlp), load_sae(run.sae)
    x = torch.tensor([first["input"]])
    with torch.no_grad():
        assert first["mlp"] == pytest.approx(float(mlp(x)[0]), abs=1e-3)
    assert first["spliced"] == pytest.approx(float(spliced_forward(mlp, sae, x)[0]), abs=1e-3)
    assert first["active_features"] == 4                                 # topk, k = 4
    assert "expected 8" in text and "spliced" in text
    # artifacts and metrics
    features, neurons = read_table(run.features_csv), read_table(run.neurons_csv)
    assert len(features) == 32 and len(neurons) == 64
    for c in COLUMNS:
        assert c in features.columns and c in neurons.columns
    for c in ("effect_where_true", "effect_where_false", "effect_mean_abs"):
        assert c in features.columns
    m = read_metrics(run.metrics)["interpretability"]
    for k in SUMMARY_KEYS:
        assert k in m
    assert m["n_inputs"] == N_INPUTS and m["features_alive"] + m["features_ultralow"] + m["features_dead"] == 32
    # the top features listed carry their explanation from features.csv
    t = first["top_features"][0]
    assert t["explanation"] == features.set_index("unit").loc[t["feature"], "explanation"]


def test_probe_json_ablate_clamp(run, capsys):
    probe(run, "--input", "8,9,5,1,3,2,9,4,7,1", "--json", "--ablate", "0,1", "--clamp", "2=1.5")
    data = json.loads(capsys.readouterr().out)
    rec = data["inputs"][0]
    mlp, sae = load_mlp(run.mlp), load_sae(run.sae)
    x = torch.tensor([rec["input"]])

    def edit(f):
        f = ablate([0, 1])(f)
        f[:, 2] = 1.5
        return f
    assert rec["edited"]["spliced"] == pytest.approx(float(spliced_forward(mlp, sae, x, edit)[0]), abs=1e-3)
    assert rec["edited"]["change"] == pytest.approx(rec["edited"]["spliced"] - rec["spliced"], abs=2e-3)
    # the head is linear: the per-feature changes add up to the edit's change
    per = rec["edited"]["per_feature"]
    assert [p["feature"] for p in per] == [0, 1, 2]
    assert sum(p["change"] for p in per) == pytest.approx(rec["edited"]["change"], abs=2e-3)


def test_probe_printout_signs_and_inactive_edits(run, capsys):
    """Contributions are + when they raise the prediction; an ablated feature that was silent says so."""
    probe(run, "--input", "8,9,5,1,3,2,9,4,7,1", "--json")
    rec = json.loads(capsys.readouterr().out)["inputs"][0]
    sae, mlp = load_sae(run.sae), load_mlp(run.mlp)
    w = sae.W_dec.detach() @ mlp.head.weight.detach()[0]
    for t in rec["top_features"]:
        assert t["contribution"] == pytest.approx(t["activation"] * float(w[t["feature"]]), abs=1e-3)
    with torch.no_grad():
        f = sae.encode(mlp.hidden(torch.tensor([rec["input"]])))[0]
    silent = next(u for u in range(32) if f[u] == 0)
    on = int(f.argmax())
    probe(run, "--input", "8,9,5,1,3,2,9,4,7,1", "--ablate", f"{silent},{on}")
    out = capsys.readouterr().out
    assert f"feature {silent} was not active on this input" in out
    assert f"feature {on} zeroed from {float(f[on]):.3f}: {-float(f[on] * w[on]):+.3f}" in out


@pytest.mark.parametrize("bad", ["8,9,5,1,3,2,9,4,7", "8,9,5,1,9,2,9,4,7,1", "a,b,c", "8,9,5,1,3,2,9,4,7,10"])
def test_probe_bad_input_one_line(run, bad):
    with pytest.raises(PipelineError) as e:
        probe(run, "--input", bad)
    assert "expected 10 comma-separated integers" in str(e.value) and "\n" not in str(e.value)


def test_probe_bad_feature_ids_and_missing_sae(run, tmp_path, capsys):
    with pytest.raises(PipelineError, match="features 0..31"):
        probe(run, "--ablate", "99")
    with pytest.raises(PipelineError, match="features 0..31"):
        probe(run, "--clamp", "99=1")
    with pytest.raises(SystemExit) as e:     # the form is a flag's: refused by argparse, before any work
        probe(run, "--clamp", "3")
    assert e.value.code == 2 and "ID=VALUE" in capsys.readouterr().err
    from common.paths import RunPaths
    with pytest.raises(PipelineError, match="train_mlp.py"):
        probe(RunPaths(tmp_path / "empty"))


def test_labels_read_back_as_built_and_effects_are_right(run):
    labels = read_labels(run)
    fresh = build_labels(run, n_inputs=N_INPUTS, write=False)
    pd.testing.assert_frame_equal(labels.features[list(COLUMNS)], fresh.features[list(COLUMNS)], check_dtype=False,
                                  atol=1e-5)
    assert labels.feature_f1.shape == (32, len(labels.concept_names))
    assert labels.neuron_f1.shape == (64, len(labels.concept_names))
    assert torch.equal(labels.inputs, fresh.inputs)
    # effect_where_true / _false of one feature against zeroing it in the spliced pass on the same inputs
    mlp, sae = load_mlp(run.mlp), load_sae(run.sae)
    x = fresh.inputs
    moved = spliced_forward(mlp, sae, x, ablate(int(u := fresh.features.query("status == 'alive'").unit.iloc[0]))) \
        - spliced_forward(mlp, sae, x)
    row = fresh.features.set_index("unit").loc[u]
    from analysis.concepts import concept_set
    # the explanation's truth on x: recompute through the grammar by name (ramps: the support)
    name = row["explanation"].split(" | ", 1)[1] if row["explanation_kind"] == "ramp" else row["explanation"]
    holds = concept_set(Task()).truth(x)[:, concept_set(Task()).column(name)]
    assert row["effect_where_true"] == pytest.approx(float(moved[holds].mean()), abs=1e-4)
    if (~holds).any():
        assert row["effect_where_false"] == pytest.approx(float(moved[~holds].mean()), abs=1e-4)
    assert row["effect_mean_abs"] == pytest.approx(float(moved.abs().mean()), abs=1e-4)


def test_stale_or_missing_labels_name_label_features(run, tmp_path):
    """The probe only reads the labels: made from another SAE, made on other inputs, or absent -> one line
    naming label_features.py; relabelling fixes it. File times decide nothing."""
    t = run.sae.stat().st_mtime
    for p in (run.features_csv, run.neurons_csv, run.labels_cache):     # labels older than the SAE: still its own
        os.utime(p, (t - 10, t - 10))
    assert probe(run)["labels"]["n_inputs"] == N_INPUTS
    sae = build_sae(sae_config("topk", d_in=64, d_sae=32, k=4), generator=torch.Generator().manual_seed(1))
    save_run_sae(sae, run)                                              # retrained: the labels are another SAE's
    with pytest.raises(PipelineError, match=r"labels.pt: not made from .*sae_model.pth .*; run label_features.py --run-dir"):
        probe(run)
    label(run)
    assert probe(run)["labels"]["n_inputs"] == N_INPUTS
    with pytest.raises(PipelineError, match=f"--n-inputs {N_INPUTS}; run label_features.py .* --n-inputs 5000 first"):
        probe(run, "--n-inputs", "5000")
    import shutil
    from common.paths import RunPaths
    bare = RunPaths(tmp_path / "bare")
    shutil.copytree(run.root, bare.root)
    bare.labels_cache.unlink()
    with pytest.raises(PipelineError, match=r"labels.pt: labels not found; run label_features.py --run-dir .* first"):
        probe(bare)


def test_label_features_refuses_too_few_inputs(run, capsys):
    with pytest.raises(SystemExit) as e:   # the flag's type refuses it (common/validate.py)
        label(run, 500)
    assert e.value.code == 2 and "--n-inputs: expected an integer 1,000.." in capsys.readouterr().err
