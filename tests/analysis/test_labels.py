"""A run's labelling draws its two sets of inputs from the named streams, chooses on one and scores on
the other for features, neurons and random directions alike, and sets the random control's densities
on the choosing inputs from the features that fire."""
import numpy as np
import pandas as pd
import pytest
import torch

import analysis.labels as labels
from analysis.controls import random_direction_acts
from dataset.task import SEED_STREAMS, stream_seed
from mlp.mlp_definition import load_mlp
from sae.splice import chunked_pass
from tests.helpers import tiny_sae

N_INPUTS = 2000


@pytest.fixture(scope="module")
def spied(tiny_run):
    """label_models on the tiny run with a tiny TopK SAE, recording what held_out and the control got."""
    mlp = load_mlp(tiny_run.mlp)
    sae = tiny_sae("topk", d_in=mlp.cfg.d_hidden, d_sae=32, k=4, seed=2).eval()
    calls = {"held_out": [], "control": [], "summarize": {}}
    real_held_out, real_control, real_summarize = labels.held_out, labels.random_direction_acts, labels.summarize
    mp = pytest.MonkeyPatch()
    shares = {"features": 0.6, "neurons": 0.2, "random_directions": 0.1}   # known shares: the ratio is 3

    def summarize(ex, prefix):
        out = real_summarize(ex, prefix)
        calls["summarize"][prefix] = out[f"{prefix}_monosemantic_share"]
        return out | {f"{prefix}_monosemantic_share": shares[prefix]}
    mp.setattr(labels, "summarize", summarize)
    mp.setattr(labels, "held_out", lambda *a, **kw: calls["held_out"].append((a, kw)) or real_held_out(*a, **kw))
    mp.setattr(labels, "random_direction_acts",
               lambda *a, **kw: calls["control"].append((a, kw)) or real_control(*a, **kw))
    try:
        result = labels.label_models(mlp, sae, seed=3, n_inputs=N_INPUTS, interchange=False)
    finally:
        mp.undo()
    return mlp, sae, result, calls


def test_the_streams_are_distinct():
    assert len(set(SEED_STREAMS.values())) == len(SEED_STREAMS)
    seeds = {stream_seed(s, name) for s in range(3) for name in SEED_STREAMS}
    assert len(seeds) == 3 * len(SEED_STREAMS)


def test_explanations_are_chosen_on_the_explain_stream_and_scored_on_the_analysis_stream(spied):
    mlp, sae, result, calls = spied
    x_choose, x = labels.fresh_inputs(3, N_INPUTS, "explain"), labels.fresh_inputs(3, N_INPUTS, "analysis")
    assert (x_choose != x).any(1).float().mean() > 0.99               # two different sets of inputs
    assert torch.equal(result.inputs, x)
    choose, score = chunked_pass(mlp, sae, x_choose), chunked_pass(mlp, sae, x)
    kinds = {kw.get("kind", a[4] if len(a) > 4 else None): a for a, kw in calls["held_out"]}
    assert set(kinds) == {"feature", "neuron", "random"}
    for kind, (a_c, xc, a, xs) in ((k, v[:4]) for k, v in kinds.items()):
        assert torch.equal(xc, x_choose) and torch.equal(xs, x), kind
    torch.testing.assert_close(kinds["feature"][0], choose["features"])
    torch.testing.assert_close(kinds["feature"][2], score["features"])
    torch.testing.assert_close(kinds["neuron"][0], choose["hidden"])
    torch.testing.assert_close(kinds["neuron"][2], score["hidden"])


def test_the_control_is_set_on_the_choosing_inputs_at_the_firing_features_densities(spied):
    mlp, sae, result, calls = spied
    (args, kw), = calls["control"]
    h_choose, h_score, densities = args[0], args[1], np.asarray(args[2])
    x_choose = labels.fresh_inputs(3, N_INPUTS, "explain")
    torch.testing.assert_close(h_choose, chunked_pass(mlp, sae, x_choose)["hidden"])
    torch.testing.assert_close(h_score, chunked_pass(mlp, sae, labels.fresh_inputs(3, N_INPUTS, "analysis"))["hidden"])
    fires = result.features["status"].isin(["alive", "ultralow"]).to_numpy()
    assert len(densities) == fires.sum() and (densities > 0).all()
    assert densities == pytest.approx(result.features["density"].to_numpy()[fires])


