"""Scoring on constructed units whose answer is known."""
import numpy as np
import pandas as pd
import pytest
import torch

from analysis.explain import (MONOSEMANTIC_SCORE, NEURON_THRESHOLD_FRACTION, active_mask, explain_units,
                              found_targets, summarize)
from dataset.task import ground_truth, sample_inputs

N = 8000


@pytest.fixture(scope="module")
def constructed():
    x = sample_inputs(N, seed=5)
    gt = ground_truth(x)
    g = torch.Generator().manual_seed(1)
    p1_2 = (gt["p1"] == 2).float()
    units = {
        "p1 = 2": p1_2,
        "ramp a | p1 = 2": gt["a"].float() * p1_2,
        "random": torch.rand(N, generator=g) * (torch.rand(N, generator=g) < 0.3),
        "p2 = 1 & b >= 5": ((gt["p2"] == 1) & (gt["b"] >= 5)).float() * 2.0,
        "relu(a - b)": (gt["a-b"]).clamp_min(0).float(),
        "c1[0] = 3": (x[:, 0] == 3).float(),
        "dead": torch.zeros(N),
        "ultralow": (torch.arange(N) < 3).float(),
        "noisy p1 = 2": p1_2 * (gt["a"].float() + 1) + 0.5 * (torch.rand(N, generator=g) < 0.05),
    }
    acts = torch.stack(list(units.values()), dim=1)                     # [N, U]
    ex = explain_units(acts, x)
    return list(units), ex


def row(constructed, name):
    names, ex = constructed
    return ex.table.iloc[names.index(name)]


def test_exact_concept_scores_one(constructed):
    r = row(constructed, "p1 = 2")
    assert r.explanation == "p1 = 2" and r.explanation_kind == "concept"
    assert r.score == pytest.approx(1.0) and r.f1 == pytest.approx(1.0)
    assert r.precision == pytest.approx(1.0) and r.recall == pytest.approx(1.0)
    assert pd.isna(r["corr"]) and r.monosemantic
    r = row(constructed, "p2 = 1 & b >= 5")                               # an indicator stays a concept
    assert r.explanation == "p2 = 1 & b >= 5" and r.explanation_kind == "concept" and r.score == pytest.approx(1.0)
    assert row(constructed, "c1[0] = 3").explanation == "c1[0] = 3"


def test_ramp_is_found_with_corr_one(constructed):
    r = row(constructed, "ramp a | p1 = 2")
    assert r.explanation_kind == "ramp"
    assert r.explanation.startswith("ramp a | p1 = 2")                   # support p1 = 2 (& a >= 1: a = 0 is silent)
    assert r["corr"] == pytest.approx(1.0, abs=1e-6) and r.score == pytest.approx(1.0)
    r = row(constructed, "relu(a - b)")
    assert r.explanation == "ramp a - b | a - b >= 1" and r["corr"] == pytest.approx(1.0, abs=1e-6)


def test_explanations_carry_their_variables(constructed):
    """The `variables` column: the ground-truth names each explanation uses (ramps: magnitude + support)."""
    expected = {"p1 = 2": "p1", "ramp a | p1 = 2": "a;p1", "p2 = 1 & b >= 5": "b;p2", "relu(a - b)": "a-b",
                "c1[0] = 3": "c1[0]", "dead": ""}
    for name, variables in expected.items():
        assert row(constructed, name)["variables"] == variables, name


def test_random_unit_scores_low(constructed):
    r = row(constructed, "random")
    assert r.status == "alive" and r.score < 0.5 and not r.monosemantic


def test_dead_and_ultralow(constructed):
    r = row(constructed, "dead")
    assert r.status == "dead" and r.explanation_kind == "none" and pd.isna(r.score) and not r.monosemantic
    r = row(constructed, "ultralow")
    assert r.status == "ultralow" and not r.monosemantic


def test_summary_and_targets(constructed):
    names, ex = constructed
    s = summarize(ex, "features")
    assert s["features_dead"] == 1 and s["features_ultralow"] == 1 and s["features_alive"] == len(names) - 2
    mono = {"p1 = 2", "ramp a | p1 = 2", "p2 = 1 & b >= 5", "relu(a - b)", "c1[0] = 3", "noisy p1 = 2"}
    assert s["features_monosemantic"] == len(mono)
    assert s["features_monosemantic_share"] == pytest.approx(len(mono) / (len(names) - 2))
    t = found_targets(ex)
    assert "ramp a | p1 = 2" in t["ramps_found"] and "sign of a - b" in t["ramps_found"]
    assert "ramp a | p1 = 0" not in t["ramps_found"] and "ramp b | p2 = 1" not in t["ramps_found"]
    assert t["core_found"] == ["p1 = 2"]
    assert t["ramps_best"]["ramp a | p1 = 2"]["unit"] in (names.index("ramp a | p1 = 2"), names.index("noisy p1 = 2"))


def test_heatmap_matrix(constructed):
    names, ex = constructed
    assert ex.heatmap_f1.shape == (len(names), len(ex.heatmap_concepts))
    j = ex.heatmap_concepts.index("p1 = 2")
    assert ex.heatmap_f1[names.index("p1 = 2"), j] == pytest.approx(1.0)


def test_neuron_threshold_is_relative_to_max():
    acts = torch.tensor([[0.0, 1.0], [0.05, 2.0], [1.0, 0.1], [0.5, 0.0]])
    m = active_mask(acts, 0.2)
    assert m.tolist() == [[False, True], [False, True], [True, False], [True, False]]
    assert active_mask(acts, 0.0).tolist() == (acts > 0).tolist()
    assert 0 <= NEURON_THRESHOLD_FRACTION < 1 and MONOSEMANTIC_SCORE == 0.8
