"""Stage 5 and the labelling behind it, on the tiny run with a hand-built SAE."""
import json

import pandas as pd
import pytest
import torch

import feature_probe
from analysis.causal import ablate, spliced_predict
from analysis.labels import build_labels, load_or_build_labels, read_table
from common.io import PipelineError, read_metrics
from dataset.data_generator import REFERENCE_INPUTS
from mlp.mlp_definition import load_mlp
from sae.sae_definition import SAE, SAEConfig, load_sae, save_sae

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
    sae = SAE(SAEConfig(architecture="topk", d_in=64, d_sae=32, k=4), generator=torch.Generator().manual_seed(0))
    save_sae(sae, paths.sae)
    return paths


def probe(paths, *extra):
    return feature_probe.main(feature_probe.parse_args(["--run-dir", str(paths.root), "--n-inputs", str(N_INPUTS), *extra]))


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
    assert first["spliced"] == pytest.approx(float(spliced_predict(mlp, sae, x)[0]), abs=1e-3)
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
    assert rec["edited"]["spliced"] == pytest.approx(float(spliced_predict(mlp, sae, x, edit)[0]), abs=1e-3)
    assert rec["edited"]["change"] == pytest.approx(rec["edited"]["spliced"] - rec["spliced"], abs=2e-3)


@pytest.mark.parametrize("bad", ["8,9,5,1,3,2,9,4,7", "8,9,5,1,9,2,9,4,7,1", "a,b,c", "8,9,5,1,3,2,9,4,7,10"])
def test_probe_bad_input_one_line(run, bad):
    with pytest.raises(PipelineError) as e:
        probe(run, "--input", bad)
    assert "expected 10 comma-separated integers" in str(e.value) and "\n" not in str(e.value)


def test_probe_bad_feature_ids_and_missing_sae(run, tmp_path):
    with pytest.raises(PipelineError, match="features 0..31"):
        probe(run, "--ablate", "99")
    with pytest.raises(PipelineError, match="ID=VALUE"):
        probe(run, "--clamp", "3")
    from common.paths import RunPaths
    with pytest.raises(PipelineError, match="train_mlp.py"):
        probe(RunPaths(tmp_path / "empty"))


def test_cached_labels_are_reused_and_effects_are_right(run):
    labels = load_or_build_labels(run, n_inputs=N_INPUTS)               # written by the probe above, or now
    mtime = run.features_csv.stat().st_mtime
    again = load_or_build_labels(run, n_inputs=N_INPUTS)
    assert run.features_csv.stat().st_mtime == mtime                    # reused, not rebuilt
    pd.testing.assert_frame_equal(again.features[list(COLUMNS)], labels.features[list(COLUMNS)], check_dtype=False)
    assert again.feature_f1.shape == (32, len(again.concept_names))
    assert again.neuron_f1.shape == (64, len(again.concept_names))
    # effect_where_true / _false of one feature against zeroing it in the spliced pass on the same inputs
    fresh = build_labels(run, n_inputs=N_INPUTS, write=False)
    mlp, sae = load_mlp(run.mlp), load_sae(run.sae)
    x = fresh.inputs
    moved = spliced_predict(mlp, sae, x, ablate(int(u := fresh.features.query("status == 'alive'").unit.iloc[0]))) \
        - spliced_predict(mlp, sae, x)
    row = fresh.features.set_index("unit").loc[u]
    from analysis.concepts import concept_set
    # the explanation's truth on x: recompute through the grammar by name (ramps: the support)
    name = row["explanation"].split(" | ", 1)[1] if row["explanation_kind"] == "ramp" else row["explanation"]
    holds = concept_set().truth(x)[:, concept_set().column(name)]
    assert row["effect_where_true"] == pytest.approx(float(moved[holds].mean()), abs=1e-4)
    if (~holds).any():
        assert row["effect_where_false"] == pytest.approx(float(moved[~holds].mean()), abs=1e-4)
    assert row["effect_mean_abs"] == pytest.approx(float(moved.abs().mean()), abs=1e-4)


def test_stale_cache_is_rebuilt(run):
    load_or_build_labels(run, n_inputs=N_INPUTS)
    import os
    t = run.features_csv.stat().st_mtime
    os.utime(run.sae, (t + 10, t + 10))                                 # an SAE newer than the labels
    load_or_build_labels(run, n_inputs=N_INPUTS)
    assert run.features_csv.stat().st_mtime > t
    other = load_or_build_labels(run, n_inputs=N_INPUTS + 1000)         # a different n: rebuilt and rewritten
    assert other.summary["n_inputs"] == N_INPUTS + 1000
    assert read_metrics(run.metrics)["interpretability"]["n_inputs"] == N_INPUTS + 1000
