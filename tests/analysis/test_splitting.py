"""Feature splitting links, the random-direction control, the comparison of a run's SAEs, and
feature_splitting.py on the tiny run."""
import pandas as pd
import pytest
import torch

import feature_splitting
import label_features
from analysis.compare import comparison, comparison_lines
from analysis.controls import random_direction_acts, random_directions
from analysis.explain import held_out
from analysis.concepts import explanation_truth
from analysis.splitting import (Dictionary, decoder_parents, prefix_levels, prefix_links,
                                size_links, splitting_summary)
from common.io import PipelineError, read_metrics
from dataset.task import ground_truth, sample_inputs
from sae.registry import build_sae, sae_config
from tests.helpers import add_labelled_matryoshka, save_run_sae
from viz.compare import compare_html


def test_decoder_parents_find_the_split_direction():
    g = torch.Generator().manual_seed(0)
    W_small = torch.randn(4, 16, generator=g)
    # children 0, 1 split parent 2; child 2 is parent 0 rotated a little; child 3 is new
    W_large = torch.stack([W_small[2] + 0.05 * torch.randn(16, generator=g), W_small[2] + 0.05 * torch.randn(16, generator=g),
                           W_small[0] + 0.05 * torch.randn(16, generator=g), torch.randn(16, generator=g)])
    parent, cos = decoder_parents(W_small, W_large)
    assert parent[:3].tolist() == [2, 2, 0] and (cos[:3] > 0.95).all() and cos[3] < 0.9


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
    choose, score = random_direction_acts(h, h2, [0.25, 0.25, 0.5, 0.1])
    ctrl = held_out(choose, x, score, x2, kind="random")               # chosen on (h, x), scored on (h2, x2)
    t = ctrl.table
    assert t["density"].to_numpy() == pytest.approx([0.25, 0.25, 0.5, 0.1], abs=0.02)
    assert (t["score"] < 0.8).all()


def test_a_child_that_splits_its_parent_is_linked_and_refines_it():
    """Coarse: `p1 = 2`, `p2 = 1`, an always-on unit. Fine: `p1 = 2 & p2 = 3 & a - b <= 5` (decoder close
    to p2 = 1's, so decoder and co-firing parents differ), `p2 = 1` again, and a unit of its own."""
    x = sample_inputs(6000, seed=4)
    gt = ground_truth(x)
    g = torch.Generator().manual_seed(0)
    W_c = torch.randn(3, 8, generator=g)
    coarse_acts = torch.stack([(gt["p1"] == 2).float(), (gt["p2"] == 1).float(), torch.ones(6000)], dim=1)
    child = (gt["p1"] == 2) & (gt["p2"] == 3) & (gt["a-b"] <= 5)
    fine_acts = torch.stack([child.float(), (gt["p2"] == 1).float(), (gt["a"] >= 5).float()], dim=1)
    W_f = torch.stack([W_c[1] + 0.01 * torch.randn(8, generator=g), W_c[1], torch.randn(8, generator=g)])
    table = lambda names: pd.DataFrame({"status": "alive", "split_explanation": names, "split_score": 0.95})
    coarse = Dictionary("s", W_c, coarse_acts, table(["p1 = 2", "p2 = 1", "p1 >= 0"]), prefix_levels(3, ()))
    fine = Dictionary("l", W_f, fine_acts, table(["p1 = 2 & p2 = 3 & a - b <= 5", "ramp b | p2 = 1", "a >= 5"]),
                      prefix_levels(3, ()))
    links = size_links(coarse, fine, x)
    assert links["parent"].tolist()[:2] == [1, 1] and links["parent_cos"].iloc[0] > 0.99      # by decoder
    assert links["cofiring_parent"].iloc[0] == 0                          # by co-firing: p1 = 2, not the always-on unit
    assert links["cofiring_parent_coactivation"].iloc[0] == 1.0 and links["cofiring_parent_refines"].iloc[0]
    assert links["parent_coactivation"].iloc[0] == 0.0 and not links["parent_refines"].iloc[0]
    assert links["cofiring_parent_nested"].iloc[1] == 1.0 and not links["cofiring_parent_refines"].iloc[1]   # same, not finer
    s = splitting_summary(links)
    assert s["alive_children"] == 3 and s["share_with_close_parent"] == pytest.approx(2 / 3)
    assert s["cofiring_explained_pairs"] == 3 and s["cofiring_share_refining"] == pytest.approx(1 / 3)
    # explanations' truth: a ramp's is its support's, an empty one holds nowhere
    t = explanation_truth(["ramp b | p2 = 1", "", "p1 = 2 & p2 = 3 & a - b <= 5"], x)
    assert torch.equal(t[:, 0], gt["p2"] == 1) and not t[:, 1].any() and torch.equal(t[:, 2], child)