def test_random_directions_fire_at_the_requested_densities_on_the_choosing_inputs():
    g = torch.Generator().manual_seed(0)
    h_choose, h_score = torch.randn(5000, 16, generator=g).relu(), torch.randn(3000, 16, generator=g).relu()
    wanted = np.array([0.01, 0.05, 0.2, 0.5, 0.9])
    r_c, r = random_direction_acts(h_choose, h_score, wanted, seed=1)
    assert (r_c > 0).float().mean(0).numpy() == pytest.approx(wanted, abs=2 / 5000)
    assert (r > 0).float().mean(0).numpy() == pytest.approx(wanted, abs=0.03)   # and near them on others


def test_neurons_are_active_where_they_are_positive_like_features(spied):
    mlp, sae, result, _ = spied
    h = chunked_pass(mlp, sae, labels.fresh_inputs(3, N_INPUTS, "analysis"))["hidden"]
    assert result.neurons["density"].to_numpy() == pytest.approx((h > 0).float().mean(0).numpy())


def test_the_ratio_is_the_features_share_over_the_neurons(spied):
    assert spied[2].summary["monosemantic_ratio"] == pytest.approx(0.6 / 0.2)


def test_the_neurons_labels_of_one_sae_serve_another_unchanged(tiny_run, monkeypatch):
    """`--sae all` scores the neurons once: a second SAE's labelling given the first's neuron labels
    equals the one that scores them itself."""
    mlp = load_mlp(tiny_run.mlp)
    a = tiny_sae("topk", d_in=mlp.cfg.d_hidden, d_sae=32, k=4, seed=2).eval()
    b = tiny_sae("relu", d_in=mlp.cfg.d_hidden, d_sae=48, seed=5).eval()
    first = labels.label_models(mlp, a, seed=3, n_inputs=N_INPUTS, interchange=False)
    alone = labels.label_models(mlp, b, seed=3, n_inputs=N_INPUTS, interchange=False)
    calls = []
    real = labels.label_neurons
    monkeypatch.setattr(labels, "label_neurons", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    shared = labels.label_models(mlp, b, seed=3, n_inputs=N_INPUTS, interchange=False,
                                 neuron_labels=first.extras["neuron_labels"])
    assert calls == []
    pd.testing.assert_frame_equal(shared.neurons, alone.neurons)
    pd.testing.assert_frame_equal(shared.features, alone.features)
    pd.testing.assert_frame_equal(shared.absorption, alone.absorption)
    timing = ("seconds", "scoring_seconds", "absorption_seconds")
    assert {k: v for k, v in shared.summary.items() if k not in timing} == \
           {k: v for k, v in alone.summary.items() if k not in timing}


def test_without_the_split_aware_grammar_every_other_figure_is_unchanged(tiny_run):
    """`split=False` (the across-L benchmark's labelling) drops the split-aware columns and shares and
    nothing else."""
    mlp = load_mlp(tiny_run.mlp)
    sae = tiny_sae("topk", d_in=mlp.cfg.d_hidden, d_sae=32, k=4, seed=2).eval()
    full = labels.label_models(mlp, sae, seed=3, n_inputs=N_INPUTS, interchange=False)
    lean = labels.label_models(mlp, sae, seed=3, n_inputs=N_INPUTS, interchange=False, split=False)
    split_cols = ["split_explanation", "split_score"]
    assert not set(split_cols) & (set(lean.features.columns) | set(lean.neurons.columns))
    pd.testing.assert_frame_equal(lean.features, full.features.drop(columns=split_cols))
    pd.testing.assert_frame_equal(lean.neurons, full.neurons.drop(columns=split_cols))
    pd.testing.assert_frame_equal(lean.absorption, full.absorption)
    timing = ("seconds", "scoring_seconds", "absorption_seconds")
    split_keys = {k for k in full.summary if "_split_" in k}
    assert split_keys and not split_keys & set(lean.summary)
    assert {k: v for k, v in lean.summary.items() if k not in timing} == \
           {k: v for k, v in full.summary.items() if k not in timing and k not in split_keys}
