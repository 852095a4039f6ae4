"""Feature splitting links, the random-direction control, the comparison of a run's SAEs, and
feature_splitting.py on the tiny run."""
import pandas as pd
import pytest
import torch

import feature_splitting
import label_features
from analysis.compare import comparison, comparison_lines
from analysis.controls import random_direction_control, random_directions
from analysis.splitting import decoder_parents, splitting_summary
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
    x2 = sample_inputs(6000, seed=3)
    gt2 = ground_truth(x2)
    h2 = torch.stack([(gt2["p1"] == k).float() for k in range(4)] + [(gt2["a-b"] > 0).float()]
                     + [torch.rand(6000) for _ in range(11)], dim=1)
    ctrl = random_direction_control(h, x, h2, x2, [0.25, 0.25, 0.5, 0.1])   # chosen on (h, x), scored on (h2, x2)
    t = ctrl.table
    assert t["density"].to_numpy() == pytest.approx([0.25, 0.25, 0.5, 0.1], abs=0.02)
    assert (t["score"] < 0.8).all()


@pytest.fixture
def sweep_run(copy_run):
    """A tiny run with two named topk SAEs that differ only in size, labelled."""
    paths = copy_run()
    for d in (8, 16):
        sae = build_sae(sae_config("topk", d_in=64, d_sae=d, k=4), generator=torch.Generator().manual_seed(d))
        save_sae(sae, paths.for_sae(f"tk{d}").sae, metrics={"fvu": 0.5, "l0": 4.0})
    return paths


def test_unlabelled_saes_are_refused_with_the_stage_to_run(sweep_run):
    with pytest.raises(PipelineError, match="label_features.py"):
        feature_splitting.main(feature_splitting.parse_args(["--run-dir", str(sweep_run.root), "--quiet"]))


def test_feature_splitting_and_the_comparison_read_the_labels(sweep_run, capsys):
    label_features.main(label_features.parse_args(["--run-dir", str(sweep_run.root), "--sae", "all", "--n-inputs",
                                                   "2000", "--quiet"]))
    metrics = read_metrics(sweep_run.metrics)
    assert {"interpretability:tk8", "interpretability:tk16"} <= set(metrics)
    out = feature_splitting.main(feature_splitting.parse_args(["--run-dir", str(sweep_run.root)]))
    assert [r["sae"] for r in out["rows"]] == ["tk16", "tk8", "neurons"]
    links = pd.read_csv(sweep_run.splitting_links_csv)
    assert len(links) == 16 and set(links["parent"]) <= set(range(8)) and set(links["parent_sae"]) == {"tk8"}
    assert "tk16 <- tk8" in capsys.readouterr().out
    c = comparison(sweep_run)
    row = {r["sae"]: r for r in c["saes"]}["tk8"]
    lab = metrics["interpretability:tk8"]
    assert row["explained_share"] == lab["features_monosemantic_share"] and row["alive"] == lab["features_alive"]
    assert row["random_share"] == lab["random_directions_monosemantic_share"]
    assert c["neurons"]["explained_share"] == lab["neurons_monosemantic_share"]
    lines = comparison_lines(c)
    assert lines[1].startswith("tk16") and lines[-2].startswith("neurons")
    assert lines[-1].startswith("The hidden layer:") and 1 <= c["capacity"]["hidden_pcs_for_90"] <= 64


def test_random_directions_keep_their_first_draws_whatever_their_number():
    h = torch.randn(500, 16)
    R4, _ = random_directions(16, [0.1] * 4, h, seed=3)
    R9, _ = random_directions(16, [0.1] * 9, h, seed=3)
    assert torch.equal(R4, R9[:, :4])                                   # adding ultralow densities keeps the others
