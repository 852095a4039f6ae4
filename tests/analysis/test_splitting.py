"""Feature splitting links, the random-direction control, and feature_splitting.py on the tiny run."""
import pandas as pd
import pytest
import torch

import feature_splitting
import label_features
from analysis.splitting import decoder_parents, random_direction_control, splitting_summary
from common.io import PipelineError, read_metrics
from dataset.task import ground_truth, sample_inputs
from sae.registry import build_sae, sae_config
from sae.sae_definition import save_sae


def test_decoder_parents_find_the_split_direction():
    g = torch.Generator().manual_seed(0)
    W_small = torch.randn(4, 16, generator=g)
    # children 0, 1 split parent 2; child 2 is parent 0 rotated a little; child 3 is new
    W_large = torch.stack([W_small[2] + 0.05 * torch.randn(16, generator=g), W_small[2] + 0.05 * torch.randn(16, generator=g),
                           W_small[0] + 0.05 * torch.randn(16, generator=g), torch.randn(16, generator=g)])
    parent, cos = decoder_parents(W_small, W_large)
    assert parent[:3].tolist() == [2, 2, 0] and (cos[:3] > 0.95).all() and cos[3] < 0.9
    links = pd.DataFrame({"child_sae": "l", "parent_sae": "s", "child_status": "alive", "cos": cos.numpy(),
                          "parent": parent.numpy(), "child_score": [0.9, 0.5, 0.7, 0.1], "parent_score": [0.6] * 4})
    s = splitting_summary(links)
    assert s["share_with_close_parent"] == 0.75 and s["max_children_per_parent"] == 2
    assert s["child_better_than_parent"] == pytest.approx(0.5)


def test_random_directions_match_density_and_score_lower_than_a_real_code():
    x = sample_inputs(6000, seed=2)
    gt = ground_truth(x)
    # a hidden layer that holds pointer indicators and the sign of a - b exactly, plus noise dimensions
    h = torch.stack([(gt["p1"] == k).float() for k in range(4)] + [(gt["a-b"] > 0).float()]
                    + [torch.rand(6000) for _ in range(11)], dim=1)
    ctrl = random_direction_control(h, x, [0.25, 0.25, 0.5, 0.1])
    t = ctrl.table
    assert t["density"].to_numpy() == pytest.approx([0.25, 0.25, 0.5, 0.1], abs=0.01)
    assert (t["score"] < 0.8).all()


@pytest.fixture
def sweep_run(copy_run):
    paths = copy_run()
    for d in (8, 16):
        sae = build_sae(sae_config("topk", d_in=64, d_sae=d, k=4), generator=torch.Generator().manual_seed(d))
        save_sae(sae, paths.sweep_sae("d_sae", str(d)), metrics={"fvu": 0.5, "l0": 4.0})
    return paths


def test_feature_splitting_stage(sweep_run, capsys):
    out = feature_splitting.main(feature_splitting.parse_args(
        ["--run-dir", str(sweep_run.root), "--n-inputs", "2000", "--no-interchange"]))
    assert [r["name"] for r in out["rows"]] == ["d_sae=8", "d_sae=16"]
    table = pd.read_csv(sweep_run.splitting_csv)
    links = pd.read_csv(sweep_run.splitting_links_csv)
    assert len(table) == 2 and len(links) == 16 and set(links["parent"]) <= set(range(8))
    for c in ("alive", "share_ge_0.8", "neurons_share_ge_0.8", "random_share_ge_0.8", "ramps_found", "fvu",
              "spliced_exact_match"):
        assert c in table.columns
    assert table["fvu"].tolist() == [0.5, 0.5]
    assert read_metrics(sweep_run.metrics)["feature_splitting"]["splits"][0]["child_sae"] == "d_sae=16"
    assert "d_sae=16 <- d_sae=8" in capsys.readouterr().out


def test_feature_splitting_reads_the_runs_labels(sweep_run):
    """The run's own SAE is not relabelled here: without current labels the stage names label_features.py."""
    save_sae(build_sae(sae_config("topk", d_in=64, d_sae=8, k=4)), sweep_run.sae)
    args = ["--run-dir", str(sweep_run.root), "--n-inputs", "2000", "--no-interchange"]
    with pytest.raises(PipelineError, match="run label_features.py"):
        feature_splitting.main(feature_splitting.parse_args(args))
    label_features.main(label_features.parse_args(args[:4] + ["--quiet"]))
    out = feature_splitting.main(feature_splitting.parse_args(args))
    default = out["rows"][-1]
    labels = read_metrics(sweep_run.metrics)["interpretability"]
    assert default["name"] == "default" and default["alive"] == labels["features_alive"]
    assert default["interchange_success"] == labels["interchange_success"]     # from the labels, not recomputed
    assert "random_share_ge_0.8" in default


def test_feature_splitting_needs_saes(copy_run):
    paths = copy_run()
    with pytest.raises(PipelineError, match="--sweep d_sae="):
        feature_splitting.main(feature_splitting.parse_args(["--run-dir", str(paths.root)]))