def test_matryoshka_latents_are_linked_only_to_smaller_prefixes():
    x = sample_inputs(3000, seed=6)
    acts = torch.rand(3000, 8) * (torch.rand(3000, 8) < 0.3)
    t = pd.DataFrame({"status": "alive", "split_explanation": "", "split_score": float("nan")}, index=range(8))
    d = Dictionary("m", torch.randn(8, 4), acts, t, prefix_levels(8, (2, 4, 8)))
    assert d.levels.tolist() == [2, 2, 4, 4, 8, 8, 8, 8]
    links = prefix_links(d, (2, 4, 8), x)
    assert links["child"].tolist() == list(range(2, 8))
    group_start = {4: 2, 8: 4}                                          # the prefix before each level
    for column in ("parent", "cofiring_parent"):
        assert all(p < group_start[lv] for p, lv in zip(links[column], links["child_level"]))


@pytest.fixture
def sweep_run(copy_run):
    """A tiny run with two named topk SAEs that differ only in size, labelled."""
    paths = copy_run()
    for d in (8, 16):
        sae = build_sae(sae_config("topk", d_in=64, d_sae=d, k=4), generator=torch.Generator().manual_seed(d))
        save_run_sae(sae, paths.for_sae(f"tk{d}"), metrics={"fvu": 0.5, "l0": 4.0})
    return paths


def test_unlabelled_saes_are_refused_with_the_stage_to_run(sweep_run):
    with pytest.raises(PipelineError, match="label_features.py"):
        feature_splitting.main(feature_splitting.parse_args(["--run-dir", str(sweep_run.root), "--quiet"]))


def test_feature_splitting_and_the_comparison_read_the_labels(sweep_run, capsys):
    label_features.main(label_features.parse_args(["--run-dir", str(sweep_run.root), "--sae", "all", "--n-inputs",
                                                   "2000", "--quiet"]))
    metrics = read_metrics(sweep_run.metrics)
    assert {"interpretability:tk8", "interpretability:tk16"} <= set(metrics)
    assert 'href="splitting.html"' not in compare_html(sweep_run, comparison(sweep_run))   # not written yet
    out = feature_splitting.main(feature_splitting.parse_args(["--run-dir", str(sweep_run.root)]))
    assert 'href="splitting.html"' in compare_html(sweep_run, comparison(sweep_run))      # now linked
    assert [r["sae"] for r in out["rows"]] == ["tk16", "tk8", "neurons"]
    links = pd.read_csv(sweep_run.splitting_links_csv)
    assert len(links) == 16 and set(links["parent"]) <= set(range(8)) and set(links["parent_sae"]) == {"tk8"}
    assert "tk16 <- tk8 (size)" in capsys.readouterr().out
    assert "tk16 against tk8" in sweep_run.splitting_html.read_text()
    c = comparison(sweep_run)
    row = {r["sae"]: r for r in c["saes"]}["tk8"]
    lab = metrics["interpretability:tk8"]
    assert row["explained_share"] == lab["features_monosemantic_share"] and row["alive"] == lab["features_alive"]
    assert row["random_share"] == lab["random_directions_monosemantic_share"]
    assert c["neurons"]["explained_share"] == lab["neurons_monosemantic_share"]
    # absorption of every unit set, from label_features.py's metrics and absorption.csv
    assert row["absorption_full"] == lab["features_absorption_full"]
    assert c["neurons"]["absorption_full"] == lab["neurons_absorption_full"]
    table = pd.read_csv(sweep_run.for_sae("tk8").absorption_csv)
    assert set(table["unit_set"]) == {"features", "neurons", "random_directions"}
    assert lab["features_absorption_parents"] == table["parent"].nunique() == 18
    lines = comparison_lines(c)
    assert "absorb." in lines[0]
    assert lines[1].startswith("tk16") and lines[-2].startswith("neurons")
    assert lines[-1].startswith("The hidden layer:") and 1 <= c["capacity"]["hidden_pcs_for_90"] <= 64


def test_random_directions_keep_their_first_draws_whatever_their_number():
    h = torch.randn(500, 16)
    R4, _ = random_directions(16, [0.1] * 4, h, seed=3)
    R9, _ = random_directions(16, [0.1] * 9, h, seed=3)
    assert torch.equal(R4, R9[:, :4])                                   # adding ultralow densities keeps the others


def test_feature_splitting_links_a_matryoshka_dictionary_within_itself(copy_run, capsys):
    paths = copy_run()
    add_labelled_matryoshka(paths)
    out = feature_splitting.main(feature_splitting.parse_args(["--run-dir", str(paths.root)]))
    assert [(s["link"], s["child_sae"]) for s in out["splits"]] == [("prefix", "mat")]
    links = pd.read_csv(paths.splitting_links_csv)
    assert links["child"].tolist() == list(range(4, 16)) and set(links["child_level"]) == {8, 16}
    assert "mat <- mat (prefix)" in capsys.readouterr().out
    assert "Matryoshka prefixes" in paths.splitting_html.read_text()


def test_size_chains_link_each_size_once():
    row = lambda name, d, arch="topk": {"sae": name, "d_sae": d, "architecture": arch, "settings": "k 16"}
    rows = [row("default", 256), row("s64", 64), row("s256", 256), row("s128", 128), row("m", 256, "matryoshka")]
    assert feature_splitting.size_chains(rows) == [["s64", "s128", "default"]]
